//! `LlmError`: why a completion failed, classified from the HTTP exchange (status, body,
//! rate-limit headers) and rig's error, and what the manager does about each kind.

use std::time::Duration;

use rig::completion::CompletionError;

use super::SETUP_HINT;
use super::transport::Exchange;
use crate::config::ModelId;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("{SETUP_HINT}")]
    NotConfigured,
    #[error("model `{model}` names provider `{provider}`, which is not configured")]
    UnknownProvider { model: String, provider: String },
    #[error("`{model}` answered HTTP {status}: {body}")]
    Status {
        model: String,
        status: u16,
        body: String,
        /// How long the provider asked to wait (retry-after or rate-limit reset headers).
        retry_after: Option<Duration>,
    },
    /// The request did not fit the model's context window (OpenAI
    /// `context_length_exceeded`, Anthropic "prompt is too long", llama.cpp and vLLM
    /// equivalents). The channel compacts and tries once more.
    #[error("the conversation no longer fits `{model}`'s context window: {body}")]
    ContextOverflow { model: String, body: String },
    /// The server refused the `tools` field; the model is switched to tool-less mode.
    #[error("`{model}` does not accept tools: {body}")]
    ToolsUnsupported { model: String, body: String },
    #[error("`{model}` timed out: {message}")]
    Timeout { model: String, message: String },
    #[error("cannot reach `{model}`: {message}")]
    Transport { model: String, message: String },
    #[error("`{model}` sent a reply that could not be read: {message}")]
    InvalidResponse { model: String, message: String },
    /// The provider reported an error inside an otherwise successful stream (Anthropic
    /// `overloaded_error` mid-answer, for example).
    #[error("`{model}` failed while answering: {message}")]
    StreamFailed { model: String, message: String },
    #[error("cannot build the request for `{model}`: {message}")]
    Request { model: String, message: String },
    #[error("every model failed ({attempts} attempts); last error: {last}")]
    Exhausted { attempts: u32, last: Box<LlmError> },
    #[error(
        "`{model}` failed {failures} times in a row and is paused for {retry_in_secs}s (circuit \
         breaker); last error: {last}"
    )]
    CircuitOpen {
        model: String,
        failures: u32,
        retry_in_secs: u64,
        last: String,
    },
    #[error(
        "today's token budget of {budget} tokens is spent ({spent} used); it renews at \
         midnight UTC"
    )]
    BudgetSpent { budget: u64, spent: u64 },
}

