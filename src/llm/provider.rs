//! One configured LLM provider: rig-core's client for OpenAI chat completions or Anthropic
//! messages, over the watching `Transport`. Every call is streamed: deltas go to the caller's
//! `StreamSink` as they arrive, and the assembled answer comes back at the end. Per-model
//! settings (output limit, temperature, reasoning effort) and Anthropic prompt caching are
//! applied here.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use rig::client::CompletionClient;
use rig::completion::{
    CompletionError, CompletionModel, CompletionRequest, GetTokenUsage, ToolDefinition, Usage,
};
use rig::message::{AssistantContent, ReasoningContent, ToolCall, ToolFunction};
use rig::providers::{anthropic, openai};
use rig::streaming::{StreamedAssistantContent, StreamingCompletionResponse, ToolCallDeltaContent};
use serde_json::{Value, json};

use super::StreamSink;
use super::transport::{ExchangeLog, Transport};
use crate::config::{ModelSettings, ProviderConfig, ProviderKind};

/// Anthropic requires `max_tokens`; used when the model's settings name none.
const ANTHROPIC_MAX_TOKENS: u64 = 4096;

#[derive(Clone)]
pub struct ProviderClient {
    kind: ProviderKind,
    api_key: String,
    base_url: Option<String>,
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the client for provider `{name}`: {message}")]
pub struct ProviderBuildError {
    pub name: String,
    pub message: String,
}

/// A streamed answer, assembled.
pub struct Streamed {
    pub content: Vec<AssistantContent>,
    pub usage: Usage,
}

impl ProviderClient {
    pub fn build(config: &ProviderConfig) -> Result<Self, ProviderBuildError> {
        let build_error = |message: String| ProviderBuildError {
            name: config.name.clone(),
            message,
        };
        let http = reqwest::Client::builder()
            .read_timeout(Duration::from_secs(config.timeout_secs))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| build_error(error.to_string()))?;
        let provider = Self {
            kind: config.kind,
            // Local OpenAI-compatible servers (Ollama, llama.cpp) accept any key.
            api_key: config.api_key.clone().unwrap_or_else(|| "none".to_string()),
            base_url: config.base_url.clone(),
            http,
        };
        // Building once here reports a key that cannot be a header at startup.
        provider
            .check(&ExchangeLog::default())
            .map_err(|error| build_error(error.to_string()))?;
        Ok(provider)
    }

    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// Speech to text through the OpenAI-compatible `POST {base}/audio/transcriptions`
    /// (OpenAI, Groq, a local whisper server): the audio as a multipart `file`, answered with
    /// `{"text": ...}`.
    pub async fn transcribe(
        &self,
        model: &crate::config::ModelId,
        name: &str,
        media_type: &str,
        audio: &[u8],
    ) -> Result<String, super::LlmError> {
        let model_name = model.to_string();
        if self.kind != ProviderKind::OpenAi {
            return Err(super::LlmError::Request {
                model: model_name,
                message: "transcription needs an OpenAI-compatible provider (kind = \"openai\")"
                    .to_string(),
            });
        }
        let base = self
            .base_url
            .as_deref()
            .unwrap_or("https://api.openai.com/v1");
        let boundary = format!("spacebot-{}", uuid::Uuid::new_v4().simple());
        // A file name and type safe inside a quoted header value.
        let file_name: String = name
            .chars()
            .filter(|character| !matches!(character, '"' | '\\' | '\r' | '\n'))
            .collect();
        let media_type: String = media_type
            .chars()
            .filter(|character| !character.is_control())
            .collect();
        let mut body = Vec::with_capacity(audio.len() + 512);
        for (field, value) in [("model", model.model.as_str()), ("response_format", "json")] {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: {media_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(audio);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let response = self
            .http
            .post(format!("{base}/audio/transcriptions"))
            .bearer_auth(&self.api_key)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .map_err(|error| super::LlmError::Transport {
                model: model_name.clone(),
                message: error.without_url().to_string(),
            })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| super::LlmError::Transport {
                model: model_name.clone(),
                message: error.without_url().to_string(),
            })?;
        if !status.is_success() {
            return Err(super::LlmError::Status {
                model: model_name,
                status: status.as_u16(),
                body: text.chars().take(500).collect(),
                retry_after: None,
            });
        }
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|value| value.get("text")?.as_str().map(str::to_string))
            .ok_or_else(|| super::LlmError::InvalidResponse {
                model: model_name,
                message: "a transcription answer without `text`".to_string(),
            })
    }

