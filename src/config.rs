//! Daemon configuration: the resolved types every other module reads, plus model ids.

mod error;
mod load;
mod services;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use error::{ConfigError, ModelIdError};
pub use services::{
    AgentMessagesConfig, DEFAULT_MCP_TIMEOUT_SECS, McpServerConfig, McpTransport, MediaConfig,
    SearchBackend, SearchConfig, WebConfig,
};

use crate::conversation_id::Platform;
use crate::schedule::{CronSettings, JobSpec, Zone};

/// The commented configuration written for a first-time user.
pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");

/// A fully resolved and validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was loaded from; `None` when parsed from a string.
    pub path: Option<PathBuf>,
    pub llm: LlmConfig,
    pub defaults: DefaultsConfig,
    /// Never empty: with no `[[agents]]`, one default agent `main`.
    pub agents: Vec<AgentConfig>,
    pub api: ApiConfig,
    pub messaging: MessagingConfig,
    pub bindings: Vec<BindingConfig>,
    pub memory: MemoryConfig,
    pub access: AccessConfig,
    pub sandbox: SandboxConfig,
    pub reload: ReloadConfig,
    /// `[web]`: what `web_fetch` may reach and which backend `web_search` asks.
    pub web: WebConfig,
    /// `[agent_messages]`: how far agents' messages to each other may chain, and how often.
    pub agent_messages: AgentMessagesConfig,
    /// `[media]`: the limits on files received and sent.
    pub media: MediaConfig,
    /// `[[mcp_servers]]`: MCP servers whose tools the agents' workers get.
    pub mcp_servers: Vec<McpServerConfig>,
    /// Things the file says that still work but mean something other than they did, or are
    /// ignored; `config check` prints them and the daemon logs them.
    pub notices: Vec<String>,
}

impl Config {
    /// Parse and validate. `file_label` names the file in errors; `environment` looks up
    /// environment variables (production passes `|name| std::env::var(name).ok()`).
    pub fn parse(
        text: &str,
        file_label: &str,
        environment: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        load::parse(text, file_label, environment)
    }

