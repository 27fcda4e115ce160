//! The daemon: the composition root. It builds every agent, its scheduled jobs and its
//! outbox from the config, wires the router between messaging and the agents, starts the
//! platforms and the API, supervises them (restart with backoff), and owns the ordered,
//! graceful shutdown.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{Access, AccessStore};
use crate::agent::{AgentLinks, AgentRuntime, SharedServices};
use crate::config::{AgentConfig, Config, ConfigError, DEFAULT_CONFIG};
use crate::conversation_id::ConversationId;
use crate::cron::{CronHost, CronService, CronStore, HostError, RunOutbox};
use crate::llm::{LlmManager, SETUP_HINT};
use crate::memory::Embedder;
use crate::message::{InboundMessage, Outbox};
use crate::messaging::MessagingManager;
use crate::prompts::Prompts;
use crate::router::Router;
use crate::sandbox::{Redactor, Sandbox};
use crate::supervision::{Lifecycle, RestartPolicy, supervise};

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

/// `$SPACEBOT_HOME`, else `~/.spacebot`.
pub fn default_home(environment: &Environment) -> PathBuf {
    if let Some(home) = environment("SPACEBOT_HOME").filter(|value| !value.is_empty()) {
        return PathBuf::from(home);
    }
    let user_home = environment("HOME").unwrap_or_else(|| ".".to_string());
    Path::new(&user_home).join(".spacebot")
}

/// One agent with its scheduled jobs.
pub struct AgentEntry {
    pub runtime: Arc<AgentRuntime>,
    pub cron: Arc<CronService>,
}

/// State shared by the HTTP API and the daemon.
pub struct DaemonState {
    pub config: Config,
    pub home: PathBuf,
    pub agents: BTreeMap<String, AgentEntry>,
    pub llm: Arc<LlmManager>,
    pub messaging: Arc<MessagingManager>,
    /// Who may talk to the agents and make them act.
    pub access: Arc<Access>,
    /// Where workers' shell commands run.
    pub sandbox: Arc<Sandbox>,
    /// Shared by every agent's memory store; reports whether recall is hybrid.
    pub embedder: Arc<Embedder>,
    pub started_at: Instant,
    pub shutdown: CancellationToken,
}

impl DaemonState {
    pub fn default_agent(&self) -> Option<&AgentEntry> {
        self.agents.get(&self.config.default_agent().id)
    }

    pub fn llm_hint(&self) -> Option<&'static str> {
        (!self.llm.is_configured()).then_some(SETUP_HINT)
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
        create_dir(&home).await?;
        create_dir(&home.join("agents")).await?;
        let config_path = match &options.config_path {
            Some(path) => path.clone(),
            None => {
                let path = home.join("config.toml");
                write_default_config(&path).await?;
                path
            }
        };
        let environment = options.environment.clone();
        let mut config = Config::load(&config_path, &*environment)?;
        if let Some(bind) = options.bind {
            config.api.bind = bind;
        }
        if let Some(port) = options.port {
            config.api.port = port;
        }
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

