//! A scripted fake LLM provider (OpenAI chat completions and Anthropic messages) for tests, on 127.0.0.1.
//!
//! Routes: `POST /v1/chat/completions` and `/api/v1/chat/completions` (OpenAI, OpenRouter),
//! `POST /v1/messages` (Anthropic), `GET /v1/models`, `POST /v1/audio/transcriptions` (OpenAI
//! speech to text: records the multipart body, answers `{"text": ...}` with the transcript set
//! by `set_transcript`).
//! Every request body is recorded before a response is chosen. A response is chosen from, in order:
//! the first keyed entry (`push_when`) whose needle occurs in the request's last user text, the FIFO
//! queue (`push`), the fallback responder (`set_fallback`). With none of these the fake answers 500
//! "fake llm: script exhausted", so a test fails loudly. Responses are provider-neutral
//! ([`Scripted`]) and rendered per route, as JSON or, when the request has `"stream": true`, as SSE.
//!
//! ```ignore
//! let llm = FakeLlm::start().await;
//! llm.push(Scripted::tool_call("reply", json!({"text": "hi"})));
//! llm.push(Scripted::text("done"));
//! // point the daemon at llm.openai_base_url() or llm.anthropic_base_url()
//! ```
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

const DEFAULT_MODEL: &str = "fake-model";
const CREATED: u64 = 1_700_000_000;

/// One scripted answer, independent of the provider.
#[derive(Clone, Debug, PartialEq)]
pub enum Scripted {
    Text(String),
    /// `(name, arguments object)`; ids are generated as `call_1`, `call_2`, ... per fake.
    ToolCalls(Vec<(String, Value)>),
    TextAndToolCalls(String, Vec<(String, Value)>),
    /// Error status with this JSON body.
    Status(u16, Value),
    /// 200 with a body that is not valid JSON (`{not json`).
    Garbage,
    Delay(Duration, Box<Scripted>),
    /// Never answers; the client has to give up (timeout tests).
    Hang,
    /// Streamed in small pieces, this long apart (as a real model writes).
    Paced(Duration, Box<Scripted>),
    /// Thinking before the answer: OpenAI-compatible `reasoning_content` (DeepSeek, Qwen) or
    /// an Anthropic `thinking` block with a signature.
    Reasoning(String, Box<Scripted>),
    /// Text cut off at the output limit: `finish_reason: "length"` / `stop_reason: "max_tokens"`.
    Length(String),
    /// A refusal: OpenAI `refusal` (content null), Anthropic `stop_reason: "refusal"`.
    Refusal(String),
    /// An error status with this JSON body and these headers.
    StatusWithHeaders(u16, Value, Vec<(String, String)>),
    /// The stream starts, then the provider reports an error inside it (Anthropic
    /// `event: error`, OpenAI-compatible `data: {"error": ...}`): `(type, message)`.
    StreamError(String, String),
}

impl Scripted {
    pub fn text(text: impl Into<String>) -> Self {
        Scripted::Text(text.into())
    }

    pub fn tool_call(name: &str, arguments: Value) -> Self {
        Scripted::ToolCalls(vec![(name.to_string(), arguments)])
    }

    pub fn delayed(self, delay: Duration) -> Self {
        Scripted::Delay(delay, Box::new(self))
    }

    pub fn paced(self, every: Duration) -> Self {
        Scripted::Paced(every, Box::new(self))
    }

    pub fn after_reasoning(self, reasoning: &str) -> Self {
        Scripted::Reasoning(reasoning.to_string(), Box::new(self))
    }

    /// An error status with an OpenAI-style body, `{"error":{"message","type","code"}}`.
    /// The extra top-level `"type":"error"` makes it an Anthropic-style error body as well.
    pub fn status(code: u16, message: &str) -> Self {
        let error_type = match code {
            400 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        };
        Scripted::Status(
            code,
            json!({"type": "error", "error": {"message": message, "type": error_type, "code": code}}),
        )
    }
}