    /// Read the file and parse it (sets `path`).
    pub fn load(
        path: &Path,
        environment: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse(&text, &path.display().to_string(), environment)?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// The agent marked `default = true` (validation guarantees exactly one).
    pub fn default_agent(&self) -> &AgentConfig {
        self.agents
            .iter()
            .find(|agent| agent.default)
            .unwrap_or(&self.agents[0])
    }

    pub fn agent(&self, id: &str) -> Option<&AgentConfig> {
        self.agents.iter().find(|agent| agent.id == id)
    }

    /// Every resolved secret value (provider api keys, api token, platform tokens), for
    /// redaction.
    pub fn secrets(&self) -> Vec<String> {
        let messaging = &self.messaging;
        self.llm
            .providers
            .values()
            .filter_map(|provider| provider.api_key.clone())
            .chain(self.api.token.clone())
            .chain(
                messaging
                    .discord
                    .iter()
                    .map(|discord| discord.token.clone()),
            )
            .chain(
                messaging
                    .telegram
                    .iter()
                    .map(|telegram| telegram.token.clone()),
            )
            .chain(
                messaging
                    .slack
                    .iter()
                    .flat_map(|slack| [slack.bot_token.clone(), slack.app_token.clone()]),
            )
            .chain(
                self.web
                    .search
                    .as_ref()
                    .and_then(|search| search.api_key.clone()),
            )
            .chain(
                self.mcp_servers
                    .iter()
                    .flat_map(McpServerConfig::secrets)
                    .map(str::to_string),
            )
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmConfig {
    pub providers: BTreeMap<String, ProviderConfig>,
    /// `[llm.models."provider/model"]`: settings that override the built-in ones for
    /// well-known models. Keyed as written (`provider/model` or a bare model name).
    pub models: BTreeMap<String, ModelSettings>,
    /// `[llm.pricing."model"]`: prices that override the built-in table.
    pub pricing: BTreeMap<String, Price>,
}

/// What a model accepts and how it is asked; unset fields fall back to the built-in
/// defaults for well-known model ids, then to the provider's own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelSettings {
    /// Tokens the model reads at most; the compactor keeps each context inside it.
    pub context_window: Option<usize>,
    /// Tokens a reply may have at most (`max_tokens`).
    pub max_output_tokens: Option<u64>,
    pub temperature: Option<f64>,
    /// `low`, `medium` or `high`: OpenAI's `reasoning_effort`, or an Anthropic thinking
    /// budget.
    pub reasoning_effort: Option<String>,
    /// Whether the model reads images (`vision`); `Some(false)` marks a text-only model,
    /// which is told what was attached and where it is stored instead.
    pub vision: Option<bool>,
}

impl ModelSettings {
    /// Whether images may be sent to the model: unless it is marked text-only.
    pub fn reads_images(&self) -> bool {
        self.vision != Some(false)
    }

    /// These settings, with unset fields taken from `fallback`.
    pub fn or(&self, fallback: &ModelSettings) -> ModelSettings {
        ModelSettings {
            context_window: self.context_window.or(fallback.context_window),
            max_output_tokens: self.max_output_tokens.or(fallback.max_output_tokens),
            temperature: self.temperature.or(fallback.temperature),
            reasoning_effort: self
                .reasoning_effort
                .clone()
                .or_else(|| fallback.reasoning_effort.clone()),
            vision: self.vision.or(fallback.vision),
        }
    }
}

/// A model's price in USD per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Reading a cached prompt prefix (default: the input price).
    pub cache_read: f64,
    /// Writing a prompt prefix to the cache (default: the input price).
    pub cache_write: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// Starts with `http://` or `https://`, without a trailing `/`.
    pub base_url: Option<String>,
    /// The resolved key (after `env:` lookup).
    pub api_key: Option<String>,
    pub timeout_secs: u64,
}

/// The wire protocol a provider speaks; `kind = "openai" | "anthropic"` in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    OpenAi,
    Anthropic,
}

/// A `provider/model` pair such as `openrouter/anthropic/claude-3`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId {
    pub provider: String,
    pub model: String,
}

impl FromStr for ModelId {
    type Err = ModelIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| ModelIdError {
            value: text.to_string(),
            reason: reason.to_string(),
        };
        if text.chars().any(char::is_whitespace) {
            return Err(invalid("it must not contain whitespace"));
        }
        let (provider, model) = text
            .split_once('/')
            .ok_or_else(|| invalid("expected `provider/model`, e.g. `openai/gpt-4o`"))?;
        if provider.is_empty() || model.is_empty() {
            return Err(invalid(
                "both the provider and the model before and after the first `/` must be non-empty",
            ));
        }
        Ok(ModelId {
            provider: provider.to_string(),
            model: model.to_string(),
        })
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.provider, self.model)
    }
}

/// Which model each process type uses, and what to try when a model fails.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingConfig {
    pub channel: ModelId,
    pub branch: ModelId,
    pub worker: ModelId,
    pub compactor: ModelId,
    pub cortex: ModelId,
    pub fallbacks: BTreeMap<ModelId, Vec<ModelId>>,
    /// The speech-to-text model voice notes go to (an OpenAI-compatible
    /// `/audio/transcriptions`); `None`: voice notes are not heard.
    pub transcription: Option<ModelId>,
}

