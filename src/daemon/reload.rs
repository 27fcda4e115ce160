//! Applying an edited config to the running daemon. One mechanism, whoever asks (the file
//! watch, `POST /api/reload`, SIGHUP): load and validate the file; compare it with the config
//! in force (`Changes::between`), section by section; build everything the changes need that
//! can fail (provider clients, platform adapters, new agents) while nothing has changed yet;
//! then hand each part to its owner: the LLM manager its providers and retries, the redactor
//! new secrets, access its lists, each agent its routing and its jobs, the router its table of
//! agents and bindings, the MCP manager its servers (an unchanged one keeps running), messaging
//! the adapters whose tables changed. A file that does not load, or a part that cannot be
//! built, changes nothing; the error goes to the log and to the status. A new reloadable section is one more comparison in `Changes::between` and one
//! more step in `apply`, through its owner.
//!
//! No message is dropped: an agent is added to the router only once it runs, a removed agent
//! leaves the router before it stops (its turns finish within the shutdown grace; what it
//! still owes stays stored, answered when it is configured again), and an adapter whose
//! table changed stops confirming messages before its successor connects, so the platform
//! hands the unconfirmed ones to the new connection (Telegram, Slack). Discord does not
//! replay what is sent while the gateway reconnects, as at any reconnect.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::task::TaskTracker;

use super::{AgentEntry, Agents, DaemonState, Environment, agents};
use crate::agent::SharedServices;
use crate::config::{AgentConfig, Config};
use crate::conversation_id::Platform;
use crate::llm::LlmSetup;
use crate::message::Outbox;
use crate::messaging::{Adapter, configured_adapters};
use crate::router::{RouteTable, Router};

/// What the command line says over the file (`serve --bind/--port`); kept on every reload.
#[derive(Debug, Clone, Copy)]
pub(super) struct Overrides {
    pub bind: Option<IpAddr>,
    pub port: Option<u16>,
}

impl Overrides {
    pub fn apply(&self, mut config: Config) -> Config {
        if let Some(bind) = self.bind {
            config.api.bind = bind;
        }
        if let Some(port) = self.port {
            config.api.port = port;
        }
        config
    }
}

/// What a reload needs besides the daemon's state: where the file is, and what new agents
/// are built from.
pub(super) struct Parts {
    pub config_path: PathBuf,
    pub environment: Environment,
    pub overrides: Overrides,
    pub shared: SharedServices,
    pub platforms: Arc<dyn Outbox>,
    pub router: Arc<Router>,
    pub agents_root: PathBuf,
}

/// Runs reloads one at a time and remembers how the last one went.
pub(super) struct Reloader {
    parts: Parts,
    running: tokio::sync::Mutex<()>,
    closed: AtomicBool,
    last: Mutex<Option<ReloadReport>>,
    /// Removed agents finishing their turns.
    retiring: TaskTracker,
}

/// How a reload went, for the log, `GET /api/status` and `spacebot status`.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// When it ran, Unix milliseconds.
    pub at: i64,
    pub outcome: ReloadOutcome,
    /// What was applied, one line per part (`bindings`, `agent second added`, ...).
    pub changes: Vec<String>,
    /// Settings that differ from the file but take effect only after a restart.
    pub restart_needed: Vec<String>,
    /// Why the file was not applied (`failed`), with its file, line and key when it did not
    /// load; or what went wrong after the edit was committed (`applied`).
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadOutcome {
    Applied,
    Unchanged,
    Failed,
}

impl ReloadOutcome {
    fn as_str(self) -> &'static str {
        match self {
            ReloadOutcome::Applied => "applied",
            ReloadOutcome::Unchanged => "unchanged",
            ReloadOutcome::Failed => "failed",
        }
    }
}

impl Reloader {
    pub fn new(parts: Parts) -> Self {
        Self {
            parts,
            running: tokio::sync::Mutex::new(()),
            closed: AtomicBool::new(false),
            last: Mutex::new(None),
            retiring: TaskTracker::new(),
        }
    }

    pub fn last(&self) -> Option<ReloadReport> {
        self.last.lock().ok().and_then(|last| last.clone())
    }

    pub fn config_path(&self) -> &std::path::Path {
        &self.parts.config_path
    }

