//! Files that come with API messages: `attachments` of `POST /api/agents/{id}/messages`
//! (`{name, media_type, data}` with base64 `data`) and the `image_url` and `file` parts of
//! `/v1/chat/completions` (`data:` URLs), decoded and checked against `[media] max_file_mb`;
//! and the files an agent sends to the web chat or the API, served from its workspace
//! (`GET /api/agents/{id}/files/{path}`, behind the token like every API route).

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;

use super::{ApiError, ApiState, find_agent};
use crate::media;
use crate::message::{InboundAttachment, media_type_of};

/// Files a message may carry at most.
pub const MAX_ATTACHMENTS: usize = 10;

/// A file as the API receives it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadedFile {
    pub name: String,
    /// Its MIME type; guessed from `name` when left out.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The file, base64-encoded.
    pub data: String,
}

impl UploadedFile {
    pub fn decode(self, limit: u64) -> Result<InboundAttachment, ApiError> {
        if self.name.trim().is_empty() || self.name.len() > 255 {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "an attachment needs a `name` of 1 to 255 bytes",
            ));
        }
        let bytes = decode_base64(&self.data, &self.name, limit)?;
        let media_type = self
            .media_type
            .filter(|media_type| !media_type.trim().is_empty())
            .unwrap_or_else(|| media_type_of(&self.name).to_string());
        Ok(InboundAttachment::bytes(self.name, media_type, bytes))
    }
}

/// The file of a `data:` URL (`data:image/png;base64,...`), named `name` when the client
/// gave one (a `file` part's `filename`), else `image-{index}` with the extension of its type.
pub fn from_data_url(
    url: &str,
    name: Option<&str>,
    index: usize,
    limit: u64,
) -> Result<InboundAttachment, ApiError> {
    let refuse = |message: &str| ApiError::new(StatusCode::BAD_REQUEST, message.to_string());
    if name.is_some_and(|name| name.trim().is_empty() || name.len() > 255) {
        return Err(refuse("a file's `filename` must be 1 to 255 bytes"));
    }
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(refuse(
            "an `image_url` must be a `data:` URL (data:image/png;base64,...); the daemon does \
             not fetch images from the web",
        ));
    };
    let Some((header, data)) = rest.split_once(',') else {
        return Err(refuse("a `data:` URL needs a `,` before its data"));
    };
    let Some(media_type) = header.strip_suffix(";base64") else {
        return Err(refuse("only base64 `data:` URLs are accepted (`;base64,`)"));
    };
    // A browser says `application/octet-stream` of a file whose type it does not know: the
    // name given says more.
    let media_type = match name {
        Some(name) if media_type.is_empty() || media_type == "application/octet-stream" => {
            media_type_of(name)
        }
        _ if media_type.is_empty() => "application/octet-stream",
        _ => media_type,
    };
    let extension = media_type
        .split_once('/')
        .map_or("bin", |(_, subtype)| subtype)
        .split(['+', ';'])
        .next()
        .unwrap_or("bin");
    let extension = if extension == "jpeg" {
        "jpg"
    } else {
        extension
    };
    let name = name.map_or_else(|| format!("image-{index}.{extension}"), str::to_string);
    let bytes = decode_base64(data, &name, limit)?;
    Ok(InboundAttachment::bytes(name, media_type, bytes))
}

fn decode_base64(data: &str, name: &str, limit: u64) -> Result<Vec<u8>, ApiError> {
    let too_large = |size: u64| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "`{name}` is {}, larger than the {} limit for files ([media] max_file_mb)",
                media::human_size(size),
                media::human_size(limit)
            ),
        )
    };
    let data = data.trim();
    // The size is known before decoding: refuse early instead of allocating it.
    let estimated = (data.len() as u64 / 4) * 3;
    if estimated > limit + 3 {
        return Err(too_large(estimated));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|error| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("`{name}` is not valid base64: {error}"),
            )
        })?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// A workspace file of an agent, as a download.
pub async fn download(
    State(state): State<ApiState>,
    Path((agent_id, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    let (name, bytes) =
        agent.runtime.workspace_file(&path).await.map_err(|error| {
            ApiError::new(StatusCode::NOT_FOUND, format!("no such file: {error}"))
        })?;
    let safe_name = media::file_name(&name);
    Ok((
        [
            (header::CONTENT_TYPE, media_type_of(&name).to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe_name}\""),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            // Opened in a tab anyway, nothing in it runs.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_string(),
            ),
        ],
        bytes,
    )
        .into_response())
}