impl RoutingConfig {
    /// The models to try, in order, after `model` fails; empty when none are configured.
    pub fn fallbacks_for(&self, model: &ModelId) -> &[ModelId] {
        self.fallbacks.get(model).map_or(&[], Vec::as_slice)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    pub max_retries: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DefaultsConfig {
    pub routing: RoutingConfig,
    pub retry: RetryConfig,
    /// LLM calls per channel turn (>= 1).
    pub max_turns: usize,
    /// Recent messages in the channel prompt (>= 1).
    pub history_messages: usize,
    /// Bounded inbox capacity per channel (>= 1).
    pub channel_inbox: usize,
    pub shutdown_grace_secs: u64,
    pub limits: ProcessLimits,
    pub coalesce: CoalesceConfig,
    /// The zone schedules are read in (`defaults.timezone`); default: the machine's.
    pub timezone: Zone,
    pub cron: CronSettings,
    pub cortex: CortexConfig,
    /// `defaults.daily_token_budget`, for agents that set none.
    pub daily_token_budget: Option<u64>,
}

/// The cortex's limits and intervals (`[defaults.cortex]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CortexConfig {
    /// A branch or worker without progress (no tool started or printed, no status) for this
    /// long is stopped as timed out.
    pub stall_secs: u64,
    /// Wall-clock limit of a branch. (Workers keep `worker_timeout_secs` themselves.)
    pub branch_timeout_secs: u64,
    /// Failures in a row after which a tool or a model is reported, and a model skipped.
    pub breaker_threshold: u32,
    /// How long a tripped breaker stays open before the model is tried again.
    pub breaker_cooldown_secs: u64,
    /// How often maintenance runs, when something changed since its last run.
    pub maintenance_interval_secs: u64,
}

impl Default for CortexConfig {
    fn default() -> Self {
        Self {
            stall_secs: 300,
            branch_timeout_secs: 900,
            breaker_threshold: 3,
            breaker_cooldown_secs: 300,
            maintenance_interval_secs: 3600,
        }
    }
}

/// Bounds on the processes a channel runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessLimits {
    pub max_concurrent_branches: usize,
    pub max_concurrent_workers: usize,
    /// Workers running at once across all of an agent's conversations.
    pub max_agent_workers: usize,
    /// LLM calls a branch may make before it must conclude.
    pub branch_max_turns: usize,
    /// LLM calls a worker may make before it is failed.
    pub worker_max_turns: usize,
    /// Wall-clock limit of a worker, in seconds.
    pub worker_timeout_secs: u64,
    /// The channel model's context window, in tokens; the compactor keeps history inside it.
    pub context_window: usize,
    /// Results arriving within this window re-trigger the channel as one turn.
    pub retrigger_batch_ms: u64,
    /// Re-triggers allowed per user message; later results wait for the next user turn.
    pub max_retriggers: usize,
    /// A channel with nothing to do for this long stops and frees its memory; the next
    /// message starts it again from the store. 0 keeps channels for the daemon's lifetime.
    pub channel_idle_secs: u64,
}

/// Coalescing of message bursts in group conversations (`[defaults.coalesce]`).
#[derive(Debug, Clone, PartialEq)]
pub struct CoalesceConfig {
    pub enabled: bool,
    /// Quiet time after the last message before the turn starts.
    pub debounce_ms: u64,
    /// Longest wait from the first message of a burst.
    pub max_wait_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// Matches `[a-z0-9_-]{1,64}`; unique across agents.
    pub id: String,
    pub default: bool,
    pub display_name: String,
    /// `defaults.routing` with this agent's `[agents.routing]` overrides applied.
    pub routing: RoutingConfig,
    pub max_turns: usize,
    pub history_messages: usize,
    pub limits: ProcessLimits,
    pub coalesce: CoalesceConfig,
    /// The agent's zone (`timezone`, else `defaults.timezone`, else the machine's).
    pub timezone: Zone,
    /// Tokens the agent may spend per day (UTC); once spent its turns say so instead of
    /// calling a model. `None`: no limit.
    pub daily_token_budget: Option<u64>,
    /// `[[agents.cron]]`: jobs upserted at startup.
    pub cron: Vec<JobSpec>,
    /// Bounded inbox capacity of each channel (`defaults.channel_inbox`).
    pub channel_inbox: usize,
    /// How often memory maintenance may run (`memory.maintenance_interval_secs`, else
    /// `defaults.cortex.maintenance_interval_secs`).
    pub memory_maintenance_secs: u64,
    /// `[memory] capture_every`: user messages between automatic captures; 0: off.
    pub capture_every: usize,
    pub cron_settings: CronSettings,
    pub cortex: CortexConfig,
    /// `links`: the agents this one may message (`send_agent_message`); their answers come
    /// back to it.
    pub links: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    pub enabled: bool,
    pub bind: IpAddr,
    pub port: u16,
    /// The resolved bearer token (after `env:` lookup); never empty.
    pub token: Option<String>,
    /// Names (besides IP addresses and `localhost`) the API answers to, e.g. the name a
    /// reverse proxy serves it under.
    pub allowed_hosts: Vec<String>,
}

