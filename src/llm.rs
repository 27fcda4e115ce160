//! The LLM layer: providers built from config, model routing by process type, retries with
//! backoff and jitter, fallbacks, rate-limit cool-downs and per-call token usage.

mod provider;
mod usage;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rig::OneOrMany;
use rig::completion::{CompletionError, CompletionRequest, ToolDefinition};
use rig::message::{AssistantContent, Message};
use serde::Serialize;

use crate::config::{Config, ModelId, ProviderKind, RetryConfig, RoutingConfig};
use crate::event::{ProcessId, ProcessType};
use crate::metrics::{CallOutcome, Metrics};
pub use provider::{ProviderBuildError, ProviderClient};
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
            | LlmError::Exhausted { .. }
            | LlmError::CircuitOpen { .. } => false,
        }
    }

    /// Whether the failure says something about the model or its provider (down, refusing
    /// the key, unknown model), rather than about one request.
    fn counts_against_model(&self) -> bool {
        match self {
            LlmError::Status { status, .. } => {
                matches!(status, 401 | 403 | 404 | 408 | 429) || *status >= 500
            }
            LlmError::Timeout { .. }
            | LlmError::Transport { .. }
            | LlmError::InvalidResponse { .. } => true,
            LlmError::NotConfigured
            | LlmError::UnknownProvider { .. }
            | LlmError::Request { .. }
            | LlmError::Exhausted { .. }
            | LlmError::CircuitOpen { .. } => false,
        }
    }

    /// A short name for the metrics: what kind of failure this was.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::Status { status: 429, .. } => "rate_limited",
            LlmError::Status { status, .. } if *status >= 500 => "status_5xx",
            LlmError::Status { .. } => "status_4xx",
            LlmError::Timeout { .. } => "timeout",
            LlmError::Transport { .. } => "transport",
            LlmError::InvalidResponse { .. } => "invalid_response",
            LlmError::Request { .. } => "request",
            LlmError::NotConfigured => "not_configured",
            LlmError::UnknownProvider { .. } => "unknown_provider",
            LlmError::Exhausted { .. } => "exhausted",
            LlmError::CircuitOpen { .. } => "circuit_open",
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
    pub tools: std::sync::Arc<[ToolDefinition]>,
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

/// A model's failures in a row (each after its retries), and until when it is passed over.
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    last_error: String,
}

/// A model whose circuit breaker is open: it failed again and again and is passed over.
#[derive(Debug, Clone, Serialize)]
pub struct ModelBreaker {
    pub model: String,
    pub consecutive_failures: u32,
    pub retry_in_secs: u64,
    pub last_error: String,
}

impl ModelBreaker {
    pub fn describe(&self) -> String {
        format!(
            "model `{}` failed {} times in a row and is paused for {}s (last error: {})",
            self.model, self.consecutive_failures, self.retry_in_secs, self.last_error
        )
    }
}

/// What the config says about the LLM layer: the provider clients and the retry and breaker
/// settings. Built whole from a config, so a reload swaps it in one step or not at all.
pub struct LlmSetup {
    providers: HashMap<String, ProviderClient>,
    statuses: Vec<ProviderStatus>,
    retry: RetryConfig,
    breaker_threshold: u32,
    breaker_cooldown: Duration,
}

impl LlmSetup {
    /// Builds every provider client the config names.
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
            breaker_threshold: config.defaults.cortex.breaker_threshold.max(1),
            breaker_cooldown: Duration::from_secs(config.defaults.cortex.breaker_cooldown_secs),
        })
    }
}

/// The daemon's LLM layer, shared by every agent. Its setup can be replaced while it runs
/// (a config reload); what it learnt about models (cool-downs, breakers) is kept.
pub struct LlmManager {
    setup: RwLock<Arc<LlmSetup>>,
    cool_downs: Mutex<BTreeMap<ModelId, Instant>>,
    breakers: Mutex<BTreeMap<ModelId, Breaker>>,
    metrics: Metrics,
}

impl LlmManager {
    pub fn new(config: &Config, metrics: Metrics) -> Result<Self, provider::ProviderBuildError> {
        Ok(Self::with_setup(LlmSetup::new(config)?, metrics))
    }

    pub fn with_setup(setup: LlmSetup, metrics: Metrics) -> Self {
        Self {
            setup: RwLock::new(Arc::new(setup)),
            cool_downs: Mutex::new(BTreeMap::new()),
            breakers: Mutex::new(BTreeMap::new()),
            metrics,
        }
    }

    /// Uses `setup` from the next call on; calls under way finish with the one they began with.
    pub fn replace_setup(&self, setup: LlmSetup) {
        match self.setup.write() {
            Ok(mut current) => *current = Arc::new(setup),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(setup),
        }
    }

