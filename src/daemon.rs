//! The daemon: the composition root. It builds every agent, its scheduled jobs and its
//! outbox from the config, wires the router between messaging and the agents, starts the
//! platforms and the API, supervises them (restart with backoff), applies config edits while
//! it runs (`reload`, `watch`), reads its own state for the metrics (`snapshot`), and owns
//! the ordered, graceful shutdown. `agents` opens and closes one agent; `home` prepares
//! `$SPACEBOT_HOME`; `serve` runs the HTTP API.

mod agents;
mod home;
mod reload;
mod serve;
mod snapshot;
mod watch;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{Access, AccessStore};
use crate::agent::{AgentRuntime, SharedServices};
use crate::config::{Config, ConfigError};
use crate::cron::CronService;
use crate::llm::{LlmManager, SETUP_HINT};
use crate::mcp::McpManager;
use crate::memory::Embedder;
use crate::message::Outbox;
use crate::messaging::MessagingManager;
use crate::metrics::Metrics;
use crate::prompts::Prompts;
use crate::router::{RouteTable, Router};
use crate::sandbox::{Redactor, Sandbox};
pub use reload::{ReloadOutcome, ReloadReport};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot prepare {path}: {source}")]
    Home {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] crate::database::DatabaseError),
    #[error(transparent)]
    Prompt(#[from] crate::prompts::PromptError),
    #[error(transparent)]
    Provider(#[from] crate::llm::ProviderBuildError),
    #[error(transparent)]
    Web(#[from] crate::web::WebError),
    #[error(
        "refusing to serve the API on {0} without a token: anyone who reaches it could make \
         the agents act and read every conversation. Set [api] token (e.g. token = \
         \"env:SPACEBOT_API_TOKEN\"), or bind 127.0.0.1 and reach it through a tunnel or a \
         proxy that authenticates"
    )]
    OpenApi(IpAddr),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("agent `{agent}`: {source}")]
    Agent {
        agent: String,
        source: crate::agent::AgentError,
    },
    #[error(transparent)]
    Messaging(#[from] crate::messaging::MessagingError),
    #[error(transparent)]
    Access(#[from] crate::access::AccessError),
    #[error("cannot start the cron jobs of agent `{agent}`: {source}")]
    Cron {
        agent: String,
        source: crate::cron::CronError,
    },
}

/// Looks up an environment variable. Tests pass their own instead of mutating the process's.
pub type Environment = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub fn process_environment() -> Environment {
    Arc::new(|name: &str| std::env::var(name).ok())
}

/// Builds the HTTP API for the daemon's state (`api::router`). The daemon serves it without
/// knowing it, so that the API sits above the daemon.
pub type ApiRouter = fn(Arc<DaemonState>) -> axum::Router;

pub struct DaemonOptions {
    /// `$SPACEBOT_HOME`: config, agent databases, workspaces.
    pub home: PathBuf,
    /// An explicit config file; by default `{home}/config.toml`, written on first run.
    pub config_path: Option<PathBuf>,
    pub bind: Option<IpAddr>,
    pub port: Option<u16>,
    pub environment: Environment,
    /// The HTTP API to serve (when `[api] enabled`); `None` serves none.
    pub api: Option<ApiRouter>,
}

pub use home::default_home;

/// One agent with its scheduled jobs.
#[derive(Clone)]
pub struct AgentEntry {
    pub runtime: Arc<AgentRuntime>,
    pub cron: Arc<CronService>,
}

/// The agents by id; replaced whole when a reload adds or removes one.
pub type Agents = BTreeMap<String, AgentEntry>;

/// State shared by the HTTP API and the daemon.
pub struct DaemonState {
    pub home: PathBuf,
    pub llm: Arc<LlmManager>,
    pub messaging: Arc<MessagingManager>,
    /// Who may talk to the agents and make them act.
    pub access: Arc<Access>,
    /// Where workers' shell commands run.
    pub sandbox: Arc<Sandbox>,
    /// Shared by every agent's memory store; reports whether recall is hybrid.
    pub embedder: Arc<Embedder>,
    /// What the daemon counts, for `GET /metrics`.
    pub metrics: Metrics,
    /// The MCP servers, for the status.
    pub mcp: Arc<McpManager>,
    pub started_at: Instant,
    pub shutdown: CancellationToken,
    /// The config in force (with the command line's overrides); replaced by a reload.
    config: RwLock<Arc<Config>>,
    agents: RwLock<Arc<Agents>>,
    /// What a reload needs to build agents and where it records how it went.
    reloader: reload::Reloader,
}

impl DaemonState {
    /// The config in force now.
    pub fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(config) => config.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The agents running now.
    pub fn agents(&self) -> Arc<Agents> {
        match self.agents.read() {
            Ok(agents) => agents.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn agent(&self, id: &str) -> Option<AgentEntry> {
        self.agents().get(id).cloned()
    }

    pub fn default_agent(&self) -> Option<AgentEntry> {
        self.agent(&self.config().default_agent().id)
    }

    pub fn llm_hint(&self) -> Option<&'static str> {
        (!self.llm.is_configured()).then_some(SETUP_HINT)
    }

    /// Reads the config file again and applies what changed (see `reload`). Reloads run one
    /// at a time, whoever asks (the file watch, `POST /api/reload`, SIGHUP).
    pub async fn reload(&self) -> ReloadReport {
        reload::reload(self).await
    }

    /// How the last reload went, if there was one.
    pub fn last_reload(&self) -> Option<ReloadReport> {
        self.reloader.last()
    }

    fn replace_config(&self, config: Config) {
        match self.config.write() {
            Ok(mut current) => *current = Arc::new(config),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(config),
        }
    }

    fn replace_agents(&self, agents: Agents) {
        match self.agents.write() {
            Ok(mut current) => *current = Arc::new(agents),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(agents),
        }
    }
}

pub struct Daemon {
    state: Arc<DaemonState>,
    api_address: Option<SocketAddr>,
    tasks: TaskTracker,
}

impl Daemon {
    pub async fn start(options: DaemonOptions) -> Result<Self, DaemonError> {
        let started = Instant::now();
        let home = options.home.clone();
        home::create_dir(&home).await?;
        home::create_dir(&home.join("agents")).await?;
        home::create_dir(&home.join("skills")).await?;
        let config_path = match &options.config_path {
            Some(path) => path.clone(),
            None => {
                let path = home.join("config.toml");
                home::write_default_config(&path).await?;
                path
            }
        };
        let environment = options.environment.clone();
        let overrides = reload::Overrides {
            bind: options.bind,
            port: options.port,
        };
        let (config, baseline) = watch::load(&config_path, &*environment).await?;
        let config = overrides.apply(config);
        let api = &config.api;
        if api.enabled && options.api.is_some() && !api.bind.is_loopback() && api.token.is_none() {
            return Err(DaemonError::OpenApi(api.bind));
        }
        tracing::info!(config = %config_path.display(), home = %home.display(), "starting");
        for notice in &config.notices {
            tracing::warn!("{notice}");
        }
        let access = Arc::new(
            Access::open(
                config.access.clone(),
                AccessStore::new(crate::database::open_daemon(&home.join("daemon.db")).await?),
            )
            .await?,
        );
        for warning in access.warnings() {
            tracing::warn!("{warning}");
        }

        let metrics = Metrics::default();
        let llm = Arc::new(LlmManager::new(&config, metrics.clone())?);
        if llm.is_configured() {
            for provider in llm.provider_statuses() {
                tracing::info!(provider = %provider.name, kind = provider.kind, base_url = ?provider.base_url, "LLM provider");
            }
        } else {
            tracing::warn!("{SETUP_HINT}");
        }
        // Started in the background: no agent waits for a server to come up.
        let mcp = McpManager::start(&config.mcp_servers);
        let shared = SharedServices {
            llm: llm.clone(),
            prompts: Arc::new(Prompts::new()?),
            embedder: Arc::new(Embedder::from_config(
                &config.memory,
                &config.llm.providers,
                &home,
            )),
            redactor: Redactor::new(config.secrets()),
            sandbox: Arc::new(Sandbox::new(&config.sandbox)),
            metrics: metrics.clone(),
            web: Arc::new(crate::web::Web::new(&config.web)?),
            shared_skills: home.join("skills"),
            media: config.media.clone(),
            mcp: mcp.clone(),
        };
        let messaging = Arc::new(MessagingManager::from_config(&config.messaging)?);
        let platforms: Arc<dyn Outbox> = messaging.clone();
        let agents_root = home.join("agents");
        let mut agents = Agents::new();
        for agent_config in &config.agents {
            let entry = agents::open(agent_config, &agents_root, &shared, &platforms).await?;
            agents.insert(agent_config.id.clone(), entry);
        }
        for (agent_id, entry) in &agents {
            agents::start(agent_id, entry).await?;
        }
        let router = Arc::new(Router::new(
            RouteTable::new(
                agents
                    .iter()
                    .map(|(id, entry)| (id.clone(), entry.runtime.clone()))
                    .collect(),
                config.bindings.clone(),
                config.default_agent().id.clone(),
            ),
            access.clone(),
            platforms.clone(),
        ));
        messaging.start(router.clone());

        let state = Arc::new(DaemonState {
            home,
            llm,
            messaging,
            access,
            embedder: shared.embedder.clone(),
            sandbox: shared.sandbox.clone(),
            metrics,
            mcp,
            started_at: started,
            shutdown: CancellationToken::new(),
            config: RwLock::new(Arc::new(config)),
            agents: RwLock::new(Arc::new(agents)),
            reloader: reload::Reloader::new(reload::Parts {
                config_path,
                environment,
                overrides,
                shared,
                platforms,
                router,
                agents_root,
            }),
        });
        let tasks = TaskTracker::new();
        let api_address = match options.api {
            Some(router) if state.config().api.enabled => {
                Some(serve::start_api(&state, router, &tasks)?)
            }
            Some(_) | None => None,
        };
        watch::start(&state, &tasks, baseline);
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            api = ?api_address,
            agents = state.agents().len(),
            "ready"
        );
        Ok(Self {
            state,
            api_address,
            tasks,
        })
    }

    pub fn state(&self) -> &Arc<DaemonState> {
        &self.state
    }

    /// The address the HTTP API listens on, if it is enabled.
    pub fn api_address(&self) -> Option<SocketAddr> {
        self.api_address
    }

    /// Reads the config file again and applies what changed (SIGHUP).
    pub async fn reload(&self) -> ReloadReport {
        self.state.reload().await
    }

    /// Stops intake (platforms first), lets running turns finish and answer up to the
    /// configured grace period, flushes the databases, closes the adapters and stops the API.
    pub async fn shutdown(self) {
        let grace = Duration::from_secs(self.state.config().defaults.shutdown_grace_secs);
        tracing::info!(grace_secs = grace.as_secs(), "shutting down");
        // No reload may start an agent or an adapter from here on.
        self.state.reloader.close().await;
        self.state.messaging.stop_intake().await;
        let agents = self.state.agents();
        futures::future::join_all(agents.values().map(|entry| entry.runtime.shutdown(grace))).await;
        self.state.reloader.wait_retired().await;
        self.state.mcp.shutdown().await;
        self.state.messaging.shutdown().await;
        self.state.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("the API did not stop within the grace period");
        }
        tracing::info!("stopped");
    }
}