type Responder = Arc<dyn Fn(&Value) -> Scripted + Send + Sync>;

#[derive(Default)]
struct Script {
    queue: VecDeque<Scripted>,
    keyed: Vec<(String, Scripted)>,
    fallback: Option<Responder>,
    requests: Vec<Value>,
    /// Keep only the count, not the bodies (a benchmark's thousands of long requests).
    count_only: bool,
    received: usize,
    last_call_number: usize,
    /// What `/audio/transcriptions` answers; `None`: 500.
    transcript: Option<String>,
    /// (content type, body) of each transcription request.
    transcriptions: Vec<(String, Vec<u8>)>,
}

struct ToolCall {
    id: String,
    name: String,
    arguments: Value,
}

#[derive(Clone, Copy)]
enum Api {
    OpenAi,
    Anthropic,
}

/// The fake server. Cheap to clone; clones share the script and the recorded requests.
#[derive(Clone)]
pub struct FakeLlm {
    address: SocketAddr,
    script: Arc<Mutex<Script>>,
}

impl FakeLlm {
    /// Binds 127.0.0.1 on a free port and serves until the test's runtime ends.
    pub async fn start() -> FakeLlm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake llm: bind 127.0.0.1:0");
        let address = listener.local_addr().expect("fake llm: local address");
        let fake = FakeLlm {
            address,
            script: Arc::new(Mutex::new(Script::default())),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(openai_route))
            // OpenRouter's base URL ends in /api/v1.
            .route("/api/v1/chat/completions", post(openai_route))
            .route("/v1/messages", post(anthropic_route))
            .route("/v1/models", get(models_route))
            .route("/v1/audio/transcriptions", post(transcription_route))
            .layer(DefaultBodyLimit::disable())
            .with_state(fake.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("fake llm: server stopped: {error}");
            }
        });
        fake
    }

    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// What the transcription endpoint answers from now on.
    pub fn set_transcript(&self, text: &str) {
        self.lock().transcript = Some(text.to_string());
    }

    /// (content type, multipart body) of each transcription request so far.
    pub fn transcriptions(&self) -> Vec<(String, Vec<u8>)> {
        self.lock().transcriptions.clone()
    }

    /// Appends to the FIFO queue.
    pub fn push(&self, response: Scripted) {
        self.lock().queue.push_back(response);
    }

    /// Used once, for the first request whose last user text contains `needle`. Keyed entries are
    /// checked before the queue; entries with equal needles are used in the order pushed.
    pub fn push_when(&self, needle: &str, response: Scripted) {
        self.lock().keyed.push((needle.to_string(), response));
    }

    /// Answers every request that no keyed or queued entry matched.
    pub fn set_fallback(&self, responder: impl Fn(&Value) -> Scripted + Send + Sync + 'static) {
        self.lock().fallback = Some(Arc::new(responder));
    }

    /// Every request body received, in order (a body that is not JSON is kept as a JSON string).
    pub fn requests(&self) -> Vec<Value> {
        self.lock().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.lock().received
    }

    /// From now on requests are counted but their bodies are not kept.
    pub fn count_requests_only(&self) {
        self.lock().count_only = true;
    }

    /// Polls until at least `count` requests arrived; panics on timeout.
    pub async fn wait_for_requests(&self, count: usize, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            if tokio::time::Instant::now() >= deadline {
                let user_texts: Vec<String> = requests.iter().map(Self::last_user_text).collect();
                panic!(
                    "fake llm: expected at least {count} requests within {timeout:?}, got {}; \
                     last user texts: {user_texts:?}",
                    requests.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Text of the last user message that carries text: string content, or its text parts
    /// concatenated (OpenAI and Anthropic shapes). Tool-result parts are ignored, so an Anthropic
    /// user message holding only tool results is skipped, as OpenAI's role=tool messages are.
    pub fn last_user_text(request: &Value) -> String {
        let Some(messages) = request["messages"].as_array() else {
            return String::new();
        };
        messages
            .iter()
            .rev()
            .filter(|message| message["role"] == "user")
            .find_map(|message| content_text(&message["content"]))
            .unwrap_or_default()
    }

    /// The system prompt: OpenAI `role=system` messages, or Anthropic's `system` field.
    pub fn system_text(request: &Value) -> String {
        if let Some(system) = content_text(&request["system"]) {
            return system;
        }
        request["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|message| message["role"] == "system")
            .filter_map(|message| content_text(&message["content"]))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The texts of the tool results in a request, oldest first (OpenAI `role=tool`
    /// messages, Anthropic `tool_result` parts).
    pub fn tool_results(request: &Value) -> Vec<String> {
        let mut results = Vec::new();
        for message in request["messages"].as_array().into_iter().flatten() {
            if message["role"] == "tool" {
                results.extend(content_text(&message["content"]));
            }
            for part in message["content"].as_array().into_iter().flatten() {
                if part["type"] == "tool_result" {
                    results.extend(content_text(&part["content"]));
                }
            }
        }
        results
    }

    /// Names of the tools offered (OpenAI `tools[].function.name`, Anthropic `tools[].name`).
    pub fn tool_names(request: &Value) -> Vec<String> {
        let Some(tools) = request["tools"].as_array() else {
            return Vec::new();
        };
        tools
            .iter()
            .filter_map(|tool| tool["function"]["name"].as_str().or(tool["name"].as_str()))
            .map(String::from)
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the request, then takes the keyed, queued or fallback response.
    fn choose(&self, request: &Value) -> Option<Scripted> {
        let fallback = {
            let mut script = self.lock();
            script.received += 1;
            if !script.count_only {
                script.requests.push(request.clone());
            }
            let user_text = Self::last_user_text(request);
            if let Some(position) = script
                .keyed
                .iter()
                .position(|(needle, _)| user_text.contains(needle.as_str()))
            {
                return Some(script.keyed.remove(position).1);
            }
            if let Some(next) = script.queue.pop_front() {
                return Some(next);
            }
            script.fallback.clone()
        };
        // Called without the lock held, so a responder may use a clone of this fake.
        fallback.map(|responder| responder(request))
    }

    fn number_calls(&self, calls: Vec<(String, Value)>) -> Vec<ToolCall> {
        let mut script = self.lock();
        calls
            .into_iter()
            .map(|(name, arguments)| {
                script.last_call_number += 1;
                ToolCall {
                    id: format!("call_{}", script.last_call_number),
                    name,
                    arguments,
                }
            })
            .collect()
    }

    async fn answer(&self, api: Api, body: Bytes) -> Response {
        let request: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        let Some(mut scripted) = self.choose(&request) else {
            eprintln!(
                "fake llm: script exhausted; last user text: {:?}",
                Self::last_user_text(&request)
            );
            let body = json!({"error": {"message": "fake llm: script exhausted"}});
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
        };
        let streaming = request["stream"].as_bool() == Some(true);
        let model = request["model"].as_str().unwrap_or(DEFAULT_MODEL);
        let mut extras = Extras::default();
        let (text, calls) = loop {
            match scripted {
                Scripted::Delay(delay, inner) => {
                    tokio::time::sleep(delay).await;
                    scripted = *inner;
                }
                Scripted::Paced(every, inner) => {
                    extras.pace = Some(every);
                    scripted = *inner;
                }
                Scripted::Reasoning(reasoning, inner) => {
                    extras.reasoning = Some(reasoning);
                    scripted = *inner;
                }
                Scripted::Length(text) => {
                    extras.ending = Some(("length", "max_tokens"));
                    break (Some(text), Vec::new());
                }
                Scripted::Refusal(text) => {
                    extras.refusal = Some(text);
                    extras.ending = Some(("stop", "refusal"));
                    break (None, Vec::new());
                }
                Scripted::StatusWithHeaders(code, body, headers) => {
                    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                    let mut response = (status, Json(body)).into_response();
                    for (name, value) in headers {
                        if let (Ok(name), Ok(value)) = (
                            header::HeaderName::from_bytes(name.as_bytes()),
                            header::HeaderValue::from_str(&value),
                        ) {
                            response.headers_mut().insert(name, value);
                        }
                    }
                    return response;
                }
                Scripted::StreamError(kind, message) => {
                    extras.stream_error = Some((kind, message));
                    break (None, Vec::new());
                }
                Scripted::Hang => return std::future::pending().await,
                Scripted::Garbage => {
                    let content_type = [(header::CONTENT_TYPE, "application/json")];
                    return (StatusCode::OK, content_type, "{not json").into_response();
                }
                Scripted::Status(code, body) => {
                    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                    return (status, Json(body)).into_response();
                }
                Scripted::Text(text) => break (Some(text), Vec::new()),
                Scripted::ToolCalls(calls) => break (None, calls),
                Scripted::TextAndToolCalls(text, calls) => break (Some(text), calls),
            }
        };
        let calls = self.number_calls(calls);
        let text = text.as_deref();
        match (api, streaming) {
            (Api::OpenAi, false) => Json(openai_json(model, text, &calls, &extras)).into_response(),
            (Api::OpenAi, true) => {
                event_stream(openai_events(model, text, &calls, &extras), extras.pace)
            }
            (Api::Anthropic, false) => {
                Json(anthropic_json(model, text, &calls, &extras)).into_response()
            }
            (Api::Anthropic, true) => {
                event_stream(anthropic_events(model, text, &calls, &extras), extras.pace)
            }
        }
    }
}

async fn openai_route(State(fake): State<FakeLlm>, body: Bytes) -> Response {
    fake.answer(Api::OpenAi, body).await
}

async fn anthropic_route(State(fake): State<FakeLlm>, body: Bytes) -> Response {
    fake.answer(Api::Anthropic, body).await
}

/// A small list in a shape that suits both OpenAI and Anthropic model listings.
async fn transcription_route(
    State(fake): State<FakeLlm>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let transcript = {
        let mut script = fake.lock();
        script.transcriptions.push((content_type, body.to_vec()));
        script.transcript.clone()
    };
    match transcript {
        Some(text) => Json(json!({"text": text})).into_response(),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "fake llm: no transcript set"}})),
        )
            .into_response(),
    }
}

async fn models_route() -> Json<Value> {
    let model = |id: &str| {
        json!({"id": id, "object": "model", "type": "model", "created": CREATED,
            "owned_by": "fake-llm", "display_name": id, "created_at": "2023-11-14T22:13:20Z"})
    };
    let data = [model("fake-model"), model("fake-claude")];
    let list = json!({"object": "list", "data": data, "has_more": false,
        "first_id": "fake-model", "last_id": "fake-claude"});
    Json(list)
}

fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|part| part["type"] == "text")
                .filter_map(|part| part["text"].as_str())
                .collect();
            (!texts.is_empty()).then(|| texts.concat())
        }
        _ => None,
    }
}

