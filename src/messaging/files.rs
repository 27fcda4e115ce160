//! Fetching a file a platform links to (a Discord attachment URL, a Slack `url_private` with
//! the bot token) into memory, up to the size limit, with the daemon's own HTTP client.

use std::time::Duration;

use crate::message::{AttachmentBody, InboundAttachment, collect_capped};

/// How long one file may take to arrive.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// The HTTP client adapters fetch files with; `None` when it cannot be built (TLS roots),
/// in which case files arrive as unavailable, saying so.
pub fn client() -> Option<reqwest::Client> {
    crate::install_crypto_provider();
    match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(DOWNLOAD_TIMEOUT)
        .build()
    {
        Ok(client) => Some(client),
        Err(error) => {
            tracing::error!(%error, "cannot build the HTTP client for files");
            None
        }
    }
}

/// A file a platform links to.
pub struct Linked<'a> {
    pub url: &'a str,
    pub name: &'a str,
    pub media_type: &'a str,
    /// The size the platform states.
    pub size: u64,
}

/// Fetches `file` (with `bearer` as its `Authorization`), refusing it unfetched when the
/// platform states a size over `limit`, and stopping when more arrives than that. A failure
/// is the attachment's outcome, not an error: the message itself still counts.
pub async fn download(
    client: Option<&reqwest::Client>,
    file: Linked<'_>,
    bearer: Option<&str>,
    limit: u64,
) -> InboundAttachment {
    let attachment = |body| InboundAttachment {
        name: file.name.to_string(),
        media_type: file.media_type.to_string(),
        body,
    };
    if file.size > limit {
        return attachment(AttachmentBody::TooLarge {
            size: file.size,
            limit,
        });
    }
    let unavailable = |reason: String| {
        tracing::warn!(name = %file.name, %reason, "a file could not be fetched");
        attachment(AttachmentBody::Unavailable {
            size: file.size,
            reason,
        })
    };
    let Some(client) = client else {
        return unavailable("the daemon has no HTTP client for files".to_string());
    };
    let mut request = client.get(file.url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return unavailable(error.without_url().to_string()),
    };
    if !response.status().is_success() {
        return unavailable(format!("the download answered {}", response.status()));
    }
    match collect_capped(Box::pin(response.bytes_stream()), limit).await {
        Ok(Ok(bytes)) => InboundAttachment::bytes(file.name, file.media_type, bytes),
        Ok(Err(size)) => attachment(AttachmentBody::TooLarge { size, limit }),
        Err(reason) => unavailable(reason),
    }
}