        let llm = Arc::new(LlmManager::new(&config)?);
        if llm.is_configured() {
            for provider in llm.provider_statuses() {
                tracing::info!(provider = %provider.name, kind = provider.kind, base_url = ?provider.base_url, "LLM provider");
            }
        } else {
            tracing::warn!("{SETUP_HINT}");
        }
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
        };
        let messaging = Arc::new(MessagingManager::from_config(&config.messaging)?);
        let platforms: Arc<dyn Outbox> = messaging.clone();
        let agents_root = home.join("agents");
        let mut agents = BTreeMap::new();
        for agent_config in &config.agents {
            let entry = open_agent(agent_config, &agents_root, &shared, &platforms)
                .await
                .map_err(|error| match error {
                    OpenError::Agent(source) => DaemonError::Agent {
                        agent: agent_config.id.clone(),
                        source,
                    },
                    OpenError::Daemon(error) => error,
                })?;
            agents.insert(agent_config.id.clone(), entry);
        }
        for (agent_id, entry) in &agents {
            entry.runtime.start();
            // Before pending messages are answered, so an interrupted scheduled run is
            // closed instead of run again.
            let host: Arc<dyn CronHost> = entry.runtime.clone();
            let host: Weak<dyn CronHost> = Arc::downgrade(&host);
            entry
                .cron
                .start(host, &entry.runtime.config().cron)
                .await
                .map_err(|source| DaemonError::Cron {
                    agent: agent_id.clone(),
                    source,
                })?;
            entry
                .runtime
                .resume_pending()
                .await
                .map_err(|source| DaemonError::Agent {
                    agent: agent_id.clone(),
                    source,
                })?;
        }
        let router = Arc::new(Router::new(
            agents
                .iter()
                .map(|(id, entry)| (id.clone(), entry.runtime.clone()))
                .collect(),
            config.bindings.clone(),
            config.default_agent().id.clone(),
            access.clone(),
            platforms,
        ));
        messaging.start(router);

        let state = Arc::new(DaemonState {
            config,
            home,
            agents,
            llm,
            messaging,
            access,
            embedder: shared.embedder.clone(),
            sandbox: shared.sandbox.clone(),
            started_at: started,
            shutdown: CancellationToken::new(),
        });
        let tasks = TaskTracker::new();
        let api_address = match options.api {
            Some(router) if state.config.api.enabled => Some(start_api(&state, router, &tasks)?),
            Some(_) | None => None,
        };
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            api = ?api_address,
            agents = state.agents.len(),
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

    /// Stops intake (platforms first), lets running turns finish and answer up to the
    /// configured grace period, flushes the databases, closes the adapters and stops the API.
    pub async fn shutdown(self) {
        let grace = Duration::from_secs(self.state.config.defaults.shutdown_grace_secs);
        tracing::info!(grace_secs = grace.as_secs(), "shutting down");
        self.state.messaging.stop_intake().await;
        let agents = self
            .state
            .agents
            .values()
            .map(|entry| entry.runtime.shutdown(grace));
        futures::future::join_all(agents).await;
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

/// Why an agent could not be opened.
enum OpenError {
    Agent(crate::agent::AgentError),
    Daemon(DaemonError),
}

/// Opens one agent on its database, with its scheduled jobs in front of its outbox.
async fn open_agent(
    config: &AgentConfig,
    agents_root: &Path,
    shared: &SharedServices,
    platforms: &Arc<dyn Outbox>,
) -> Result<AgentEntry, OpenError> {
    let home = agents_root.join(&config.id);
    create_dir(&home).await.map_err(OpenError::Daemon)?;
    let database = crate::database::open(&home.join("spacebot.db"))
        .await
        .map_err(|error| OpenError::Daemon(error.into()))?;
    let lifecycle = Lifecycle::default();
    let cron = CronService::new(
        config,
        CronStore::new(database.clone()),
        shared.prompts.clone(),
        lifecycle.clone(),
    );
    let links = AgentLinks {
        outbox: Arc::new(RunOutbox::new(cron.clone(), platforms.clone())),
        cron: cron.clone(),
        lifecycle,
    };
    let runtime = AgentRuntime::open(config, &home, database, shared, links)
        .await
        .map_err(OpenError::Agent)?;
    Ok(AgentEntry {
        runtime: Arc::new(runtime),
        cron,
    })
}

/// How scheduled jobs reach their agent.
#[async_trait::async_trait]
impl CronHost for AgentRuntime {
    async fn fire(&self, message: InboundMessage) -> Result<(), HostError> {
        self.route(message).await?;
        Ok(())
    }

    async fn close(&self, conversation: &ConversationId) {
        self.close_conversation(conversation).await;
    }

    async fn announce(&self, target: &ConversationId, text: &str) -> Result<(), HostError> {
        Ok(AgentRuntime::announce(self, target, text).await?)
    }

    fn reaches(&self, target: &ConversationId) -> bool {
        AgentRuntime::reaches(self, target)
    }
}

/// Creates (or tightens) one of the daemon's directories: its user's alone.
async fn create_dir(path: &Path) -> Result<(), DaemonError> {
    crate::filesystem::private_directory(path).map_err(|source| DaemonError::Home {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the embedded default config on first run; an existing file is never touched.
async fn write_default_config(path: &Path) -> Result<(), DaemonError> {
    let exists = tokio::fs::try_exists(path)
        .await
        .map_err(|source| DaemonError::Home {
            path: path.to_path_buf(),
            source,
        })?;
    let written = if exists {
        crate::filesystem::private_file(path)
    } else {
        tracing::info!(path = %path.display(), "writing the default config");
        crate::filesystem::write_private_file(path, DEFAULT_CONFIG.as_bytes())
    };
    written.map_err(|source| DaemonError::Home {
        path: path.to_path_buf(),
        source,
    })
}

fn start_api(
    state: &Arc<DaemonState>,
    router: ApiRouter,
    tasks: &TaskTracker,
) -> Result<SocketAddr, DaemonError> {
    let requested = SocketAddr::new(state.config.api.bind, state.config.api.port);
    let bind_error = |source| DaemonError::Bind {
        address: requested,
        source,
    };
    let listener = std::net::TcpListener::bind(requested).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let address = listener.local_addr().map_err(bind_error)?;
    let router = router(state.clone());
    let shutdown = state.shutdown.clone();
    supervise(
        tasks,
        "api",
        state.shutdown.clone(),
        RestartPolicy::from(Duration::from_secs(1)),
        move || {
            let router = router.clone();
            let shutdown = shutdown.clone();
            let listener = listener.try_clone();
            async move {
                let listener = tokio::net::TcpListener::from_std(listener?)?;
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await?;
                Ok(())
            }
        },
    );
    Ok(address)
}