/// The chat platforms, each present only when its `[messaging.NAME]` table is.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagingConfig {
    pub discord: Option<DiscordConfig>,
    pub telegram: Option<TelegramConfig>,
    pub slack: Option<SlackConfig>,
    /// The largest file an adapter fetches (`[media] max_file_mb`); a larger one arrives
    /// refused, and the sender is told.
    pub max_file_bytes: u64,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        Self {
            discord: None,
            telegram: None,
            slack: None,
            max_file_bytes: MediaConfig::default().max_file_bytes,
        }
    }
}

impl MessagingConfig {
    /// Whether messages can reach `platform`: the daemon's own platforms always, a chat
    /// platform when its table is present and enabled.
    pub fn is_enabled(&self, platform: Platform) -> bool {
        match platform {
            Platform::Portal | Platform::Cron | Platform::Agent => true,
            Platform::Discord => self.discord.as_ref().is_some_and(|discord| discord.enabled),
            Platform::Telegram => self
                .telegram
                .as_ref()
                .is_some_and(|telegram| telegram.enabled),
            Platform::Slack => self.slack.as_ref().is_some_and(|slack| slack.enabled),
        }
    }
}

/// Who may talk to the agents and make them act (`[access]`). Everyone not named is a stranger:
/// a direct message gets a pairing code, a group message is not read unless the group is
/// allowed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessConfig {
    /// Stable platform user ids (`telegram:123456789`, `discord:80351110224678912`,
    /// `slack:U024BE7LH`) of the people who may make the agents act.
    pub owners: Vec<String>,
    /// Stable platform user ids of the people who may chat with the agents (besides those
    /// approved with `spacebot access approve`; `dm_allowed_users` adds to these).
    pub members: Vec<String>,
    /// Groups the agents answer in, besides those a `[[bindings]]` scope names:
    /// `telegram:{chat}`, `discord:{guild}` or `discord:{guild}:{channel}`, `slack:{team}` or
    /// `slack:{team}:{channel}`.
    pub groups: Vec<String>,
    /// In groups, read only messages that mention the bot (a binding may say otherwise).
    pub require_mention: bool,
    /// Give unknown people who write a direct message a pairing code (else: nothing).
    pub pairing: bool,
    /// How long a pairing code stays valid, in seconds.
    pub pairing_ttl_secs: u64,
    /// Messages per minute one person may send in a group before further ones are not read
    /// (they are told once); 0 means no limit.
    pub group_messages_per_minute: u32,
}

/// How the running daemon notices edits of its config file (`[reload]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadConfig {
    /// Reload when the file changes (besides `POST /api/reload` and SIGHUP).
    pub watch: bool,
    /// How often the file's metadata is looked at, in milliseconds; an edit is applied once
    /// the file has stayed the same for one more interval.
    pub interval_ms: u64,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        Self {
            watch: true,
            interval_ms: 1000,
        }
    }
}

