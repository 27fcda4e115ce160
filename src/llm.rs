//! The LLM layer: providers built from config, model routing by process type, retries with
//! backoff and jitter, fallbacks, rate-limit cool-downs and per-call token usage.

pub mod provider;
pub mod usage;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rig::OneOrMany;
use rig::completion::{CompletionError, CompletionRequest, ToolDefinition};
use rig::message::{AssistantContent, Message};
use serde::Serialize;

use crate::config::{Config, ModelId, ProviderKind, RetryConfig, RoutingConfig};
use crate::event::{ProcessId, ProcessType};
pub use provider::ProviderClient;
pub use usage::UsageRecorder;

/// What a user without a provider is told, in the log, in `status` and in every reply.
pub const SETUP_HINT: &str = "No LLM provider is configured. Set OPENAI_API_KEY (and optionally \
OPENAI_BASE_URL for Ollama, llama.cpp, vLLM or OpenRouter) or ANTHROPIC_API_KEY before starting \
the daemon, or add an [llm.providers.NAME] section with base_url and api_key to the config file.";

/// How long a model that answered 429 is passed over while fallbacks remain.
const RATE_LIMIT_COOL_DOWN: Duration = Duration::from_secs(30);

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
    },
    #[error("`{model}` timed out: {message}")]
    Timeout { model: String, message: String },
    #[error("cannot reach `{model}`: {message}")]
    Transport { model: String, message: String },
    #[error("`{model}` sent a reply that could not be read: {message}")]
    InvalidResponse { model: String, message: String },
    #[error("cannot build the request for `{model}`: {message}")]
    Request { model: String, message: String },
    #[error("every model failed ({attempts} attempts); last error: {last}")]
    Exhausted { attempts: u32, last: Box<LlmError> },
}

impl LlmError {
    fn is_retryable(&self) -> bool {
        match self {
            LlmError::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            LlmError::Timeout { .. }
            | LlmError::Transport { .. }
            | LlmError::InvalidResponse { .. } => true,
            LlmError::NotConfigured
            | LlmError::UnknownProvider { .. }
            | LlmError::Request { .. }
            | LlmError::Exhausted { .. } => false,
        }
    }

    fn is_rate_limit(&self) -> bool {
        matches!(self, LlmError::Status { status: 429, .. })
    }

