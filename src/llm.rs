//! The LLM layer: providers built from config, model routing by process type, streamed
//! calls, retries with backoff and jitter, fallbacks, rate-limit cool-downs, circuit
//! breakers, tool-less mode for servers that refuse tools, per-model settings and prices
//! (`catalog`), reading what weak models write (`text_tools`, `visible`) and per-call token
//! usage (`usage`).

mod catalog;
mod error;
mod openai_stream;
pub mod partial_json;
mod provider;
pub mod text_tools;
mod transport;
mod usage;
pub mod visible;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rig::OneOrMany;
use rig::completion::{CompletionRequest, ToolDefinition};
use rig::message::{AssistantContent, Message, Text, UserContent};
use serde::Serialize;

use crate::config::{Config, ModelId, ProviderKind, RetryConfig, RoutingConfig};
use crate::event::{ProcessId, ProcessType};
pub use crate::message::TokenUsage;
use crate::metrics::{CallOutcome, Metrics};
pub use catalog::ModelCatalog;
pub use error::LlmError;
pub use provider::{ProviderBuildError, ProviderClient};
use transport::ExchangeLog;
pub use usage::{UsageQuery, UsageRecorder, UsageRow};

/// Receives a streamed answer as it arrives. `call` is the id that ties a tool call's name
/// to its argument fragments. `restart` means what came so far is void (the call is retried
/// or a fallback model answers instead).
pub trait StreamSink: Send {
    fn text(&mut self, _text: &str) {}
    fn tool_call_name(&mut self, _call: &str, _name: &str) {}
    fn tool_call_arguments(&mut self, _call: &str, _fragment: &str) {}
    fn restart(&mut self) {}
}

/// Nobody watches the stream (branches, workers, the compactor).
impl StreamSink for () {}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// It finished its answer or asked for tools.
    Stop,
    /// It hit its output limit; the last text or tool call is cut off.
    Length,
    /// It declined to answer; the refusal, if it gave one, is the text.
    Refused,
}

/// What a user without a provider is told, in the log, in `status` and in every reply.
pub const SETUP_HINT: &str = "No LLM provider is configured. Set OPENAI_API_KEY (and optionally \
OPENAI_BASE_URL for Ollama, llama.cpp, vLLM or OpenRouter) or ANTHROPIC_API_KEY before starting \
the daemon, or add an [llm.providers.NAME] section with base_url and api_key to the config file.";

/// How long a model that answered 429 is passed over while fallbacks remain, unless the
/// provider said how long.
const RATE_LIMIT_COOL_DOWN: Duration = Duration::from_secs(30);
/// The longest wait a provider's retry-after may impose on one retry.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(60);

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
    pub usage: TokenUsage,
    pub finish: Finish,
    /// The tools were left out: the model is in tool-less mode.
    pub tool_less: bool,
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

/// The daemon's LLM layer, shared by every agent.
pub struct LlmSetup {
    providers: HashMap<String, ProviderClient>,
    statuses: Vec<ProviderStatus>,
    catalog: Arc<ModelCatalog>,
    retry: RetryConfig,
    breaker_threshold: u32,
    breaker_cooldown: Duration,
}

impl LlmSetup {
    /// The client of `model`'s provider.
    fn provider(&self, model: &ModelId) -> Result<&ProviderClient, LlmError> {
        self.providers
            .get(&model.provider)
            .ok_or_else(|| LlmError::UnknownProvider {
                model: model.to_string(),
                provider: model.provider.clone(),
            })
    }

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
            catalog: Arc::new(ModelCatalog::new(&config.llm)),
            retry: config.defaults.retry.clone(),
            breaker_threshold: config.defaults.cortex.breaker_threshold.max(1),
            breaker_cooldown: Duration::from_secs(config.defaults.cortex.breaker_cooldown_secs),
        })
    }
}

/// The daemon's LLM layer, shared by every agent. Its setup can be replaced while it runs
/// (a config reload); what it learnt about models (cool-downs, breakers, tool-less mode) is
/// kept.
pub struct LlmManager {
    setup: RwLock<Arc<LlmSetup>>,
    /// Models whose server refused `tools`: they are called without tools from then on
    /// (for the daemon's lifetime), and their final text is the answer.
    tool_less: Mutex<BTreeSet<ModelId>>,
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
            tool_less: Mutex::new(BTreeSet::new()),
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