/// What a scripted answer adds to the plain text-and-calls shape.
#[derive(Default)]
struct Extras {
    pace: Option<Duration>,
    reasoning: Option<String>,
    refusal: Option<String>,
    /// (OpenAI finish reason, Anthropic stop reason) instead of the usual ones.
    ending: Option<(&'static str, &'static str)>,
    stream_error: Option<(String, String)>,
}

impl Extras {
    /// Pieces of streamed text: 2 or 3, or 4-character pieces when paced.
    fn pieces(&self, text: &str) -> Vec<String> {
        if self.pace.is_some() {
            let characters: Vec<char> = text.chars().collect();
            return characters.chunks(4).map(String::from_iter).collect();
        }
        pieces(text)
    }
}

/// Splits into 2 or 3 pieces on character boundaries (1 piece if shorter than 2 characters).
fn pieces(text: &str) -> Vec<String> {
    let characters: Vec<char> = text.chars().collect();
    let count = characters.len().min(3);
    if count < 2 {
        return vec![text.to_string()];
    }
    let size = characters.len().div_ceil(count);
    characters.chunks(size).map(String::from_iter).collect()
}

/// The finish (OpenAI) or stop (Anthropic) reason: `done` for plain text, `tools` with tool calls.
fn ending(calls: &[ToolCall], done: &'static str, tools: &'static str) -> &'static str {
    if calls.is_empty() { done } else { tools }
}