    fn setup(&self) -> Arc<LlmSetup> {
        match self.setup.read() {
            Ok(setup) => setup.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn is_configured(&self) -> bool {
        !self.setup().providers.is_empty()
    }

    pub fn provider_statuses(&self) -> Vec<ProviderStatus> {
        self.setup().statuses.clone()
    }

    /// Models whose breaker is open now.
    pub fn open_breakers(&self) -> Vec<ModelBreaker> {
        let now = Instant::now();
        let Ok(breakers) = self.breakers.lock() else {
            return Vec::new();
        };
        breakers
            .iter()
            .filter_map(|(model, breaker)| {
                let until = breaker.open_until.filter(|until| *until > now)?;
                Some(ModelBreaker {
                    model: model.to_string(),
                    consecutive_failures: breaker.consecutive_failures,
                    retry_in_secs: until.duration_since(now).as_secs().max(1),
                    last_error: breaker.last_error.clone(),
                })
            })
            .collect()
    }

    fn breaker_open(&self, model: &ModelId) -> Option<LlmError> {
        let now = Instant::now();
        let breakers = self.breakers.lock().ok()?;
        let breaker = breakers.get(model)?;
        let until = breaker.open_until.filter(|until| *until > now)?;
        Some(LlmError::CircuitOpen {
            model: model.to_string(),
            failures: breaker.consecutive_failures,
            retry_in_secs: until.duration_since(now).as_secs().max(1),
            last: breaker.last_error.clone(),
        })
    }

    /// A success closes the model's breaker; a failure that says something about the model
    /// counts towards opening it.
    fn note_outcome(&self, model: &ModelId, error: Option<&LlmError>) {
        let Ok(mut breakers) = self.breakers.lock() else {
            return;
        };
        let Some(error) = error else {
            if breakers
                .remove(model)
                .is_some_and(|breaker| breaker.open_until.is_some())
            {
                tracing::info!(model = %model, "model answers again; circuit breaker closed");
            }
            return;
        };
        if !error.counts_against_model() {
            return;
        }
        let breaker = breakers.entry(model.clone()).or_insert(Breaker {
            consecutive_failures: 0,
            open_until: None,
            last_error: String::new(),
        });
        breaker.consecutive_failures += 1;
        breaker.last_error = error.to_string();
        let setup = self.setup();
        if breaker.consecutive_failures >= setup.breaker_threshold {
            breaker.open_until = Some(Instant::now() + setup.breaker_cooldown);
            tracing::warn!(model = %model, failures = breaker.consecutive_failures, cooldown_secs = setup.breaker_cooldown.as_secs(), "model keeps failing; circuit breaker open");
        }
    }

    /// Runs one completion for `process_id` on the model its routing names, retrying transient
    /// failures with backoff and then trying each fallback in order. Models whose breaker is
    /// open are passed over; when all are, the call fails at once.
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
        let (closed, open): (Vec<&ModelId>, Vec<&ModelId>) = candidates
            .into_iter()
            .partition(|model| self.breaker_open(model).is_none());
        if closed.is_empty()
            && let Some(error) = open.first().and_then(|model| self.breaker_open(model))
        {
            return Err(error);
        }
        let mut attempts = 0;
        let mut last_error = None;
        for model in closed {
            let result = self
                .complete_with_retries(model, process_id, request, usage, &mut attempts)
                .await;
            self.note_outcome(model, result.as_ref().err());
            match result {
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
        let setup = self.setup();
        let provider =
            setup
                .providers
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
            let outcome = match &result {
                Ok(response) => CallOutcome::Answered {
                    input_tokens: response.usage.input_tokens,
                    output_tokens: response.usage.output_tokens,
                },
                Err(error) => CallOutcome::Failed(error.kind()),
            };
            self.metrics
                .llm_call(&model.to_string(), started.elapsed(), outcome);
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
                    if !error.is_retryable() || retry >= setup.retry.max_retries {
                        return Err(error);
                    }
                    let delay = backoff(&setup.retry, retry);
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
        tools: request.tools.to_vec(),
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
        assert!(status(401).counts_against_model());
        assert!(!status(400).counts_against_model());
    }

    #[test]
    fn a_model_failing_three_times_in_a_row_is_paused_and_a_success_closes_it() {
        crate::install_crypto_provider();
        let config = crate::config::Config::parse(
            "[llm.providers.p]\nbase_url = \"http://127.0.0.1:9\"\n[defaults.routing]\nchannel = \"p/m\"\n",
            "test.toml",
            &|_| None,
        )
        .expect("config");
        let manager = LlmManager::new(&config, Metrics::default()).expect("manager");
        let model: ModelId = "p/m".parse().expect("model");
        let down = LlmError::Status {
            model: "p/m".into(),
            status: 503,
            body: "overloaded".into(),
        };
        let bad_request = LlmError::Status {
            model: "p/m".into(),
            status: 400,
            body: "too long".into(),
        };
        manager.note_outcome(&model, Some(&down));
        manager.note_outcome(&model, Some(&bad_request));
        manager.note_outcome(&model, Some(&down));
        assert!(manager.breaker_open(&model).is_none());
        manager.note_outcome(&model, Some(&down));
        let open = manager.breaker_open(&model).expect("open after three");
        assert!(
            open.to_string().contains("failed 3 times in a row"),
            "{open}"
        );
        let breakers = manager.open_breakers();
        assert_eq!(breakers.len(), 1);
        assert!(breakers[0].describe().contains("overloaded"));
        manager.note_outcome(&model, None);
        assert!(manager.open_breakers().is_empty());
    }
}