    fn from_completion(model: &ModelId, error: CompletionError) -> Self {
        use rig::http_client::Error as HttpError;
        let model = model.to_string();
        match error {
            CompletionError::HttpError(HttpError::InvalidStatusCodeWithMessage(status, body)) => {
                LlmError::Status {
                    model,
                    status: status.as_u16(),
                    body,
                }
            }
            CompletionError::HttpError(HttpError::InvalidStatusCode(status)) => LlmError::Status {
                model,
                status: status.as_u16(),
                body: String::new(),
            },
            CompletionError::HttpError(HttpError::Instance(inner)) => {
                let timed_out = inner
                    .downcast_ref::<reqwest::Error>()
                    .is_some_and(reqwest::Error::is_timeout);
                let message = error_chain(inner.as_ref());
                if timed_out {
                    LlmError::Timeout { model, message }
                } else {
                    LlmError::Transport { model, message }
                }
            }
            CompletionError::HttpError(other) => LlmError::Transport {
                model,
                message: other.to_string(),
            },
            CompletionError::JsonError(error) => LlmError::InvalidResponse {
                model,
                message: error.to_string(),
            },
            CompletionError::ResponseError(message) | CompletionError::ProviderError(message) => {
                LlmError::InvalidResponse { model, message }
            }
            CompletionError::UrlError(error) => LlmError::Request {
                model,
                message: error.to_string(),
            },
            CompletionError::RequestError(error) => LlmError::Request {
                model,
                message: error.to_string(),
            },
        }
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// One call's input: the system prompt, the conversation so far (never empty) and the tools.
#[derive(Debug, Clone)]
pub struct LlmRequest {
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDefinition>,
}

#[derive(Debug, Clone)]
pub struct LlmResponse {
    pub model: ModelId,
    pub content: Vec<AssistantContent>,
}

/// What `status` shows about a provider.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderStatus {
    pub name: String,
    pub kind: &'static str,
    pub base_url: Option<String>,
}

/// The daemon's LLM layer, shared by every agent.
pub struct LlmManager {
    providers: HashMap<String, ProviderClient>,
    statuses: Vec<ProviderStatus>,
    retry: RetryConfig,
    cool_downs: Mutex<BTreeMap<ModelId, Instant>>,
}

impl LlmManager {
    pub fn new(config: &Config) -> Result<Self, provider::ProviderBuildError> {
        let mut providers = HashMap::new();
        let mut statuses = Vec::new();
        for (name, provider) in &config.llm.providers {
            providers.insert(name.clone(), ProviderClient::build(provider)?);
            statuses.push(ProviderStatus {
                name: name.clone(),
                kind: match provider.kind {
                    ProviderKind::OpenAi => "openai",
                    ProviderKind::Anthropic => "anthropic",
                },
                base_url: provider.base_url.clone(),
            });
        }
        Ok(Self {
            providers,
            statuses,
            retry: config.defaults.retry.clone(),
            cool_downs: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn is_configured(&self) -> bool {
        !self.providers.is_empty()
    }

    pub fn provider_statuses(&self) -> &[ProviderStatus] {
        &self.statuses
    }

    /// Runs one completion for `process_id` on the model its routing names, retrying transient
    /// failures with backoff and then trying each fallback in order.
    pub async fn complete(
        &self,
        routing: &RoutingConfig,
        process_id: &ProcessId,
        request: &LlmRequest,
        usage: &UsageRecorder,
    ) -> Result<LlmResponse, LlmError> {
        if !self.is_configured() {
            return Err(LlmError::NotConfigured);
        }
        let primary = model_for(routing, process_id.process_type());
        let candidates = self.order_by_cool_down(
            std::iter::once(primary)
                .chain(routing.fallbacks_for(primary))
                .collect(),
        );
        let mut attempts = 0;
        let mut last_error = None;
        for model in candidates {
            match self
                .complete_with_retries(model, process_id, request, usage, &mut attempts)
                .await
            {
                Ok(response) => return Ok(response),
                Err(error) => {
                    tracing::warn!(model = %model, %error, "model failed; trying the next fallback if any");
                    last_error = Some(error);
                }
            }
        }
        let last = last_error.unwrap_or(LlmError::NotConfigured);
        Err(LlmError::Exhausted {
            attempts,
            last: Box::new(last),
        })
    }

    async fn complete_with_retries(
        &self,
        model: &ModelId,
        process_id: &ProcessId,
        request: &LlmRequest,
        usage: &UsageRecorder,
        attempts: &mut u32,
    ) -> Result<LlmResponse, LlmError> {
        let provider =
            self.providers
                .get(&model.provider)
                .ok_or_else(|| LlmError::UnknownProvider {
                    model: model.to_string(),
                    provider: model.provider.clone(),
                })?;
        let mut retry = 0;
        loop {
            *attempts += 1;
            let started = Instant::now();
            let result = provider
                .complete(&model.model, to_rig_request(request)?)
                .await
                .map_err(|error| LlmError::from_completion(model, error));
            match result {
                Ok(response) => {
                    tracing::debug!(model = %model, elapsed_ms = started.elapsed().as_millis() as u64, "completion");
                    usage.record(process_id, model, &response.usage);
                    return Ok(LlmResponse {
                        model: model.clone(),
                        content: response.choice.into_iter().collect(),
                    });
                }
                Err(error) => {
                    if error.is_rate_limit() {
                        self.cool_down(model);
                    }
                    if !error.is_retryable() || retry >= self.retry.max_retries {
                        return Err(error);
                    }
                    let delay = backoff(&self.retry, retry);
                    tracing::warn!(model = %model, %error, retry = retry + 1, delay_ms = delay.as_millis() as u64, "retrying LLM call");
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
            }
        }
    }

    fn cool_down(&self, model: &ModelId) {
        if let Ok(mut cool_downs) = self.cool_downs.lock() {
            cool_downs.insert(model.clone(), Instant::now() + RATE_LIMIT_COOL_DOWN);
        }
    }

    /// Models still cooling down from a 429 go last, keeping their relative order.
    fn order_by_cool_down<'a>(&self, models: Vec<&'a ModelId>) -> Vec<&'a ModelId> {
        let now = Instant::now();
        let cooling: Vec<bool> = match self.cool_downs.lock() {
            Ok(cool_downs) => models
                .iter()
                .map(|model| cool_downs.get(*model).is_some_and(|until| *until > now))
                .collect(),
            Err(_) => vec![false; models.len()],
        };
        let (ready, cooling): (Vec<_>, Vec<_>) = models
            .into_iter()
            .zip(cooling)
            .partition(|(_, is_cooling)| !is_cooling);
        ready
            .into_iter()
            .chain(cooling)
            .map(|(model, _)| model)
            .collect()
    }
}

/// The model routing picks for a process type.
pub fn model_for(routing: &RoutingConfig, process_type: ProcessType) -> &ModelId {
    match process_type {
        ProcessType::Channel => &routing.channel,
        ProcessType::Branch => &routing.branch,
        ProcessType::Worker => &routing.worker,
        ProcessType::Compactor => &routing.compactor,
        ProcessType::Cortex => &routing.cortex,
    }
}

/// Exponential backoff with jitter: a random delay between half and all of
/// `initial * 2^retry`, capped at the maximum.
fn backoff(retry: &RetryConfig, attempt: u32) -> Duration {
    let ceiling = retry
        .initial_backoff_ms
        .saturating_mul(1u64 << attempt.min(20))
        .min(retry.max_backoff_ms)
        .max(1);
    Duration::from_millis(fastrand::u64(ceiling / 2..=ceiling))
}

fn to_rig_request(request: &LlmRequest) -> Result<CompletionRequest, LlmError> {
    let chat_history =
        OneOrMany::many(request.messages.iter().cloned()).map_err(|_| LlmError::Request {
            model: String::new(),
            message: "a completion needs at least one message".to_string(),
        })?;
    Ok(CompletionRequest {
        model: None,
        preamble: Some(request.system.clone()),
        chat_history,
        documents: Vec::new(),
        tools: request.tools.clone(),
        temperature: None,
        max_tokens: None,
        tool_choice: None,
        additional_params: None,
        output_schema: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let retry = RetryConfig {
            max_retries: 5,
            initial_backoff_ms: 100,
            max_backoff_ms: 1000,
        };
        for _ in 0..50 {
            let first = backoff(&retry, 0).as_millis();
            assert!((50..=100).contains(&first), "{first}");
            let third = backoff(&retry, 2).as_millis();
            assert!((200..=400).contains(&third), "{third}");
            let capped = backoff(&retry, 10).as_millis();
            assert!((500..=1000).contains(&capped), "{capped}");
        }
    }

    #[test]
    fn classification_of_statuses() {
        let status = |status| LlmError::Status {
            model: "p/m".into(),
            status,
            body: String::new(),
        };
        assert!(status(429).is_retryable());
        assert!(status(500).is_retryable());
        assert!(status(503).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(401).is_retryable());
        assert!(status(429).is_rate_limit());
    }
}
