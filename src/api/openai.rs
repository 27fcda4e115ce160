//! An OpenAI-compatible chat endpoint, so any chat client can talk to an agent:
//! `model` names the agent, `user` (or `x-spacebot-conversation`) names a persistent
//! conversation, and the last user message is the new input.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::messages::portal_conversation;
use super::{ApiError, ApiState};

use crate::conversation::Role;
use crate::conversation_id::ConversationId;
use crate::message::InboundMessage;
use crate::messaging::Receipt;

const CONVERSATION_HEADER: &str = "x-spacebot-conversation";
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
pub struct ChatRequest {
    model: String,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Option<Value>,
}

impl ChatMessage {
    /// Text content, whether a string or an array of `{"type":"text","text":...}` parts.
    fn text(&self) -> String {
        match &self.content {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        }
    }
}

pub async fn models(State(state): State<ApiState>) -> Json<Value> {
    let created = state.started_at.elapsed().as_secs();
    let data: Vec<Value> = state
        .agents()
        .keys()
        .map(|id| json!({"id": format!("spacebot/{id}"), "object": "model", "created": created, "owned_by": "spacebot"}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

pub async fn chat_completions(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Json(request): Json<ChatRequest>,
) -> Result<Response, ApiError> {
    let agent_id = request
        .model
        .strip_prefix("spacebot/")
        .unwrap_or(&request.model);
    let agents = state.agents();
    let agent = agents
        .get(agent_id)
        .map(|entry| &entry.runtime)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "model `{}` names no agent; use one of: {}",
                    request.model,
                    agents
                        .keys()
                        .map(|id| format!("spacebot/{id}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
    let Some((last, earlier)) = request.messages.split_last() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "`messages` is empty",
        ));
    };
    let content = last.text();
    if last.role != "user" || content.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the last message must be a non-empty user message",
        ));
    }
    let named = headers
        .get(CONVERSATION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.user.clone());
    let conversation = match &named {
        Some(name) => portal_conversation(name)?,
        None => {
            // A stateless client sends the whole history each time: keep it as the context of
            // a fresh conversation.
            let conversation = ConversationId::portal(&format!("openai-{}", uuid::Uuid::new_v4()))
                .map_err(|error| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
                })?;
            let history: Vec<(Role, String)> = earlier
                .iter()
                .filter_map(|message| {
                    let role = match message.role.as_str() {
                        "user" => Role::User,
                        "assistant" => Role::Assistant,
                        // System prompts belong to the agent's identity files.
                        _ => return None,
                    };
                    Some((role, message.text()))
                })
                .collect();
            agent.seed_history(&conversation, &history).await?;
            conversation
        }
    };
    let mut message = InboundMessage::new(
        conversation,
        request.user.as_deref().unwrap_or("user"),
        content,
    );
    message.agent = Some(agent.id().to_string());
    let message_id = message.id.clone();
    let portal = state.messaging.portal();
    let mut waiter = portal.wait_for(&message_id);
    let reply = match portal.submit(message).await? {
        Receipt::Answered { text } => Some(text),
        Receipt::Stored { .. } | Receipt::Duplicate | Receipt::Ignored => None,
    };
    let reply = match reply {
        Some(text) => text,
        None => match tokio::time::timeout(ANSWER_TIMEOUT, waiter.reply()).await {
            Ok(Some(reply)) => reply.content.unwrap_or_default(),
            Ok(None) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the daemon is shutting down; the message will be answered after it restarts",
                ));
            }
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the agent did not answer in time",
                ));
            }
        },
    };
    let id = format!("chatcmpl-{message_id}");
    let created = chrono::Utc::now().timestamp();
    if request.stream {
        return Ok(stream_answer(id, created, request.model, reply));
    }
    Ok(Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": request.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }))
    .into_response())
}

/// The whole answer as a chat.completion.chunk stream: role, content, stop, `[DONE]`.
fn stream_answer(id: String, created: i64, model: String, reply: String) -> Response {
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
        .to_string()
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    if !reply.is_empty() {
        events.push(chunk(json!({"content": reply}), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    events.push("[DONE]".to_string());
    let stream = futures::stream::iter(
        events
            .into_iter()
            .map(|data| Ok::<_, Infallible>(Event::default().data(data))),
    );
    Sse::new(stream).into_response()
}
