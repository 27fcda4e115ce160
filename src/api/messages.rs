//! Portal messages: `POST /api/agents/{id}/messages` and reading conversations back.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::files::{MAX_ATTACHMENTS, UploadedFile};
use super::{ApiError, ApiState, find_agent};
use crate::conversation_id::ConversationId;
use crate::message::InboundMessage;
use crate::messaging::Receipt;

/// How long a waiting caller is kept before it is told to look at the conversation later.
const DEFAULT_WAIT_SECS: u64 = 300;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    #[serde(default)]
    content: String,
    /// Files sent with the message (base64); a message may be only files.
    #[serde(default)]
    attachments: Vec<UploadedFile>,
    /// The portal conversation, `portal:{conversation}`; default `api`.
    #[serde(default)]
    conversation: Option<String>,
    #[serde(default)]
    sender: Option<String>,
    /// A client-chosen id; re-sending the same one is recognised and ignored.
    #[serde(default)]
    idempotency_key: Option<String>,
    /// A group conversation: bursts of messages coalesce into one turn.
    #[serde(default)]
    group: bool,
    /// Wait for the agent's answer and return it.
    #[serde(default)]
    wait: bool,
    #[serde(default)]
    timeout_secs: Option<u64>,
}

pub async fn send_message(
    State(state): State<ApiState>,
    Path(agent_id): Path<String>,
    Json(request): Json<SendMessage>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    find_agent(&state, &agent_id)?;
    if request.content.trim().is_empty() && request.attachments.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "`content` is empty and there are no `attachments`",
        ));
    }
    if request.attachments.len() > MAX_ATTACHMENTS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("a message carries at most {MAX_ATTACHMENTS} attachments"),
        ));
    }
    let limit = state.config().media.max_file_bytes;
    let attachments = request
        .attachments
        .into_iter()
        .map(|file| file.decode(limit))
        .collect::<Result<Vec<_>, _>>()?;
    let conversation = portal_conversation(request.conversation.as_deref().unwrap_or("api"))?;
    let mut message = InboundMessage::new(
        conversation.clone(),
        request.sender.unwrap_or_else(|| "user".to_string()),
        request.content,
    );
    message.attachments = attachments;
    message.agent = Some(agent_id);
    message.platform_message_id = request.idempotency_key;
    message.is_direct = !request.group;
    let message_id = message.id.clone();
    let portal = state.messaging.portal();
    let mut waiter = request.wait.then(|| portal.wait_for(&message_id));
    match portal.submit(message).await? {
        Receipt::Stored { .. } => {}
        Receipt::Duplicate => {
            return Ok((
                StatusCode::OK,
                Json(json!({"duplicate": true, "conversation_id": conversation})),
            ));
        }
        Receipt::Answered { text } => {
            return Ok((
                StatusCode::OK,
                Json(json!({"conversation_id": conversation, "reply": text, "command": true})),
            ));
        }
        Receipt::Ignored => {
            return Ok((
                StatusCode::OK,
                Json(json!({"conversation_id": conversation, "ignored": true})),
            ));
        }
    }
    let Some(waiter) = waiter.as_mut() else {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"message_id": message_id, "conversation_id": conversation})),
        ));
    };
    let timeout = Duration::from_secs(request.timeout_secs.unwrap_or(DEFAULT_WAIT_SECS));
    match tokio::time::timeout(timeout, waiter.reply()).await {
        Ok(Some(reply)) => Ok((
            StatusCode::OK,
            Json(json!({
                "message_id": message_id,
                "conversation_id": conversation,
                "reply": reply.content,
            })),
        )),
        Ok(None) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the daemon is shutting down; message {message_id} will be answered after it restarts"
            ),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "no answer within {}s; message {message_id} is still queued",
                timeout.as_secs()
            ),
        )),
    }
}

/// `portal:{name}` from a client-chosen name (or a full `portal:` id).
pub fn portal_conversation(name: &str) -> Result<ConversationId, ApiError> {
    ConversationId::portal(name)
        .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, error.reason))
}

pub async fn list_conversations(
    State(state): State<ApiState>,
    Path(agent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    let conversations = agent.runtime.conversations().await?;
    Ok(Json(json!({ "conversations": conversations })))
}

#[derive(Deserialize)]
pub struct MessagesQuery {
    #[serde(default)]
    limit: Option<usize>,
}

pub async fn list_messages(
    State(state): State<ApiState>,
    Path((agent_id, conversation_id)): Path<(String, String)>,
    Query(query): Query<MessagesQuery>,
) -> Result<Json<Value>, ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    let messages = agent
        .runtime
        .transcript(&conversation_id, query.limit.unwrap_or(100).min(10_000))
        .await?;
    Ok(Json(
        json!({ "conversation_id": conversation_id, "messages": messages }),
    ))
}

pub async fn list_processes(
    State(state): State<ApiState>,
    Path(agent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    Ok(Json(json!({ "processes": agent.runtime.processes(None) })))
}
