//! The files messages carried, for the dashboard's transcripts and the web chat:
//! `GET /api/agents/{id}/conversations/{conversation}/attachments` lists what the last
//! messages of a conversation carried (name, kind, size, where the workspace keeps them, why
//! one was not received, a voice note's transcript, and the `url` it is served at), and
//! `GET .../attachments/{message}/{file}` serves one of them from that message's folder of
//! the workspace, as a download that no browser runs.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiState, find_agent};
use crate::agent::AgentError;
use crate::conversation::StoredAttachment;
use crate::media;
use crate::message::media_type_of;

/// The longest message id and file name a download names.
const MAXIMUM_SEGMENT: usize = 255;

/// A served file is never run, framed or given scripts, even if opened in a tab.
const DOWNLOAD_POLICY: &str = "default-src 'none'; sandbox";

#[derive(Deserialize)]
pub struct AttachmentsQuery {
    /// The messages looked at: the conversation's last `limit` (as its transcript).
    #[serde(default)]
    limit: Option<usize>,
}

pub async fn list(
    State(state): State<ApiState>,
    Path((agent_id, conversation_id)): Path<(String, String)>,
    Query(query): Query<AttachmentsQuery>,
) -> Result<Json<Value>, ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    let messages = agent
        .runtime
        .transcript(&conversation_id, query.limit.unwrap_or(100).min(1000))
        .await?;
    let ids: Vec<String> = messages.into_iter().map(|message| message.id).collect();
    let attachments: Vec<Value> = agent
        .runtime
        .attachments(&ids)
        .await?
        .into_iter()
        .map(|attachment| listed(&agent_id, &conversation_id, attachment))
        .collect();
    Ok(Json(
        json!({ "conversation_id": conversation_id, "attachments": attachments }),
    ))
}

/// An attachment as listed: its record, and the `url` it is served at when it was received.
fn listed(agent_id: &str, conversation_id: &str, attachment: StoredAttachment) -> Value {
    let url = attachment
        .path
        .as_deref()
        .and_then(|path| path.rsplit_once('/'))
        .map(|(_, file)| {
            format!(
                "/api/agents/{}/conversations/{}/attachments/{}/{}",
                percent_encode(agent_id),
                percent_encode(conversation_id),
                percent_encode(&attachment.message_id),
                percent_encode(file)
            )
        });
    let mut value = serde_json::to_value(attachment).unwrap_or_default();
    value["url"] = json!(url);
    value
}

/// One received file of a message of the conversation, by the name its folder keeps it
/// under. Only a file the store records for that message of that conversation is served,
/// read without following links; anything else is a 404.
pub async fn download(
    State(state): State<ApiState>,
    Path((agent_id, conversation_id, message_id, file)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    if message_id.len() > MAXIMUM_SEGMENT || file.len() > MAXIMUM_SEGMENT {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("a message id and a file name are at most {MAXIMUM_SEGMENT} bytes"),
        ));
    }
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("message `{message_id}` of `{conversation_id}` kept no file named `{file}`"),
        )
    };
    let (attachment, bytes) = match agent
        .runtime
        .attachment_file(&conversation_id, &message_id, &file)
        .await
    {
        Ok(Some(found)) => found,
        Ok(None) => return Err(not_found()),
        Err(AgentError::StoredAttachment(error)) => {
            tracing::warn!(%error, %conversation_id, %message_id, %file, "an attachment was not served");
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("`{file}` cannot be served: {error}"),
            ));
        }
        Err(error) => return Err(error.into()),
    };
    let disposition = format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{}",
        media::file_name(&attachment.name),
        percent_encode(&attachment.name)
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                served_media_type(&attachment.media_type, &file),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CONTENT_SECURITY_POLICY, DOWNLOAD_POLICY.to_string()),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}

/// The stored MIME type when it is a plain `type/subtype`, else the one the file name
/// suggests: a sender's type is never put in a header as it came.
fn served_media_type(stored: &str, file: &str) -> String {
    let essence = stored
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let token = |part: &str| {
        !part.is_empty()
            && part.len() <= 127
            && part.chars().all(|character| {
                character.is_ascii_alphanumeric() || "!#$&^_.+-".contains(character)
            })
    };
    match essence.split_once('/') {
        Some((kind, subtype)) if token(kind) && token(subtype) => essence,
        _ => media_type_of(file).to_string(),
    }
}

/// `text` as one URL path segment (or an RFC 5987 value): every byte but the unreserved
/// ones as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_media_types_reach_the_header() {
        assert_eq!(served_media_type("image/png", "a.png"), "image/png");
        assert_eq!(
            served_media_type("Text/Plain; charset=utf-8", "a.txt"),
            "text/plain"
        );
        assert_eq!(
            served_media_type("text/html\r\nSet-Cookie: x", "a.pdf"),
            "application/pdf"
        );
        assert_eq!(served_media_type("", "a.bin"), "application/octet-stream");
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(percent_encode("portal:web"), "portal%3Aweb");
        assert_eq!(percent_encode("a b/../é"), "a%20b%2F..%2F%C3%A9");
    }
}