    /// Per-model settings and prices (those of the config in force).
    pub fn catalog(&self) -> Arc<ModelCatalog> {
        self.setup().catalog.clone()
    }

    /// Models in tool-less mode, because their server refused `tools`.
    pub fn tool_less_models(&self) -> Vec<String> {
        self.tool_less
            .lock()
            .map(|models| models.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    fn is_tool_less(&self, model: &ModelId) -> bool {
        self.tool_less
            .lock()
            .is_ok_and(|models| models.contains(model))
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

    /// The text of a voice note, from the transcription `model` (`[defaults.routing]
    /// transcription`).
    pub async fn transcribe(
        &self,
        model: &ModelId,
        name: &str,
        media_type: &str,
        audio: &[u8],
    ) -> Result<String, LlmError> {
        let setup = self.setup();
        let provider = setup.provider(model)?;
        provider.transcribe(model, name, media_type, audio).await
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
        sink: &mut dyn StreamSink,
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
                .complete_with_retries(model, process_id, request, usage, sink, &mut attempts)
                .await;
            self.note_outcome(model, result.as_ref().err());
            match result {
                Ok(response) => return Ok(response),
                // Another model would not fit the context any better: the caller compacts.
                Err(error) if error.is_context_overflow() => return Err(error),
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

    #[allow(clippy::too_many_arguments)]
    async fn complete_with_retries(
        &self,
        model: &ModelId,
        process_id: &ProcessId,
        request: &LlmRequest,
        usage: &UsageRecorder,
        sink: &mut dyn StreamSink,
        attempts: &mut u32,
    ) -> Result<LlmResponse, LlmError> {
        let setup = self.setup();
        let provider = setup.provider(model)?;
        let mut settings = setup.catalog.settings(model);
        if provider.kind() == ProviderKind::OpenAi {
            // Only a configured limit is sent: some OpenAI models refuse `max_tokens`.
            settings.max_output_tokens = setup.catalog.configured(model).max_output_tokens;
        }
        let mut retry = 0;
        loop {
            if *attempts > 0 {
                sink.restart();
            }
            *attempts += 1;
            let started = Instant::now();
            let tool_less = self.is_tool_less(model);
            let mut rig_request = to_rig_request(request, model)?;
            if tool_less {
                rig_request.tools.clear();
            }
            if !settings.reads_images() {
                for message in rig_request.chat_history.iter_mut() {
                    *message = without_images(message.clone());
                }
            }
            let offered_tools = !rig_request.tools.is_empty();
            let log = ExchangeLog::default();
            let result = provider
                .stream(&model.model, rig_request, &settings, &log, sink)
                .await;
            let exchange = log.snapshot();
            let result = match result {
                Err(error) => Err(LlmError::classify(model, &exchange, offered_tools, error)),
                Ok(_) if exchange.stream_error.is_some() => Err(LlmError::StreamFailed {
                    model: model.to_string(),
                    message: exchange.stream_error.clone().unwrap_or_default(),
                }),
                Ok(streamed) => Ok(streamed),
            };
            let outcome = match &result {
                Ok(streamed) => {
                    let tokens = token_usage(&streamed.usage, &exchange, provider.kind());
                    CallOutcome::Answered {
                        input_tokens: tokens.input,
                        output_tokens: tokens.output,
                    }
                }
                Err(error) => CallOutcome::Failed(error.kind()),
            };
            self.metrics
                .llm_call(&model.to_string(), started.elapsed(), outcome);
            match result {
                Ok(streamed) => {
                    tracing::debug!(model = %model, elapsed_ms = started.elapsed().as_millis() as u64, "completion");
                    let tokens = token_usage(&streamed.usage, &exchange, provider.kind());
                    usage.record(process_id, model, &tokens);
                    let mut content = streamed.content;
                    let finish = match exchange.finish_reason.as_deref() {
                        Some("length" | "max_tokens") => Finish::Length,
                        Some("refusal" | "content_filter") => Finish::Refused,
                        _ if !exchange.refusal.is_empty() => Finish::Refused,
                        _ => Finish::Stop,
                    };
                    let has_text = content
                        .iter()
                        .any(|part| matches!(part, AssistantContent::Text(text) if !text.text.trim().is_empty()));
                    if !exchange.refusal.is_empty() && !has_text {
                        content.push(AssistantContent::Text(Text {
                            text: exchange.refusal.clone(),
                        }));
                    }
                    return Ok(LlmResponse {
                        model: model.clone(),
                        content,
                        usage: tokens,
                        finish,
                        tool_less,
                    });
                }
                Err(LlmError::ToolsUnsupported { body, .. }) if !tool_less => {
                    tracing::warn!(model = %model, %body, "the server refuses tools; the model answers in plain text from now on (tool-less mode)");
                    if let Ok(mut models) = self.tool_less.lock() {
                        models.insert(model.clone());
                    }
                }
                Err(error) => {
                    if error.is_rate_limit() {
                        self.cool_down(model, error.retry_after());
                    }
                    if !error.is_retryable() || retry >= setup.retry.max_retries {
                        return Err(error);
                    }
                    let step = backoff(&setup.retry, retry);
                    let delay = error
                        .retry_after()
                        .map_or(step, |wait| wait.min(LONGEST_RETRY_AFTER).max(step));
                    tracing::warn!(model = %model, %error, retry = retry + 1, delay_ms = delay.as_millis() as u64, "retrying LLM call");
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
            }
        }
    }

    fn cool_down(&self, model: &ModelId, wait: Option<Duration>) {
        let wait = wait
            .unwrap_or(RATE_LIMIT_COOL_DOWN)
            .min(LONGEST_RETRY_AFTER);
        if let Ok(mut cool_downs) = self.cool_downs.lock() {
            cool_downs.insert(model.clone(), Instant::now() + wait);
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

/// A call's tokens, split the way they are priced. OpenAI counts cached tokens inside
/// `prompt_tokens`; Anthropic reports cache reads and writes beside `input_tokens` (taken
/// from the stream by the transport, since rig keeps only the input count).
fn token_usage(
    usage: &rig::completion::Usage,
    exchange: &transport::Exchange,
    kind: ProviderKind,
) -> TokenUsage {
    match kind {
        ProviderKind::OpenAi => TokenUsage {
            input: usage.input_tokens.saturating_sub(usage.cached_input_tokens),
            output: usage.output_tokens,
            cache_read: usage.cached_input_tokens,
            cache_write: 0,
        },
        ProviderKind::Anthropic => TokenUsage {
            input: usage.input_tokens,
            output: usage.output_tokens,
            cache_read: exchange.cache_read_tokens,
            cache_write: exchange.cache_write_tokens,
        },
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
        // Reading a conversation for what to remember is a branch's kind of thinking.
        ProcessType::Capture => &routing.branch,
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

/// `message` without its image parts: what a text-only model reads, and what history keeps
/// (each image's line, saying what it was and where it is stored, stays in the text).
pub fn without_images(message: Message) -> Message {
    match message {
        Message::User { content } => {
            let has_image = content
                .iter()
                .any(|part| matches!(part, UserContent::Image(_)));
            if !has_image {
                return Message::User { content };
            }
            let kept: Vec<UserContent> = content
                .into_iter()
                .filter(|part| !matches!(part, UserContent::Image(_)))
                .collect();
            match OneOrMany::many(kept) {
                Ok(content) => Message::User { content },
                Err(_) => Message::user("[an image]"),
            }
        }
        other => other,
    }
}

fn to_rig_request(request: &LlmRequest, model: &ModelId) -> Result<CompletionRequest, LlmError> {
    let chat_history =
        OneOrMany::many(request.messages.iter().cloned()).map_err(|_| LlmError::Request {
            model: model.to_string(),
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
            retry_after: None,
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
            retry_after: None,
        };
        let bad_request = LlmError::Status {
            model: "p/m".into(),
            status: 400,
            body: "too long".into(),
            retry_after: None,
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