/// How worker shell commands are contained (`[sandbox]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    pub mode: SandboxMode,
    /// The bubblewrap program: `bwrap` (looked up in /usr/local/bin, /usr/bin, /bin) or an
    /// absolute path.
    pub bwrap: std::path::PathBuf,
    /// Whether commands can reach the network.
    pub network: bool,
    /// Limits of each command: CPU seconds, address space and file size in bytes, processes.
    pub cpu_secs: u64,
    pub memory_bytes: u64,
    pub file_bytes: u64,
    pub processes: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            mode: SandboxMode::Bubblewrap,
            bwrap: std::path::PathBuf::from("bwrap"),
            network: true,
            cpu_secs: 300,
            memory_bytes: 2 << 30,
            file_bytes: 256 << 20,
            processes: 128,
        }
    }
}

/// `[sandbox] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// Commands run inside bubblewrap; without a working `bwrap` the shell is off.
    Bubblewrap,
    /// Commands run with the daemon's rights, limited only by rlimits and a clean
    /// environment. Only when the owner says so.
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DiscordConfig {
    pub enabled: bool,
    /// Replies show as they are written (the message is sent, then edited).
    pub stream: bool,
    /// The resolved bot token.
    pub token: String,
    /// Answer messages written by other bots (never its own).
    pub allow_bot_messages: bool,
    /// Instead of `https://discord.com` (REST `/api/v10/...`; the gateway URL comes from it).
    pub api_base: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TelegramConfig {
    pub enabled: bool,
    /// Replies show as they are written (the message is sent, then edited).
    pub stream: bool,
    /// The resolved bot token.
    pub token: String,
    /// Instead of `https://api.telegram.org`.
    pub api_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SlackConfig {
    pub enabled: bool,
    /// Replies show as they are written (the message is posted, then updated).
    pub stream: bool,
    /// The resolved bot token (`xoxb-...`) for the Web API.
    pub bot_token: String,
    /// The resolved app-level token (`xapp-...`) for Socket Mode.
    pub app_token: String,
    /// Instead of `https://slack.com/api`.
    pub api_url: Option<String>,
}

/// Routes messages from one platform location to an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingConfig {
    pub agent: String,
    /// A chat platform (`Platform::CHAT`).
    pub platform: Platform,
    pub guild_id: Option<String>,
    pub channel_ids: Vec<String>,
    pub chat_id: Option<String>,
    pub team_id: Option<String>,
    /// Read only messages that mention the bot here; `None` follows `[access]
    /// require_mention`.
    pub require_mention: Option<bool>,
}

/// Where the download of the local embedding model comes from by default.
pub const DEFAULT_MODEL_DOWNLOAD_URL: &str =
    "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main";

/// `[memory]`: embeddings for recall and the maintenance interval.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryConfig {
    pub embedder: EmbedderConfig,
    /// Seconds between memory maintenance passes (decay, prune, merge); at least 1. When
    /// unset, the cortex's `maintenance_interval_secs` applies.
    pub maintenance_interval_secs: Option<u64>,
    /// Automatic capture reads a conversation after this many user messages (and before its
    /// history is compacted, and when its channel goes idle); 0 turns capture off.
    pub capture_every: usize,
}

/// `[memory] capture_every` unless the config says otherwise.
pub const DEFAULT_CAPTURE_EVERY: usize = 30;

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            embedder: EmbedderConfig::Local {
                model_dir: None,
                download: true,
                download_url: DEFAULT_MODEL_DOWNLOAD_URL.to_string(),
            },
            maintenance_interval_secs: None,
            capture_every: DEFAULT_CAPTURE_EVERY,
        }
    }
}

/// Which embedder `[memory] embedder` selects.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbedderConfig {
    /// No embeddings: recall is full-text only.
    None,
    /// all-MiniLM-L6-v2 with candle, from `model_dir`, else from
    /// `$SPACEBOT_HOME/models/all-MiniLM-L6-v2`, downloaded there on first use if `download`.
    Local {
        model_dir: Option<PathBuf>,
        download: bool,
        download_url: String,
    },
    /// An OpenAI-compatible `/embeddings` endpoint of a configured provider.
    Provider { model: ModelId },
}