/// The events as one SSE body, or paced: one event at a time, `every` apart.
fn event_stream(events: Vec<String>, pace: Option<Duration>) -> Response {
    let content_type = [(header::CONTENT_TYPE, "text/event-stream")];
    let Some(every) = pace else {
        return (StatusCode::OK, content_type, events.concat()).into_response();
    };
    let paced = futures::stream::iter(events).then(move |event| async move {
        tokio::time::sleep(every).await;
        Ok::<_, std::convert::Infallible>(event)
    });
    (
        StatusCode::OK,
        content_type,
        axum::body::Body::from_stream(paced),
    )
        .into_response()
}

fn openai_json(model: &str, text: Option<&str>, calls: &[ToolCall], extras: &Extras) -> Value {
    let mut message = json!({"role": "assistant", "content": text});
    if let Some(reasoning) = &extras.reasoning {
        message["reasoning_content"] = json!(reasoning);
    }
    if let Some(refusal) = &extras.refusal {
        message["refusal"] = json!(refusal);
    }
    if !calls.is_empty() {
        let tool_calls: Vec<Value> = calls
            .iter()
            .map(|call| {
                json!({"id": call.id, "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments.to_string()}})
            })
            .collect();
        message["tool_calls"] = Value::Array(tool_calls);
    }
    let finish_reason = extras
        .ending
        .map_or_else(|| ending(calls, "stop", "tool_calls"), |(openai, _)| openai);
    json!({"id": "chatcmpl-fake", "object": "chat.completion", "created": CREATED, "model": model,
        "choices": [{"index": 0, "logprobs": null, "finish_reason": finish_reason, "message": message}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
}

/// Chunks: text pieces, then per tool call a header (id, name) and argument fragments, then the
/// finish reason, then a usage-only chunk, then `[DONE]`.
fn openai_events(
    model: &str,
    text: Option<&str>,
    calls: &[ToolCall],
    extras: &Extras,
) -> Vec<String> {
    let chunk = |choices: Value| {
        json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": CREATED,
            "model": model, "choices": choices})
    };
    let delta = |delta: Value, finish_reason: Value| {
        chunk(json!([{"index": 0, "delta": delta, "finish_reason": finish_reason}]))
    };
    let mut chunks = vec![delta(json!({"role": "assistant"}), Value::Null)];
    for piece in extras.reasoning.as_deref().map(pieces).unwrap_or_default() {
        chunks.push(delta(json!({"reasoning_content": piece}), Value::Null));
    }
    for piece in extras.refusal.as_deref().map(pieces).unwrap_or_default() {
        chunks.push(delta(
            json!({"content": null, "refusal": piece}),
            Value::Null,
        ));
    }
    if let Some((kind, message)) = &extras.stream_error {
        chunks.push(delta(json!({"content": "Partial "}), Value::Null));
        chunks.push(json!({"error": {"type": kind, "message": message}}));
        return chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    }
    for piece in text.map(|text| extras.pieces(text)).unwrap_or_default() {
        chunks.push(delta(json!({"content": piece}), Value::Null));
    }
    for (index, call) in calls.iter().enumerate() {
        let header = json!({"index": index, "id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": ""}});
        chunks.push(delta(json!({"tool_calls": [header]}), Value::Null));
        for fragment in extras.pieces(&call.arguments.to_string()) {
            let part = json!({"index": index, "function": {"arguments": fragment}});
            chunks.push(delta(json!({"tool_calls": [part]}), Value::Null));
        }
    }
    let finish_reason = extras
        .ending
        .map_or_else(|| ending(calls, "stop", "tool_calls"), |(openai, _)| openai);
    chunks.push(delta(json!({}), json!(finish_reason)));
    let mut usage = chunk(json!([]));
    usage["usage"] = json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15});
    chunks.push(usage);
    let mut events: Vec<String> = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    events.push("data: [DONE]\n\n".to_string());
    events
}

