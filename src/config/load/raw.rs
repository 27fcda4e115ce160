//! The config file as serde reads it: every table and key, spanned where an error must
//! point at it. Resolving these into the typed `Config` happens in the sibling modules.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;
use toml::Spanned;

use crate::config::ProviderKind;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) llm: RawLlm,
    pub(super) defaults: RawDefaults,
    pub(super) agents: Vec<RawAgent>,
    pub(super) api: RawApi,
    pub(super) messaging: RawMessaging,
    pub(super) bindings: Vec<RawBinding>,
    pub(super) memory: RawMemory,
    pub(super) access: RawAccess,
    pub(super) sandbox: RawSandbox,
    pub(super) reload: RawReload,
    pub(super) web: RawWeb,
    pub(super) media: RawMedia,
    pub(super) mcp_servers: Vec<RawMcpServer>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawWeb {
    pub(super) allow_hosts: Vec<Spanned<String>>,
    pub(super) fetch_timeout_secs: Option<Spanned<u64>>,
    pub(super) max_fetch_kb: Option<Spanned<u64>>,
    pub(super) cache_secs: Option<u64>,
    pub(super) search: Option<RawSearch>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSearch {
    pub(super) backend: Spanned<crate::config::SearchBackend>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) api_key: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawMedia {
    pub(super) max_file_mb: Option<Spanned<u64>>,
    pub(super) image_max_side: Option<Spanned<u32>>,
    pub(super) document_chars: Option<Spanned<usize>>,
}

/// `[[mcp_servers]]`: one MCP server, over stdio (`command`) or streamable HTTP (`url`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMcpServer {
    pub(super) name: Spanned<String>,
    pub(super) command: Option<Spanned<String>>,
    pub(super) args: Option<Spanned<Vec<String>>>,
    pub(super) env: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) headers: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub(super) agents: Option<Vec<Spanned<String>>>,
    pub(super) timeout_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawReload {
    pub(super) watch: Option<bool>,
    pub(super) interval_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawAccess {
    pub(super) owners: Vec<Spanned<String>>,
    pub(super) members: Vec<Spanned<String>>,
    pub(super) groups: Vec<Spanned<String>>,
    pub(super) require_mention: Option<bool>,
    pub(super) pairing: Option<bool>,
    pub(super) pairing_ttl: Option<Spanned<String>>,
    pub(super) group_messages_per_minute: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawSandbox {
    pub(super) mode: Option<crate::config::SandboxMode>,
    pub(super) bwrap: Option<Spanned<std::path::PathBuf>>,
    pub(super) network: Option<bool>,
    pub(super) cpu_secs: Option<Spanned<u64>>,
    pub(super) memory_mb: Option<Spanned<u64>>,
    pub(super) file_mb: Option<Spanned<u64>>,
    pub(super) processes: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawMemory {
    pub(super) embedder: Option<Spanned<String>>,
    pub(super) embedding_model_dir: Option<std::path::PathBuf>,
    pub(super) download_model: Option<bool>,
    pub(super) model_download_url: Option<Spanned<String>>,
    pub(super) maintenance_interval_secs: Option<Spanned<u64>>,
    pub(super) capture_every: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawMessaging {
    pub(super) discord: Option<RawDiscord>,
    pub(super) telegram: Option<RawTelegram>,
    pub(super) slack: Option<RawSlack>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDiscord {
    pub(super) enabled: Option<bool>,
    /// Show replies as they are written (send, then edit); default on.
    pub(super) stream: Option<bool>,
    pub(super) token: Spanned<String>,
    #[serde(default)]
    pub(super) dm_allowed_users: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_bot_messages: bool,
    pub(super) api_base: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTelegram {
    pub(super) enabled: Option<bool>,
    /// Show replies as they are written (send, then edit); default on.
    pub(super) stream: Option<bool>,
    pub(super) token: Spanned<String>,
    #[serde(default)]
    pub(super) dm_allowed_users: Vec<Spanned<String>>,
    pub(super) api_url: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSlack {
    pub(super) enabled: Option<bool>,
    /// Show replies as they are written (send, then edit); default on.
    pub(super) stream: Option<bool>,
    pub(super) bot_token: Spanned<String>,
    pub(super) app_token: Spanned<String>,
    pub(super) api_url: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawLlm {
    pub(super) providers: BTreeMap<String, RawProvider>,
    /// Per-model settings, keyed by `provider/model` (or a bare model name).
    pub(super) models: BTreeMap<String, RawModelSettings>,
    /// Prices in USD per million tokens, keyed by `provider/model` or a model name.
    pub(super) pricing: BTreeMap<String, RawPrice>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawModelSettings {
    pub(super) context_window: Option<Spanned<usize>>,
    pub(super) max_output_tokens: Option<Spanned<u64>>,
    pub(super) temperature: Option<f64>,
    pub(super) reasoning_effort: Option<Spanned<String>>,
    pub(super) vision: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawPrice {
    pub(super) input: f64,
    pub(super) output: f64,
    pub(super) cache_read: Option<f64>,
    pub(super) cache_write: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) kind: Option<ProviderKind>,
    pub(super) base_url: Option<Spanned<String>>,
    pub(super) api_key: Option<Spanned<String>>,
    pub(super) timeout_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub(super) routing: RawRouting,
    pub(super) retry: RawRetry,
    pub(super) max_turns: Option<Spanned<usize>>,
    pub(super) history_messages: Option<Spanned<usize>>,
    pub(super) channel_inbox: Option<Spanned<usize>>,
    pub(super) shutdown_grace_secs: Option<u64>,
    pub(super) max_concurrent_branches: Option<Spanned<usize>>,
    pub(super) max_concurrent_workers: Option<Spanned<usize>>,
    pub(super) max_workers_per_agent: Option<Spanned<usize>>,
    pub(super) branch_max_turns: Option<Spanned<usize>>,
    pub(super) worker_max_turns: Option<Spanned<usize>>,
    pub(super) worker_timeout_secs: Option<Spanned<u64>>,
    pub(super) context_window: Option<Spanned<usize>>,
    pub(super) retrigger_batch_ms: Option<u64>,
    pub(super) max_retriggers: Option<usize>,
    pub(super) channel_idle_secs: Option<u64>,
    pub(super) daily_token_budget: Option<Spanned<u64>>,
    pub(super) coalesce: RawCoalesce,
    pub(super) timezone: Option<Spanned<String>>,
    pub(super) cron: RawCronDefaults,
    pub(super) cortex: RawCortex,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawCronDefaults {
    pub(super) grace: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) min_interval: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawCortex {
    pub(super) stall_secs: Option<Spanned<u64>>,
    pub(super) branch_timeout_secs: Option<Spanned<u64>>,
    pub(super) breaker_threshold: Option<Spanned<u32>>,
    pub(super) breaker_cooldown_secs: Option<Spanned<u64>>,
    pub(super) maintenance_interval_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCronJob {
    pub(super) id: Spanned<String>,
    pub(super) prompt: Spanned<String>,
    pub(super) cron: Option<Spanned<String>>,
    pub(super) every: Option<Spanned<String>>,
    pub(super) timezone: Option<Spanned<String>>,
    pub(super) delivery_target: Option<Spanned<String>>,
    pub(super) active_hours: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) enabled: Option<bool>,
    pub(super) run_once: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawCoalesce {
    pub(super) enabled: Option<bool>,
    pub(super) debounce_ms: Option<u64>,
    pub(super) max_wait_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawRouting {
    pub(super) channel: Option<Spanned<String>>,
    pub(super) branch: Option<Spanned<String>>,
    pub(super) worker: Option<Spanned<String>>,
    pub(super) compactor: Option<Spanned<String>>,
    pub(super) cortex: Option<Spanned<String>>,
    /// Values are spanned so that a bad key can point at its line.
    pub(super) fallbacks: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawRetry {
    pub(super) max_retries: Option<u32>,
    pub(super) initial_backoff_ms: Option<Spanned<u64>>,
    pub(super) max_backoff_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgent {
    pub(super) id: Spanned<String>,
    pub(super) default: Option<Spanned<bool>>,
    pub(super) display_name: Option<String>,
    pub(super) max_turns: Option<Spanned<usize>>,
    pub(super) history_messages: Option<Spanned<usize>>,
    #[serde(default)]
    pub(super) routing: RawRouting,
    pub(super) timezone: Option<Spanned<String>>,
    pub(super) daily_token_budget: Option<Spanned<u64>>,
    #[serde(default)]
    pub(super) cron: Vec<RawCronJob>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawApi {
    pub(super) enabled: Option<bool>,
    pub(super) bind: Option<IpAddr>,
    pub(super) port: Option<u16>,
    pub(super) token: Option<Spanned<String>>,
    pub(super) allowed_hosts: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBinding {
    pub(super) agent: Spanned<String>,
    pub(super) platform: Spanned<String>,
    pub(super) guild_id: Option<String>,
    #[serde(default)]
    pub(super) channel_ids: Vec<String>,
    pub(super) chat_id: Option<String>,
    pub(super) team_id: Option<String>,
    pub(super) require_mention: Option<bool>,
}
