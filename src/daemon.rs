//! The daemon: builds every agent and long-lived task from the config, supervises them
//! (restart with backoff), and owns the ordered, graceful shutdown.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::agent::cortex::CortexState;
use crate::agent::{AgentContext, AgentRuntime, identity};
use crate::config::{Config, ConfigError, DEFAULT_CONFIG};
use crate::conversation::ConversationStore;
use crate::cron::{CronService, CronStore};
use crate::event::EventBus;
use crate::llm::{LlmManager, SETUP_HINT, UsageRecorder};
use crate::memory::{Embedder, MemoryStore};
use crate::messaging::MessagingManager;
use crate::messaging::bindings::Bindings;
use crate::prompts::Prompts;
use crate::sandbox::{Redactor, Workspace};
use crate::tools::ToolSet;

/// Capacity of each agent's event bus; slower subscribers skip events.
const EVENT_BUS_CAPACITY: usize = 1024;

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
    Provider(#[from] crate::llm::provider::ProviderBuildError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
    #[error(transparent)]
    Messaging(#[from] crate::messaging::MessagingError),
    #[error("cannot start the cron jobs of agent `{agent}`: {source}")]
    Cron {
        agent: String,
        source: crate::cron::CronError,
    },
    #[error("agent `{agent_id}`: {source}")]
    Memory {
        agent_id: String,
        source: crate::memory::MemoryError,
    },
}

/// Looks up an environment variable. Tests pass their own instead of mutating the process's.
pub type Environment = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub fn process_environment() -> Environment {
    Arc::new(|name: &str| std::env::var(name).ok())
}

pub struct DaemonOptions {
    /// `$SPACEBOT_HOME`: config, agent databases, workspaces.
    pub home: PathBuf,
    /// An explicit config file; by default `{home}/config.toml`, written on first run.
    pub config_path: Option<PathBuf>,
    pub bind: Option<IpAddr>,
    pub port: Option<u16>,
    pub environment: Environment,
}

/// `$SPACEBOT_HOME`, else `~/.spacebot`.
pub fn default_home(environment: &Environment) -> PathBuf {
    if let Some(home) = environment("SPACEBOT_HOME").filter(|value| !value.is_empty()) {
        return PathBuf::from(home);
    }
    let user_home = environment("HOME").unwrap_or_else(|| ".".to_string());
    Path::new(&user_home).join(".spacebot")
}

/// State shared by the HTTP API and the daemon.
pub struct DaemonState {
    pub config: Config,
    pub home: PathBuf,
    pub agents: BTreeMap<String, Arc<AgentRuntime>>,
    pub llm: Arc<LlmManager>,
    pub messaging: Arc<MessagingManager>,
    /// Shared by every agent's memory store; reports whether recall is hybrid.
    pub embedder: Arc<Embedder>,
    pub started_at: Instant,
    pub shutdown: CancellationToken,
}

impl DaemonState {
    pub fn default_agent(&self) -> Option<&Arc<AgentRuntime>> {
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
        tracing::info!(config = %config_path.display(), home = %home.display(), "starting");

        let prompts = Arc::new(Prompts::new()?);
        let llm = Arc::new(LlmManager::new(&config)?);
        if llm.is_configured() {
            for provider in llm.provider_statuses() {
                tracing::info!(provider = %provider.name, kind = provider.kind, base_url = ?provider.base_url, "LLM provider");
            }
        } else {
            tracing::warn!("{SETUP_HINT}");
        }
        let channel_tools = Arc::new(ToolSet::channel(&prompts));
        let redactor = Redactor::new(config.secrets());
        let messaging = Arc::new(MessagingManager::from_config(&config.messaging)?);
        let embedder = Arc::new(Embedder::from_config(
            &config.memory,
            &config.llm.providers,
            &home,
        ));
        let agents_root = home.join("agents");
        let mut agents = BTreeMap::new();
        for agent_config in &config.agents {
            let agent_home = crate::agent::prepare_home(&agents_root, agent_config, &prompts)
                .await
                .map_err(|source| DaemonError::Home {
                    path: agents_root.join(&agent_config.id),
                    source,
                })?;
            let pool = crate::database::open(&agent_home.join("spacebot.db")).await?;
            let workspace = Workspace::new(&agent_home.join("workspace")).map_err(|source| {
                DaemonError::Home {
                    path: agent_home.join("workspace"),
                    source,
                }
            })?;
            let cron = CronService::new(
                &agent_config.id,
                CronStore::new(pool.clone()),
                agent_config.cron_settings.clone(),
                agent_config.timezone,
            );
            let events = EventBus::new(EVENT_BUS_CAPACITY);
            let memory = MemoryStore::open(
                agent_config.id.clone(),
                pool.clone(),
                embedder.clone(),
                events.clone(),
            )
            .await
            .map_err(|source| DaemonError::Memory {
                agent_id: agent_config.id.clone(),
                source,
            })?;
            let context = AgentContext {
                agent_id: agent_config.id.clone(),
                config: agent_config.clone(),
                identity: identity::load(&agent_home).await,
                home: agent_home,
                store: ConversationStore::new(pool.clone()),
                usage: UsageRecorder::new(pool.clone()),
                pool,
                events,
                llm: llm.clone(),
                prompts: prompts.clone(),
                channel_tools: channel_tools.clone(),
                memory: Arc::new(memory),
                messaging: messaging.clone(),
                inbox_capacity: config.defaults.channel_inbox,
                workspace: Arc::new(workspace),
                redactor: redactor.clone(),
                processes: Default::default(),
                cron: Arc::new(cron),
                cortex: Arc::new(CortexState::new(agent_config.cortex.clone())),
                tasks: TaskTracker::new(),
                closing: CancellationToken::new(),
                abort: CancellationToken::new(),
            };
            agents.insert(
                agent_config.id.clone(),
                Arc::new(AgentRuntime::new(context)),
            );
        }

        let state = Arc::new(DaemonState {
            config,
            home,
            agents,
            llm,
            messaging,
            embedder,
            started_at: started,
            shutdown: CancellationToken::new(),
        });
        let tasks = TaskTracker::new();
        let api_address = if state.config.api.enabled {
            Some(start_api(&state, &tasks)?)
        } else {
            None
        };
        for agent in state.agents.values() {
            agent.start_cortex();
            // Before pending messages are answered, so an interrupted cron firing is closed
            // instead of run again.
            let context = agent.context();
            context
                .cron
                .start(agent, &context.config.cron)
                .await
                .map_err(|source| DaemonError::Cron {
                    agent: agent.id().to_string(),
                    source,
                })?;
            let memory = agent.context().memory.clone();
            agent.context().cortex.add_maintenance(
                "memory",
                Arc::new(move || {
                    let memory = memory.clone();
                    Box::pin(async move {
                        memory
                            .maintain(crate::database::now_millis())
                            .await
                            .map(|report| format!("{report:?}"))
                            .map_err(|error| error.to_string())
                    })
                }),
            );
            agent.resume_pending().await?;
        }
        state.messaging.start(Bindings::new(
            state.agents.clone(),
            state.config.bindings.clone(),
            state.config.default_agent().id.clone(),
        ));
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
        for agent in self.state.agents.values() {
            if let Err(error) = agent.context().memory.flush_accesses().await {
                tracing::warn!(agent_id = %agent.id(), %error, "recall access counts not saved");
            }
        }
        let agents = self
            .state
            .agents
            .values()
            .map(|agent| agent.shutdown(grace));
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

async fn create_dir(path: &Path) -> Result<(), DaemonError> {
    tokio::fs::create_dir_all(path)
        .await
        .map_err(|source| DaemonError::Home {
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
    if !exists {
        tokio::fs::write(path, DEFAULT_CONFIG)
            .await
            .map_err(|source| DaemonError::Home {
                path: path.to_path_buf(),
                source,
            })?;
        tracing::info!(path = %path.display(), "wrote the default config");
    }
    Ok(())
}

fn start_api(state: &Arc<DaemonState>, tasks: &TaskTracker) -> Result<SocketAddr, DaemonError> {
    let requested = SocketAddr::new(state.config.api.bind, state.config.api.port);
    let bind_error = |source| DaemonError::Bind {
        address: requested,
        source,
    };
    let listener = std::net::TcpListener::bind(requested).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let address = listener.local_addr().map_err(bind_error)?;
    let router = crate::api::router(state.clone());
    let shutdown = state.shutdown.clone();
    supervise(
        tasks,
        "api",
        state.shutdown.clone(),
        Duration::from_secs(1),
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

pub type TaskError = Box<dyn std::error::Error + Send + Sync>;

/// Runs a long-lived task, restarting it with exponential backoff (capped at a minute) when
/// it fails, panics or ends before shutdown. The backoff resets after a minute of good health.
pub fn supervise<Factory, Run>(
    tasks: &TaskTracker,
    name: &'static str,
    shutdown: CancellationToken,
    initial_backoff: Duration,
    mut factory: Factory,
) where
    Factory: FnMut() -> Run + Send + 'static,
    Run: Future<Output = Result<(), TaskError>> + Send + 'static,
{
    const MAXIMUM_BACKOFF: Duration = Duration::from_secs(60);
    let task_tracker = tasks.clone();
    tasks.spawn(async move {
        let mut backoff = initial_backoff;
        loop {
            let started = Instant::now();
            let outcome = task_tracker.spawn(factory()).await;
            if shutdown.is_cancelled() {
                return;
            }
            match outcome {
                Ok(Ok(())) => tracing::warn!(task = name, "task ended unexpectedly; restarting"),
                Ok(Err(error)) => tracing::error!(task = name, %error, "task failed; restarting"),
                Err(error) => tracing::error!(task = name, %error, "task crashed; restarting"),
            }
            if started.elapsed() > MAXIMUM_BACKOFF {
                backoff = initial_backoff;
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(MAXIMUM_BACKOFF);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_failing_task_is_restarted_until_it_runs() {
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let stop = shutdown.clone();
        supervise(
            &tasks,
            "flaky",
            shutdown.clone(),
            Duration::from_millis(5),
            move || {
                let counter = counter.clone();
                let stop = stop.clone();
                async move {
                    match counter.fetch_add(1, Ordering::SeqCst) {
                        0 => Err("first run fails".into()),
                        1 => panic!("second run panics"),
                        _ => {
                            stop.cancelled().await;
                            Ok(())
                        }
                    }
                }
            },
        );
        tokio::time::timeout(Duration::from_secs(5), async {
            while runs.load(Ordering::SeqCst) < 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the task was restarted twice");
        shutdown.cancel();
        tasks.close();
        tokio::time::timeout(Duration::from_secs(5), tasks.wait())
            .await
            .expect("supervisor stops on shutdown");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
