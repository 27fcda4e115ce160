//! The MCP client: `McpManager` runs every `[[mcp_servers]]` entry of the daemon in the
//! background through the official SDK (`rmcp`), over stdio or streamable HTTP. Each server
//! is supervised by its own task (`server.rs`): started without the daemon waiting on it,
//! restarted with backoff when it fails or dies, its tool list kept and refreshed on
//! `notifications/tools/list_changed`. `McpTools` is one agent's view: the tools of the
//! servers enabled for it, named `{server}__{tool}` (`names.rs`), and their calls, with a
//! timeout, turned into bounded text (`content.rs`).

mod content;
mod names;
mod server;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::McpServerConfig;
pub use content::RESULT_CAP;
use server::Server;
pub use server::{McpServerStatus, ServerState};

/// How long the daemon waits for its servers to stop at shutdown.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("there is no MCP tool named `{0}`")]
    UnknownTool(String),
    #[error(
        "the MCP server `{server}` is not connected ({state}{}); its tools work again once \
         it is back",
        last_error.as_ref().map(|error| format!(": {error}")).unwrap_or_default()
    )]
    Unavailable {
        server: String,
        state: ServerState,
        last_error: Option<String>,
    },
    #[error("the arguments must be a JSON object, got {0}")]
    InvalidArguments(String),
    #[error("`{tool}` of the MCP server `{server}` did not answer within {secs}s")]
    Timeout {
        server: String,
        tool: String,
        secs: u64,
    },
    #[error("`{tool}` of the MCP server `{server}` failed: {message}")]
    Call {
        server: String,
        tool: String,
        message: String,
    },
}

/// One tool of an MCP server, as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct McpTool {
    /// `{server}__{tool}`, sanitised to what providers accept (`[A-Za-z0-9_-]`, 64 at most).
    pub name: String,
    pub server: String,
    /// The name the server knows it by.
    pub remote_name: String,
    /// The server's description, capped.
    pub description: String,
    /// Its JSON schema (an object schema).
    pub parameters: Value,
    /// The server says it only reads (`annotations.readOnlyHint`): branches may use it and
    /// it does not count as acting.
    pub read_only: bool,
}

/// What a tool call gave back, as text for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpOutput {
    pub text: String,
    /// The server marked the result as an error (`isError`).
    pub is_error: bool,
}

/// Every MCP server of the daemon, each supervised by its own task.
pub struct McpManager {
    /// The servers in force, in configuration order; replaced by `reconfigure`.
    servers: RwLock<Vec<Running>>,
    /// Counts changes of any server's tool list (and of the servers themselves), so views
    /// can cache what they built.
    generation: Arc<AtomicU64>,
    tasks: TaskTracker,
    stop: CancellationToken,
}

/// One configured server and what stops its task alone.
struct Running {
    server: Arc<Server>,
    stop: CancellationToken,
}

impl McpManager {
    /// Starts a task per server and returns at once: the daemon never waits on a server.
    pub fn start(configs: &[McpServerConfig]) -> Arc<Self> {
        let manager = Arc::new(Self {
            servers: RwLock::new(Vec::new()),
            generation: Arc::new(AtomicU64::new(0)),
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
        });
        manager.reconfigure(configs);
        manager.tasks.close();
        manager
    }

    /// A manager with no server (tests, tools built without a daemon).
    pub fn none() -> Arc<Self> {
        Self::start(&[])
    }

    /// Makes `configs` the servers in force (a reload): a server whose entry is unchanged
    /// keeps running, one removed or changed is stopped, a new or changed one is started.
    /// The agents' views see the new list at their next request.
    pub fn reconfigure(&self, configs: &[McpServerConfig]) {
        let mut servers = match self.servers.write() {
            Ok(servers) => servers,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut previous = std::mem::take(&mut *servers);
        for config in configs {
            let kept = previous
                .iter()
                .position(|running| running.server.config == *config)
                .map(|index| previous.remove(index));
            let running = kept.unwrap_or_else(|| {
                tracing::info!(server = %config.name, "starting the MCP server");
                let running = Running {
                    server: Arc::new(Server::new(config.clone())),
                    stop: self.stop.child_token(),
                };
                self.tasks.spawn(server::supervise(
                    running.server.clone(),
                    self.generation.clone(),
                    running.stop.clone(),
                ));
                running
            });
            servers.push(running);
        }
        for gone in previous {
            tracing::info!(server = %gone.server.config.name, "stopping the MCP server");
            gone.stop.cancel();
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The servers in force.
    fn servers(&self) -> Vec<Arc<Server>> {
        let servers = match self.servers.read() {
            Ok(servers) => servers,
            Err(poisoned) => poisoned.into_inner(),
        };
        servers
            .iter()
            .map(|running| running.server.clone())
            .collect()
    }

    /// The view of one agent: the servers enabled for it, as configured at each use.
    pub fn for_agent(self: &Arc<Self>, agent: &str) -> McpTools {
        McpTools {
            manager: self.clone(),
            agent: agent.to_string(),
        }
    }

    /// Each server's state, for the status.
    pub fn statuses(&self) -> Vec<McpServerStatus> {
        self.servers()
            .iter()
            .map(|server| server.status())
            .collect()
    }

    /// Stops every server (a child process gets its stdin closed, then a signal).
    pub async fn shutdown(&self) {
        self.stop.cancel();
        if tokio::time::timeout(SHUTDOWN_WAIT, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("MCP servers did not stop within the grace period");
        }
    }
}

/// One agent's MCP tools: the servers in force that are enabled for it.
#[derive(Clone)]
pub struct McpTools {
    manager: Arc<McpManager>,
    agent: String,
}

impl McpTools {
    fn servers(&self) -> Vec<Arc<Server>> {
        let mut servers = self.manager.servers();
        servers.retain(|server| server.config.serves(&self.agent));
        servers
    }

    /// The names of the servers enabled for the agent, in configuration order.
    pub fn server_names(&self) -> Vec<String> {
        self.servers()
            .iter()
            .map(|server| server.config.name.clone())
            .collect()
    }

    /// Changes whenever a tool list or the servers change; what was built from `tools`
    /// stays valid until.
    pub fn generation(&self) -> u64 {
        self.manager.generation.load(Ordering::Acquire)
    }

    /// The tools of the agent's servers, in configuration order. A server that is being
    /// restarted keeps the tools it last listed (calls say it is not connected).
    pub fn tools(&self) -> Vec<McpTool> {
        self.servers()
            .iter()
            .flat_map(|server| server.tools().iter().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Calls the tool the model named `name` with `arguments` (an object), within the
    /// server's timeout.
    pub async fn call(&self, name: &str, arguments: Value) -> Result<McpOutput, McpError> {
        let servers = self.servers();
        let (server, tool) = servers
            .iter()
            .find_map(|server| {
                let tool = server
                    .tools()
                    .iter()
                    .find(|tool| tool.name == name)
                    .cloned();
                tool.map(|tool| (server, tool))
            })
            .ok_or_else(|| McpError::UnknownTool(name.to_string()))?;
        let arguments = match arguments {
            Value::Object(map) => map,
            Value::Null => serde_json::Map::new(),
            Value::String(text) => match serde_json::from_str(&text) {
                Ok(Value::Object(map)) => map,
                _ => return Err(McpError::InvalidArguments(content::preview(&text))),
            },
            other => return Err(McpError::InvalidArguments(other.to_string())),
        };
        server.call(&tool, arguments).await
    }
}