    /// Refuses reloads from now on, after the one under way (at shutdown).
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let _ = self.running.lock().await;
    }

    /// Waits for removed agents to finish stopping.
    pub async fn wait_retired(&self) {
        self.retiring.close();
        self.retiring.wait().await;
    }
}

/// Reloads the config file into the running daemon (see the module's doc).
pub(super) async fn reload(state: &DaemonState) -> ReloadReport {
    let reloader = &state.reloader;
    let _one_at_a_time = reloader.running.lock().await;
    let previous = reloader.last();
    let mut report = if reloader.closed.load(Ordering::Acquire) {
        failed(vec!["the daemon is shutting down".to_string()])
    } else {
        run(state, &reloader.parts).await
    };
    if report.outcome == ReloadOutcome::Failed {
        // The running config is the one of the last successful reload: so are its pending
        // restarts.
        report.restart_needed = previous
            .map(|previous| previous.restart_needed)
            .unwrap_or_default();
    }
    match report.outcome {
        ReloadOutcome::Applied => tracing::info!(
            changes = ?report.changes,
            restart_needed = ?report.restart_needed,
            errors = ?report.errors,
            "config reloaded"
        ),
        ReloadOutcome::Unchanged => tracing::debug!("config reload: nothing changed"),
        ReloadOutcome::Failed => tracing::error!(
            errors = ?report.errors,
            "config reload refused; the running config stays in force"
        ),
    }
    if !report.restart_needed.is_empty() && report.outcome == ReloadOutcome::Applied {
        tracing::warn!(settings = ?report.restart_needed, "these settings changed and take effect after a restart");
    }
    state.metrics.reload(report.outcome.as_str());
    if let Ok(mut last) = reloader.last.lock() {
        *last = Some(report.clone());
    }
    report
}

fn failed(errors: Vec<String>) -> ReloadReport {
    ReloadReport {
        at: crate::database::now_millis(),
        outcome: ReloadOutcome::Failed,
        changes: Vec::new(),
        restart_needed: Vec::new(),
        errors,
    }
}

async fn run(state: &DaemonState, parts: &Parts) -> ReloadReport {
    let loaded = crate::config::Config::load(&parts.config_path, &*parts.environment);
    let new = match loaded {
        Ok(config) => parts.overrides.apply(config),
        Err(error) => return failed(vec![error.to_string()]),
    };
    let old = state.config();
    let agents = state.agents();
    let changes = Changes::between(&old, &new, &agents);
    let (new, restart_needed) = keep_running_values(&old, new);
    let mut restart_needed = restart_needed;
    restart_needed.extend(agent_restarts(&agents, &new));
    if changes.is_empty() {
        return ReloadReport {
            at: crate::database::now_millis(),
            outcome: ReloadOutcome::Unchanged,
            changes: Vec::new(),
            restart_needed,
            errors: Vec::new(),
        };
    }
    let prepared = match prepare(parts, &new, &changes).await {
        Ok(prepared) => prepared,
        Err(error) => return failed(vec![error]),
    };
    let mut report = ReloadReport {
        at: crate::database::now_millis(),
        outcome: ReloadOutcome::Applied,
        changes: Vec::new(),
        restart_needed,
        errors: Vec::new(),
    };
    commit(state, parts, &agents, new, changes, prepared, &mut report).await;
    report
}

/// What differs between the config in force and the file, by the part that owns it.
#[derive(Debug, Default)]
struct Changes {
    /// Providers, retries, breaker settings.
    llm: bool,
    access: bool,
    /// Bindings or the default agent.
    routes: bool,
    agents_added: Vec<AgentConfig>,
    agents_removed: Vec<String>,
    /// Agents whose config differs (routing, jobs, or settings needing a restart).
    agents_changed: Vec<AgentConfig>,
    /// Chat platforms whose table changed.
    platforms: Vec<Platform>,
    /// The API's token or allowed hosts, read by every request.
    api: bool,
    /// Secrets the redactor does not know yet.
    secrets: bool,
    /// `[reload]` itself.
    reload: bool,
    /// `[[mcp_servers]]`.
    mcp: bool,
}