    fn check(&self, log: &ExchangeLog) -> Result<(), rig::http_client::Error> {
        match self.kind {
            ProviderKind::OpenAi => self.openai(log).map(|_| ()),
            ProviderKind::Anthropic => self.anthropic(log).map(|_| ()),
        }
    }

    fn transport(&self, log: &ExchangeLog) -> Transport {
        Transport {
            http: self.http.clone(),
            log: log.clone(),
        }
    }

    fn openai(
        &self,
        log: &ExchangeLog,
    ) -> Result<openai::CompletionsClient<Transport>, rig::http_client::Error> {
        let mut builder = openai::CompletionsClient::builder()
            .api_key(&self.api_key)
            .http_client(self.transport(log));
        if let Some(base_url) = &self.base_url {
            builder = builder.base_url(base_url);
        }
        builder.build()
    }

    fn anthropic(
        &self,
        log: &ExchangeLog,
    ) -> Result<anthropic::Client<Transport>, rig::http_client::Error> {
        let mut builder = anthropic::Client::builder()
            .api_key(&self.api_key)
            .http_client(self.transport(log));
        if let Some(base_url) = &self.base_url {
            builder = builder.base_url(base_url);
        }
        builder.build()
    }

    /// One streamed completion, no retries. What the transport saw lands in `log`.
    pub async fn stream(
        &self,
        model: &str,
        mut request: CompletionRequest,
        settings: &ModelSettings,
        log: &ExchangeLog,
        sink: &mut dyn StreamSink,
    ) -> Result<Streamed, CompletionError> {
        request.temperature = settings.temperature;
        match self.kind {
            ProviderKind::OpenAi => {
                request.max_tokens = settings.max_output_tokens;
                let mut extra = json!({"stream": true, "stream_options": {"include_usage": true}});
                if let Some(effort) = &settings.reasoning_effort {
                    extra["reasoning_effort"] = json!(effort);
                }
                request.additional_params = Some(extra);
                let client = self.openai(log).map_err(CompletionError::HttpError)?;
                // rig's own `stream` renders the request three times (the messages for a
                // tracing span, a JSON tree, then its bytes) and reads the answer slowly:
                // rendering it once and reading it with `openai_stream` takes most of what
                // streaming added to a turn away.
                let body = openai::CompletionRequest::try_from(openai::OpenAIRequestParams {
                    model: model.to_string(),
                    request,
                    strict_tools: false,
                    tool_result_array_content: false,
                })?;
                let body = serde_json::to_vec(&body)?;
                let http_request = client
                    .post("/chat/completions")
                    .and_then(|builder| builder.body(body).map_err(Into::into))
                    .map_err(CompletionError::HttpError)?;
                let response = self
                    .transport(log)
                    .open_stream(http_request)
                    .await
                    .map_err(CompletionError::HttpError)?;
                super::openai_stream::read(response, log, sink).await
            }
            ProviderKind::Anthropic => {
                let mut max_tokens = settings.max_output_tokens.unwrap_or(ANTHROPIC_MAX_TOKENS);
                let mut extra = serde_json::Map::new();
                if let Some(budget) = settings.reasoning_effort.as_deref().map(thinking_budget) {
                    extra.insert(
                        "thinking".into(),
                        json!({"type": "enabled", "budget_tokens": budget}),
                    );
                    max_tokens = max_tokens.max(budget + ANTHROPIC_MAX_TOKENS);
                    // Extended thinking accepts no temperature but the default.
                    request.temperature = None;
                }
                request.max_tokens = Some(max_tokens);
                // Tools go as raw definitions so the last one can carry a cache breakpoint:
                // tools, then the system prompt (marked by rig), are the cached prefix.
                let tools = std::mem::take(&mut request.tools);
                if !tools.is_empty() {
                    extra.insert("tools".into(), Value::Array(cached_tools(&tools)));
                }
                if !extra.is_empty() {
                    request.additional_params = Some(Value::Object(extra));
                }
                let client = self.anthropic(log).map_err(CompletionError::HttpError)?;
                let response = client
                    .completion_model(model)
                    .with_prompt_caching()
                    .stream(request)
                    .await?;
                let mut streamed = drain(response, sink).await?;
                // rig keeps the thinking twice: accumulated from its deltas (unsigned) and
                // whole with its signature. Anthropic wants it back signed, once.
                streamed.content.retain(|part| match part {
                    AssistantContent::Reasoning(reasoning) => {
                        reasoning.content.iter().all(|content| {
                            !matches!(
                                content,
                                ReasoningContent::Text {
                                    signature: None,
                                    ..
                                }
                            )
                        })
                    }
                    _ => true,
                });
                Ok(streamed)
            }
        }
    }
}

