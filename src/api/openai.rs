//! An OpenAI-compatible chat endpoint, so any chat client can talk to an agent:
//! `model` names the agent, `user` (or `x-spacebot-conversation`) names a persistent
//! conversation, and the last user message is the new input, with the files of its
//! `image_url` and `file` parts. With `stream: true` the answer
//! comes as it is written, in `chat.completion.chunk`s; `usage` is the answering turn's.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::files::{MAX_ATTACHMENTS, from_data_url};
use super::messages::portal_conversation;
use super::{ApiError, ApiState};

use crate::conversation::Role;
use crate::conversation_id::ConversationId;
use crate::message::{InboundAttachment, InboundMessage, TokenUsage};
use crate::messaging::{PortalWaiter, Progress, Receipt};

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
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
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

    /// The files of its `image_url` parts and of its `file` parts (`{"file": {"filename",
    /// "file_data"}}`, OpenAI's shape for documents), all as `data:` URLs.
    fn files(&self, limit: u64) -> Result<Vec<InboundAttachment>, ApiError> {
        let Some(Value::Array(parts)) = &self.content else {
            return Ok(Vec::new());
        };
        let refuse = |message: &str| ApiError::new(StatusCode::BAD_REQUEST, message.to_string());
        let mut files: Vec<(&str, Option<&str>)> = Vec::new();
        for part in parts {
            match part.get("type").and_then(Value::as_str) {
                Some("image_url") => {
                    let url = part["image_url"]
                        .get("url")
                        .or(Some(&part["image_url"]))
                        .and_then(Value::as_str)
                        .ok_or_else(|| refuse("an `image_url` part needs `image_url.url`"))?;
                    files.push((url, None));
                }
                Some("file") => {
                    let file = &part["file"];
                    let data = file["file_data"].as_str().ok_or_else(|| {
                        refuse(
                            "a `file` part needs `file.file_data` (a base64 `data:` URL); \
                             uploaded file ids are not kept here",
                        )
                    })?;
                    let name = file["filename"]
                        .as_str()
                        .ok_or_else(|| refuse("a `file` part needs `file.filename`"))?;
                    files.push((data, Some(name)));
                }
                _ => {}
            }
        }
        if files.len() > MAX_ATTACHMENTS {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("a message carries at most {MAX_ATTACHMENTS} files"),
            ));
        }
        files
            .into_iter()
            .enumerate()
            .map(|(index, (url, name))| from_data_url(url, name, index + 1, limit))
            .collect()
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
    let attachments = last.files(state.config().media.max_file_bytes)?;
    if last.role != "user" || (content.trim().is_empty() && attachments.is_empty()) {
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
    message.attachments = attachments;
    let message_id = message.id.clone();
    let portal = state.messaging.portal();
    let mut waiter = portal.wait_for(&message_id);
    let command = match portal.submit(message).await? {
        Receipt::Answered { text } => Some(text),
        Receipt::Stored { .. } | Receipt::Duplicate | Receipt::Ignored => None,
    };
    let head = ChunkHead {
        id: format!("chatcmpl-{message_id}"),
        created: chrono::Utc::now().timestamp(),
        model: request.model.clone(),
    };
    let include_usage = request
        .stream_options
        .as_ref()
        .is_some_and(|options| options.include_usage);
    if request.stream {
        let answer = match command {
            Some(text) => Answer::Known(text),
            None => Answer::Coming(waiter),
        };
        return Ok(stream_answer(head, answer, include_usage));
    }
    let (reply, usage) = match command {
        Some(text) => (text, TokenUsage::default()),
        None => match tokio::time::timeout(ANSWER_TIMEOUT, waiter.reply()).await {
            Ok(Some(reply)) => (reply.content.unwrap_or_default(), reply.usage),
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
    Ok(Json(json!({
        "id": head.id,
        "object": "chat.completion",
        "created": head.created,
        "model": head.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply},
            "finish_reason": "stop",
        }],
        "usage": usage_json(&usage),
    }))
    .into_response())
}

/// OpenAI's `usage` object for a turn's tokens.
fn usage_json(usage: &TokenUsage) -> Value {
    json!({
        "prompt_tokens": usage.prompt(),
        "completion_tokens": usage.output,
        "total_tokens": usage.prompt() + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read},
    })
}

/// What every chunk of one answer repeats.
struct ChunkHead {
    id: String,
    created: i64,
    model: String,
}

impl ChunkHead {
    fn chunk(&self, delta: Value, finish: Value) -> String {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
        .to_string()
    }

    fn usage(&self, usage: &TokenUsage) -> String {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": [], "usage": usage_json(usage),
        })
        .to_string()
    }
}

enum Answer {
    /// A command's answer, known at once.
    Known(String),
    Coming(PortalWaiter),
}

/// The answer as `chat.completion.chunk`s: the role, then the text as it is written (each
/// chunk what was added since the last), the stop, the usage when asked for, `[DONE]`.
fn stream_answer(head: ChunkHead, answer: Answer, include_usage: bool) -> Response {
    struct Streaming {
        head: ChunkHead,
        answer: Answer,
        sent: String,
        deadline: tokio::time::Instant,
        pending: std::collections::VecDeque<String>,
        done: bool,
        include_usage: bool,
    }
    let mut first = std::collections::VecDeque::new();
    first.push_back(head.chunk(json!({"role": "assistant", "content": ""}), Value::Null));
    let state = Streaming {
        head,
        answer,
        sent: String::new(),
        deadline: tokio::time::Instant::now() + ANSWER_TIMEOUT,
        pending: first,
        done: false,
        include_usage,
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(data) = state.pending.pop_front() {
                return Some((Ok::<_, Infallible>(Event::default().data(data)), state));
            }
            if state.done {
                return None;
            }
            let (text, usage) = match &mut state.answer {
                Answer::Known(text) => (Some(text.clone()), TokenUsage::default()),
                Answer::Coming(waiter) => {
                    match tokio::time::timeout_at(state.deadline, waiter.next()).await {
                        Ok(Progress::Draft(draft)) => {
                            if let Some(added) = draft.strip_prefix(state.sent.as_str())
                                && !added.is_empty()
                            {
                                let chunk =
                                    state.head.chunk(json!({"content": added}), Value::Null);
                                state.pending.push_back(chunk);
                                state.sent = draft;
                            }
                            continue;
                        }
                        Ok(Progress::Answered(reply)) => (reply.content, reply.usage),
                        Ok(Progress::Dropped) | Err(_) => (None, TokenUsage::default()),
                    }
                }
            };
            let text = text.unwrap_or_default();
            match text.strip_prefix(state.sent.as_str()) {
                Some("") => {}
                Some(rest) => {
                    let chunk = state.head.chunk(json!({"content": rest}), Value::Null);
                    state.pending.push_back(chunk);
                }
                None => tracing::warn!(
                    "the streamed draft was not the start of the answer; the client's copy differs"
                ),
            }
            let stop = state.head.chunk(json!({}), json!("stop"));
            state.pending.push_back(stop);
            if state.include_usage {
                let usage = state.head.usage(&usage);
                state.pending.push_back(usage);
            }
            state.pending.push_back("[DONE]".to_string());
            state.done = true;
        }
    });
    Sse::new(stream).into_response()
}