impl Changes {
    fn between(old: &Config, new: &Config, running: &Agents) -> Self {
        let mut changes = Changes {
            llm: old.llm != new.llm
                || old.defaults.retry != new.defaults.retry
                || old.defaults.cortex.breaker_threshold != new.defaults.cortex.breaker_threshold
                || old.defaults.cortex.breaker_cooldown_secs
                    != new.defaults.cortex.breaker_cooldown_secs,
            access: old.access != new.access,
            routes: old.bindings != new.bindings
                || old.default_agent().id != new.default_agent().id,
            api: old.api.token != new.api.token || old.api.allowed_hosts != new.api.allowed_hosts,
            secrets: new
                .secrets()
                .iter()
                .any(|secret| !old.secrets().contains(secret)),
            reload: old.reload != new.reload,
            mcp: old.mcp_servers != new.mcp_servers,
            ..Changes::default()
        };
        for agent in &new.agents {
            if !running.contains_key(&agent.id) {
                changes.agents_added.push(agent.clone());
            } else if old.agent(&agent.id) != Some(agent) {
                changes.agents_changed.push(agent.clone());
            }
        }
        changes.agents_removed = running
            .keys()
            .filter(|id| new.agent(id).is_none())
            .cloned()
            .collect();
        let (old_platforms, new_platforms) = (&old.messaging, &new.messaging);
        for (platform, changed) in [
            (
                Platform::Discord,
                old_platforms.discord != new_platforms.discord,
            ),
            (
                Platform::Telegram,
                old_platforms.telegram != new_platforms.telegram,
            ),
            (Platform::Slack, old_platforms.slack != new_platforms.slack),
        ] {
            if changed {
                changes.platforms.push(platform);
            }
        }
        changes
    }

    fn is_empty(&self) -> bool {
        !(self.llm
            || self.access
            || self.routes
            || self.api
            || self.secrets
            || self.reload
            || self.mcp
            || !self.agents_added.is_empty()
            || !self.agents_removed.is_empty()
            || !self.agents_changed.is_empty()
            || !self.platforms.is_empty())
    }
}

/// The new config as it will be in force: sections that need a restart keep their running
/// values (so the status tells the truth, and the next reload still sees the difference),
/// with their keys.
fn keep_running_values(old: &Config, mut new: Config) -> (Config, Vec<String>) {
    let mut restart_needed = Vec::new();
    if old.api.bind != new.api.bind {
        restart_needed.push("api.bind".to_string());
        new.api.bind = old.api.bind;
    }
    if old.api.port != new.api.port {
        restart_needed.push("api.port".to_string());
        new.api.port = old.api.port;
    }
    if old.api.enabled != new.api.enabled {
        restart_needed.push("api.enabled".to_string());
        new.api.enabled = old.api.enabled;
    }
    if old.memory != new.memory {
        restart_needed.push("memory".to_string());
        new.memory = old.memory.clone();
    }
    if old.sandbox != new.sandbox {
        restart_needed.push("sandbox".to_string());
        new.sandbox = old.sandbox.clone();
    }
    if old.agent_messages != new.agent_messages {
        restart_needed.push("agent_messages".to_string());
        new.agent_messages = old.agent_messages;
    }
    if old.web != new.web {
        restart_needed.push("web".to_string());
        new.web = old.web.clone();
    }
    if old.media != new.media {
        restart_needed.push("media".to_string());
        new.media = old.media.clone();
        new.messaging.max_file_bytes = old.messaging.max_file_bytes;
    }
    (new, restart_needed)
}

/// Settings of running agents that differ from `new` but are read only when an agent opens.
fn agent_restarts(running: &Agents, new: &Config) -> Vec<String> {
    let mut restart_needed = Vec::new();
    for (id, entry) in running {
        let Some(config) = new.agent(id) else {
            continue;
        };
        let opened = entry.runtime.config();
        let mut keys = entry.runtime.settings_needing_restart(config);
        if opened.timezone != config.timezone {
            keys.push("timezone");
        }
        if opened.cron_settings != config.cron_settings {
            keys.push("cron settings");
        }
        restart_needed.extend(keys.into_iter().map(|key| format!("agents.{id}.{key}")));
    }
    restart_needed
}

/// What the changes need that can fail, built before anything changes.
struct Prepared {
    llm: Option<LlmSetup>,
    adapters: BTreeMap<Platform, Option<Arc<dyn Adapter>>>,
    /// New agents, opened (their databases ready) but not started.
    agents: Vec<(String, AgentEntry)>,
}

