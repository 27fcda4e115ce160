//! Daemon configuration: the resolved types every other module reads, plus model ids.

mod error;
mod load;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use error::{ConfigError, ModelIdError};

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
    pub bindings: Vec<BindingConfig>,
    pub memory: MemoryConfig,
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

    /// Every resolved secret value (provider api keys, api token), for redaction.
    pub fn secrets(&self) -> Vec<String> {
        self.llm
            .providers
            .values()
            .filter_map(|provider| provider.api_key.clone())
            .chain(self.api.token.clone())
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub providers: BTreeMap<String, ProviderConfig>,
}

#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
pub struct RoutingConfig {
    pub channel: ModelId,
    pub branch: ModelId,
    pub worker: ModelId,
    pub compactor: ModelId,
    pub cortex: ModelId,
    pub fallbacks: BTreeMap<ModelId, Vec<ModelId>>,
}

impl RoutingConfig {
    /// The models to try, in order, after `model` fails; empty when none are configured.
    pub fn fallbacks_for(&self, model: &ModelId) -> &[ModelId] {
        self.fallbacks.get(model).map_or(&[], Vec::as_slice)
    }
}

#[derive(Debug, Clone)]
pub struct RetryConfig {
    pub max_retries: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

#[derive(Debug, Clone)]
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
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Matches `[a-z0-9_-]{1,64}`; unique across agents.
    pub id: String,
    pub default: bool,
    pub display_name: String,
    /// `defaults.routing` with this agent's `[agents.routing]` overrides applied.
    pub routing: RoutingConfig,
    pub max_turns: usize,
    pub history_messages: usize,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub enabled: bool,
    pub bind: IpAddr,
    pub port: u16,
    /// The resolved bearer token (after `env:` lookup).
    pub token: Option<String>,
}

/// Routes messages from one platform location to an agent.
#[derive(Debug, Clone)]
pub struct BindingConfig {
    pub agent: String,
    /// One of `discord`, `telegram`, `slack`, `webhook`, `portal`.
    pub platform: String,
    pub guild_id: Option<String>,
    pub channel_ids: Vec<String>,
    pub chat_id: Option<String>,
    pub team_id: Option<String>,
    pub require_mention: bool,
}

/// Where the download of the local embedding model comes from by default.
pub const DEFAULT_MODEL_DOWNLOAD_URL: &str =
    "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main";

/// `[memory]`: embeddings for recall and the maintenance interval.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryConfig {
    pub embedder: EmbedderConfig,
    /// Seconds between memory maintenance passes (decay, prune, merge); at least 1.
    pub maintenance_interval_secs: u64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            embedder: EmbedderConfig::Local {
                model_dir: None,
                download: true,
                download_url: DEFAULT_MODEL_DOWNLOAD_URL.to_string(),
            },
            maintenance_interval_secs: 3600,
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