fn anthropic_json(model: &str, text: Option<&str>, calls: &[ToolCall], extras: &Extras) -> Value {
    let mut content: Vec<Value> = extras
        .reasoning
        .iter()
        .map(|thinking| json!({"type": "thinking", "thinking": thinking, "signature": "sig-fake"}))
        .collect();
    content.extend(text.map(|text| json!({"type": "text", "text": text})));
    content.extend(calls.iter().map(|call| {
        json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
    }));
    let stop_reason = extras.ending.map_or_else(
        || ending(calls, "end_turn", "tool_use"),
        |(_, anthropic)| anthropic,
    );
    json!({"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop_reason, "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 5}})
}

/// Anthropic message events: message_start, per block start / deltas / stop, message_delta with
/// the stop reason and usage, message_stop.
fn anthropic_events(
    model: &str,
    text: Option<&str>,
    calls: &[ToolCall],
    extras: &Extras,
) -> Vec<String> {
    let mut events = vec![
        json!({"type": "message_start", "message": {"id": "msg_fake",
        "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 30,
            "cache_creation_input_tokens": 20}}}),
    ];
    let named = |event: &Value| {
        format!(
            "event: {}\ndata: {event}\n\n",
            event["type"].as_str().unwrap_or("")
        )
    };
    if let Some((kind, message)) = &extras.stream_error {
        events.push(json!({"type": "error", "error": {"type": kind, "message": message}}));
        return events.iter().map(named).collect();
    }
    let mut blocks: Vec<(Value, Vec<Value>)> = Vec::new();
    if let Some(thinking) = &extras.reasoning {
        let mut deltas: Vec<Value> = pieces(thinking)
            .into_iter()
            .map(|piece| json!({"type": "thinking_delta", "thinking": piece}))
            .collect();
        deltas.push(json!({"type": "signature_delta", "signature": "sig-fake"}));
        blocks.push((json!({"type": "thinking", "thinking": ""}), deltas));
    }
    if let Some(text) = text {
        let deltas = extras.pieces(text).into_iter();
        let deltas = deltas.map(|piece| json!({"type": "text_delta", "text": piece}));
        blocks.push((json!({"type": "text", "text": ""}), deltas.collect()));
    }
    for call in calls {
        let start = json!({"type": "tool_use", "id": call.id, "name": call.name, "input": {}});
        // A call without arguments streams no argument fragments at all.
        let arguments = match &call.arguments {
            Value::Object(object) if object.is_empty() => String::new(),
            arguments => arguments.to_string(),
        };
        let deltas = extras
            .pieces(&arguments)
            .into_iter()
            .filter(|piece| !piece.is_empty());
        let deltas = deltas.map(|piece| json!({"type": "input_json_delta", "partial_json": piece}));
        blocks.push((start, deltas.collect()));
    }
    for (index, (start, deltas)) in blocks.into_iter().enumerate() {
        events.push(json!({"type": "content_block_start", "index": index, "content_block": start}));
        for delta in deltas {
            events.push(json!({"type": "content_block_delta", "index": index, "delta": delta}));
        }
        events.push(json!({"type": "content_block_stop", "index": index}));
    }
    let stop_reason = extras.ending.map_or_else(
        || ending(calls, "end_turn", "tool_use"),
        |(_, anthropic)| anthropic,
    );
    events.push(json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {"output_tokens": 5}}));
    events.push(json!({"type": "message_stop"}));
    events.iter().map(named).collect()
}