async fn prepare(parts: &Parts, new: &Config, changes: &Changes) -> Result<Prepared, String> {
    let llm = match changes.llm {
        true => Some(LlmSetup::new(new).map_err(|error| error.to_string())?),
        false => None,
    };
    let mut adapters = BTreeMap::new();
    if !changes.platforms.is_empty() {
        let mut configured =
            configured_adapters(&new.messaging).map_err(|error| error.to_string())?;
        for platform in &changes.platforms {
            adapters.insert(*platform, configured.remove(platform).flatten());
        }
    }
    let mut opened: Vec<(String, AgentEntry)> = Vec::new();
    for config in &changes.agents_added {
        match agents::open(config, &parts.agents_root, &parts.shared, &parts.platforms).await {
            Ok(entry) => opened.push((config.id.clone(), entry)),
            Err(error) => {
                // Nothing was started on them; closing releases their databases.
                for (_, entry) in opened {
                    entry.runtime.shutdown(Duration::ZERO).await;
                }
                return Err(error.to_string());
            }
        }
    }
    Ok(Prepared {
        llm,
        adapters,
        agents: opened,
    })
}

async fn commit(
    state: &DaemonState,
    parts: &Parts,
    running: &Agents,
    new: Config,
    changes: Changes,
    prepared: Prepared,
    report: &mut ReloadReport,
) {
    if changes.access {
        match state.access.reconfigure(new.access.clone()).await {
            Ok(()) => report.changes.push("access".to_string()),
            Err(error) => report.errors.push(format!("access: {error}")),
        }
    }
    if let Some(setup) = prepared.llm {
        state.llm.replace_setup(setup);
        report
            .changes
            .push("llm providers, retries and breakers".to_string());
    }
    if changes.secrets {
        parts.shared.redactor.add(new.secrets());
    }
    if changes.mcp {
        state.mcp.reconfigure(&new.mcp_servers);
        report.changes.push("mcp_servers".to_string());
    }
    for config in &changes.agents_changed {
        let Some(entry) = running.get(&config.id) else {
            continue;
        };
        if *entry.runtime.routing() != config.routing {
            entry.runtime.reconfigure(config);
            report.changes.push(format!("agents.{}.routing", config.id));
        }
        match entry.cron.sync_config(&config.cron).await {
            Ok(jobs) if !jobs.is_empty() => {
                report
                    .changes
                    .push(format!("agents.{}.cron: {}", config.id, jobs.join(", ")))
            }
            Ok(_) => {}
            Err(error) => report
                .errors
                .push(format!("agents.{}.cron: {error}", config.id)),
        }
    }
    let grace = Duration::from_secs(new.defaults.shutdown_grace_secs);
    let mut agents: Agents = running
        .iter()
        .filter(|(id, _)| !changes.agents_removed.contains(id))
        .map(|(id, entry)| (id.clone(), entry.clone()))
        .collect();
    for (id, entry) in prepared.agents {
        match agents::start(&id, &entry).await {
            Ok(()) => {
                report.changes.push(format!("agent {id} added"));
                agents.insert(id, entry);
            }
            Err(error) => {
                report.errors.push(error.to_string());
                entry.runtime.shutdown(grace).await;
            }
        }
    }
    let default_agent = if agents.contains_key(&new.default_agent().id) {
        new.default_agent().id.clone()
    } else {
        state.config().default_agent().id.clone()
    };
    parts.router.replace(RouteTable::new(
        agents
            .iter()
            .map(|(id, entry)| (id.clone(), entry.runtime.clone()))
            .collect(),
        new.bindings.clone(),
        default_agent,
    ));
    if changes.routes {
        report.changes.push("bindings".to_string());
    }
    state.replace_agents(agents);
    for id in &changes.agents_removed {
        if let Some(entry) = running.get(id) {
            report.changes.push(format!("agent {id} removed"));
            let runtime = entry.runtime.clone();
            state
                .reloader
                .retiring
                .spawn(async move { runtime.shutdown(grace).await });
        }
    }
    for (platform, adapter) in prepared.adapters {
        let verb = if adapter.is_some() {
            "started"
        } else {
            "stopped"
        };
        state.messaging.replace(platform, adapter).await;
        report
            .changes
            .push(format!("messaging.{} {verb}", platform.as_str()));
    }
    if changes.api {
        report
            .changes
            .push("api token and allowed hosts".to_string());
    }
    if changes.reload {
        report.changes.push("reload".to_string());
    }
    state.replace_config(new);
}