impl LlmError {
    /// A short name for the metrics: what kind of failure this was.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::Status { status: 429, .. } => "rate_limited",
            LlmError::Status { status, .. } if *status >= 500 => "status_5xx",
            LlmError::Status { .. } => "status_4xx",
            LlmError::ContextOverflow { .. } => "context_overflow",
            LlmError::ToolsUnsupported { .. } => "tools_unsupported",
            LlmError::Timeout { .. } => "timeout",
            LlmError::Transport { .. } => "transport",
            LlmError::InvalidResponse { .. } => "invalid_response",
            LlmError::StreamFailed { .. } => "stream_failed",
            LlmError::Request { .. } => "request",
            LlmError::NotConfigured => "not_configured",
            LlmError::UnknownProvider { .. } => "unknown_provider",
            LlmError::Exhausted { .. } => "exhausted",
            LlmError::CircuitOpen { .. } => "circuit_open",
            LlmError::BudgetSpent { .. } => "budget_spent",
        }
    }

    pub(super) fn is_retryable(&self) -> bool {
        match self {
            LlmError::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            LlmError::Timeout { .. }
            | LlmError::Transport { .. }
            | LlmError::InvalidResponse { .. }
            | LlmError::StreamFailed { .. } => true,
            LlmError::NotConfigured
            | LlmError::UnknownProvider { .. }
            | LlmError::ContextOverflow { .. }
            | LlmError::ToolsUnsupported { .. }
            | LlmError::Request { .. }
            | LlmError::Exhausted { .. }
            | LlmError::CircuitOpen { .. }
            | LlmError::BudgetSpent { .. } => false,
        }
    }

    /// Whether the failure says something about the model or its provider (down, refusing
    /// the key, unknown model), rather than about one request.
    pub(super) fn counts_against_model(&self) -> bool {
        match self {
            LlmError::Status { status, .. } => {
                matches!(status, 401 | 403 | 404 | 408 | 429) || *status >= 500
            }
            // Otherwise what is worth retrying is what says the model is unwell.
            _ => self.is_retryable(),
        }
    }

    /// 429 and Anthropic's 529 `overloaded_error`: the model is passed over for a while.
    pub(super) fn is_rate_limit(&self) -> bool {
        matches!(
            self,
            LlmError::Status {
                status: 429 | 529,
                ..
            }
        )
    }

    pub(super) fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The context overflow behind this error, through fallbacks.
    pub fn is_context_overflow(&self) -> bool {
        match self {
            LlmError::ContextOverflow { .. } => true,
            LlmError::Exhausted { last, .. } => last.is_context_overflow(),
            _ => false,
        }
    }

    /// Classifies a failed call: what the transport saw of a refused request first (status,
    /// body, wait), then rig's error.
    pub(super) fn classify(
        model: &ModelId,
        exchange: &Exchange,
        offered_tools: bool,
        error: CompletionError,
    ) -> Self {
        let name = model.to_string();
        if let Some((status, body)) = &exchange.refused {
            return Self::from_status(&name, *status, body.clone(), exchange, offered_tools);
        }
        use rig::http_client::Error as HttpError;
        match error {
            CompletionError::HttpError(HttpError::InvalidStatusCodeWithMessage(status, body)) => {
                Self::from_status(&name, status.as_u16(), body, exchange, offered_tools)
            }
            CompletionError::HttpError(HttpError::InvalidStatusCode(status)) => Self::from_status(
                &name,
                status.as_u16(),
                String::new(),
                exchange,
                offered_tools,
            ),
            CompletionError::HttpError(HttpError::Instance(inner)) => {
                let timed_out = inner
                    .downcast_ref::<reqwest::Error>()
                    .is_some_and(reqwest::Error::is_timeout);
                let message = error_chain(inner.as_ref());
                if timed_out {
                    LlmError::Timeout {
                        model: name,
                        message,
                    }
                } else {
                    LlmError::Transport {
                        model: name,
                        message,
                    }
                }
            }
            CompletionError::HttpError(other) => LlmError::Transport {
                model: name,
                message: other.to_string(),
            },
            CompletionError::JsonError(error) => LlmError::InvalidResponse {
                model: name,
                message: error.to_string(),
            },
            CompletionError::ResponseError(message) | CompletionError::ProviderError(message) => {
                // rig reports a stream's transport failure as text; a timeout stays one.
                if message.contains("timed out") || message.contains("operation timed out") {
                    LlmError::Timeout {
                        model: name,
                        message,
                    }
                } else {
                    LlmError::InvalidResponse {
                        model: name,
                        message,
                    }
                }
            }
            CompletionError::UrlError(error) => LlmError::Request {
                model: name,
                message: error.to_string(),
            },
            CompletionError::RequestError(error) => LlmError::Request {
                model: name,
                message: error.to_string(),
            },
        }
    }

    fn from_status(
        model: &str,
        status: u16,
        body: String,
        exchange: &Exchange,
        offered_tools: bool,
    ) -> Self {
        let model = model.to_string();
        if matches!(status, 400 | 413 | 422) && mentions_context_overflow(&body) {
            return LlmError::ContextOverflow { model, body };
        }
        if status == 400 && offered_tools && mentions_tools(&body) {
            return LlmError::ToolsUnsupported { model, body };
        }
        LlmError::Status {
            model,
            status,
            body,
            retry_after: exchange.retry_after,
        }
    }
}

/// OpenAI `context_length_exceeded`, Anthropic "prompt is too long", vLLM "maximum context
/// length", llama.cpp `exceed_context_size_error`.
fn mentions_context_overflow(body: &str) -> bool {
    let body = body.to_ascii_lowercase();
    [
        "context_length_exceeded",
        "prompt is too long",
        "maximum context length",
        "exceed_context_size",
        "exceeds the available context size",
        "context window",
    ]
    .iter()
    .any(|needle| body.contains(needle))
}

/// Ollama "does not support tools", llama.cpp "tools param requires --jinja flag", vLLM
/// "\"auto\" tool choice requires --enable-auto-tool-choice".
fn mentions_tools(body: &str) -> bool {
    let body = body.to_ascii_lowercase();
    body.contains("tool")
}

pub(super) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, body: &str, offered_tools: bool) -> LlmError {
        let exchange = Exchange {
            refused: Some((status, body.to_string())),
            ..Exchange::default()
        };
        let model: ModelId = "p/m".parse().expect("model");
        let error = CompletionError::ProviderError("ignored".into());
        LlmError::classify(&model, &exchange, offered_tools, error)
    }

    #[test]
    fn refusals_are_classified_by_status_and_body() {
        let overflow = classify(
            400,
            r#"{"error":{"code":"context_length_exceeded","message":"too long"}}"#,
            true,
        );
        assert!(overflow.is_context_overflow());
        let anthropic = classify(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208000 tokens > 200000 maximum"}}"#,
            false,
        );
        assert!(anthropic.is_context_overflow());
        let tools = classify(
            400,
            r#"{"error":"registry.ollama.ai/library/gemma:2b does not support tools"}"#,
            true,
        );
        assert!(matches!(tools, LlmError::ToolsUnsupported { .. }));
        let plain = classify(400, "tools mentioned", false);
        assert!(matches!(plain, LlmError::Status { status: 400, .. }));
        let overloaded = classify(
            529,
            r#"{"type":"error","error":{"type":"overloaded_error"}}"#,
            true,
        );
        assert!(overloaded.is_retryable() && overloaded.is_rate_limit());
    }
}