/// Anthropic thinking budgets for `reasoning_effort`.
fn thinking_budget(effort: &str) -> u64 {
    match effort {
        "low" => 2048,
        "high" => 24_576,
        _ => 8192,
    }
}

/// Anthropic tool definitions, the last one marked as a prompt-cache breakpoint.
fn cached_tools(tools: &[ToolDefinition]) -> Vec<Value> {
    let mut definitions: Vec<Value> = tools
        .iter()
        .map(|tool| {
            json!({"name": tool.name, "description": tool.description,
                "input_schema": tool.parameters})
        })
        .collect();
    if let Some(last) = definitions.last_mut() {
        last["cache_control"] = json!({"type": "ephemeral"});
    }
    definitions
}

/// Reads a stream to its end, handing deltas to `sink`. A tool call whose arguments are not
/// JSON (cut off, or malformed by a weak model) is kept with its raw text as arguments, so
/// the model can be told, instead of failing the call.
async fn drain<R>(
    mut response: StreamingCompletionResponse<R>,
    sink: &mut dyn StreamSink,
) -> Result<Streamed, CompletionError>
where
    R: Clone + Unpin + GetTokenUsage,
{
    let mut usage = None;
    // Calls started and their raw arguments, by rig's internal id, until rig completes them.
    let mut open_calls: HashMap<String, (String, String, String)> = HashMap::new();
    let mut broken_calls = Vec::new();
    // Provider ids of the calls in the order they began: rig hands parallel OpenAI calls
    // over in hash order, and the first call must stay first (the first `reply` wins).
    let mut call_order: Vec<String> = Vec::new();
    while let Some(item) = response.next().await {
        let item = match item {
            Ok(item) => item,
            Err(CompletionError::JsonError(error)) if !open_calls.is_empty() => {
                tracing::debug!(%error, "a streamed tool call's arguments are not JSON");
                broken_calls.extend(open_calls.drain().map(|(_, call)| call));
                continue;
            }
            Err(error) => return Err(error),
        };
        match item {
            StreamedAssistantContent::Text(text) => sink.text(&text.text),
            StreamedAssistantContent::ToolCallDelta {
                id,
                internal_call_id,
                content,
            } => match content {
                ToolCallDeltaContent::Name(name) => {
                    sink.tool_call_name(&internal_call_id, &name);
                    if !call_order.contains(&id) {
                        call_order.push(id.clone());
                    }
                    open_calls.insert(internal_call_id, (id, name, String::new()));
                }
                ToolCallDeltaContent::Delta(fragment) => {
                    sink.tool_call_arguments(&internal_call_id, &fragment);
                    if let Some(call) = open_calls.get_mut(&internal_call_id) {
                        call.2.push_str(&fragment);
                    }
                }
            },
            StreamedAssistantContent::ToolCall {
                internal_call_id, ..
            } => {
                open_calls.remove(&internal_call_id);
            }
            StreamedAssistantContent::Final(final_response) => {
                usage = final_response.token_usage();
            }
            StreamedAssistantContent::Reasoning(_)
            | StreamedAssistantContent::ReasoningDelta { .. } => {}
        }
    }
    let mut content: Vec<AssistantContent> = response
        .choice
        .into_iter()
        .filter(|part| !matches!(part, AssistantContent::Text(text) if text.text.is_empty()))
        .collect();
    let position = |part: &AssistantContent| match part {
        AssistantContent::ToolCall(call) => call_order
            .iter()
            .position(|id| *id == call.id)
            .unwrap_or(usize::MAX),
        _ => 0,
    };
    // Stable: text and reasoning keep their place before the calls.
    content.sort_by_key(position);
    content.extend(broken_calls.into_iter().map(|(id, name, arguments)| {
        AssistantContent::ToolCall(ToolCall {
            id,
            call_id: None,
            function: ToolFunction {
                name,
                arguments: Value::String(arguments),
            },
            signature: None,
            additional_params: None,
        })
    }));
    Ok(Streamed {
        content,
        usage: usage.unwrap_or_default(),
    })
}
