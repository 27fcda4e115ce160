//! One MCP server and the task that keeps it connected: connect (spawn the command or open
//! the HTTP session), initialize, list the tools, then wait for the connection to end, a
//! `tools/list_changed` notification (list again) or the daemon to stop. A server that
//! fails to start, dies or breaks a call is restarted with backoff; its last tool list stays
//! offered meanwhile, and its calls say it is not connected.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::FutureExt;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, JsonObject,
};
use rmcp::service::{NotificationContext, Peer, QuitReason, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ServiceError, ServiceExt};
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{McpError, McpOutput, McpTool, content, names};
use crate::config::{McpServerConfig, McpTransport};
use crate::supervision::Backoff;

/// How long connecting and initializing may take.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long listing the tools may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// The first wait before a restart; it doubles up to `LONGEST_RESTART_WAIT`.
const FIRST_RESTART_WAIT: Duration = Duration::from_millis(500);
const LONGEST_RESTART_WAIT: Duration = Duration::from_secs(60);
/// A connection that stayed up this long restarts from the first wait again.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// Largest JSON response accepted over HTTP.
const LARGEST_HTTP_RESPONSE: usize = 4 * 1024 * 1024;
/// Longest line of a server's stderr that is logged.
const LONGEST_STDERR_LINE: usize = 500;
/// What a stdio server gets of the daemon's environment, besides its `env`.
const PASSED_VARIABLES: [&str; 3] = ["PATH", "HOME", "LANG"];

/// Where a server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerState {
    /// Connecting, initializing or listing its tools.
    Starting,
    /// Connected: its tools can be called.
    Running,
    /// It failed or died; waiting before the next start.
    Restarting,
    /// The daemon is stopping.
    Stopped,
}

impl std::fmt::Display for ServerState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            ServerState::Starting => "starting",
            ServerState::Running => "running",
            ServerState::Restarting => "restarting",
            ServerState::Stopped => "stopped",
        })
    }
}

/// A server as `spacebot status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct McpServerStatus {
    pub name: String,
    /// `stdio` or `http`.
    pub transport: &'static str,
    pub state: ServerState,
    /// The model-facing names of its tools.
    pub tools: Vec<String>,
    /// Tools it offers that are left out, with why.
    pub skipped_tools: Vec<String>,
    /// Times it was started again after failing or dying.
    pub restarts: u32,
    pub last_error: Option<String>,
    /// The agents that get its tools; empty: every agent.
    pub agents: Vec<String>,
}

struct Live {
    state: ServerState,
    peer: Option<Peer<RoleClient>>,
    tools: Arc<[McpTool]>,
    skipped: Vec<String>,
    restarts: u32,
    last_error: Option<String>,
}

pub(super) struct Server {
    pub(super) config: McpServerConfig,
    live: RwLock<Live>,
    /// A call found the connection broken: the session ends and the server restarts.
    broken: Notify,
}

impl Server {
    pub(super) fn new(config: McpServerConfig) -> Self {
        Self {
            config,
            live: RwLock::new(Live {
                state: ServerState::Starting,
                peer: None,
                tools: Arc::from(Vec::new()),
                skipped: Vec::new(),
                restarts: 0,
                last_error: None,
            }),
            broken: Notify::new(),
        }
    }

    fn update<T>(&self, change: impl FnOnce(&mut Live) -> T) -> T {
        match self.live.write() {
            Ok(mut live) => change(&mut live),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        }
    }

    fn read<T>(&self, look: impl FnOnce(&Live) -> T) -> T {
        match self.live.read() {
            Ok(live) => look(&live),
            Err(poisoned) => look(&poisoned.into_inner()),
        }
    }

    pub(super) fn tools(&self) -> Arc<[McpTool]> {
        self.read(|live| live.tools.clone())
    }

    pub(super) fn status(&self) -> McpServerStatus {
        self.read(|live| McpServerStatus {
            name: self.config.name.clone(),
            transport: match self.config.transport {
                McpTransport::Stdio { .. } => "stdio",
                McpTransport::Http { .. } => "http",
            },
            state: live.state,
            tools: live.tools.iter().map(|tool| tool.name.clone()).collect(),
            skipped_tools: live.skipped.clone(),
            restarts: live.restarts,
            last_error: live.last_error.clone(),
            agents: self.config.agents.clone(),
        })
    }

    /// Takes a fresh tool list; says whether it differs from the one offered.
    fn set_tools(&self, listed: Vec<rmcp::model::Tool>) -> bool {
        let (tools, skipped) = names::tools(&self.config.name, listed);
        for reason in &skipped {
            tracing::warn!(server = %self.config.name, reason, "an MCP tool is left out");
        }
        self.update(|live| {
            let changed = *live.tools != *tools;
            live.tools = Arc::from(tools);
            live.skipped = skipped;
            changed
        })
    }

    /// Calls `tool` on the connected server within its timeout.
    pub(super) async fn call(
        &self,
        tool: &McpTool,
        arguments: JsonObject,
    ) -> Result<McpOutput, McpError> {
        let (peer, state, last_error) =
            self.read(|live| (live.peer.clone(), live.state, live.last_error.clone()));
        let Some(peer) = peer else {
            return Err(McpError::Unavailable {
                server: self.config.name.clone(),
                state,
                last_error,
            });
        };
        let secs = self.config.timeout_secs;
        let params = CallToolRequestParams::new(tool.remote_name.clone()).with_arguments(arguments);
        match tokio::time::timeout(Duration::from_secs(secs), peer.call_tool(params)).await {
            Err(_) => Err(McpError::Timeout {
                server: self.config.name.clone(),
                tool: tool.remote_name.clone(),
                secs,
            }),
            Ok(Ok(result)) => Ok(content::render(result)),
            Ok(Err(error)) => {
                if matches!(
                    error,
                    ServiceError::TransportSend(_) | ServiceError::TransportClosed
                ) {
                    // The connection is gone (an HTTP server that went away says so only
                    // here): restart it rather than fail every later call the same way.
                    self.broken.notify_one();
                }
                Err(McpError::Call {
                    server: self.config.name.clone(),
                    tool: tool.remote_name.clone(),
                    message: content::preview(&error.to_string()),
                })
            }
        }
    }
}

/// What the client does with what the server sends unasked: a changed tool list is listed
/// again.
struct Handler {
    tools_changed: Arc<Notify>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed.notify_one();
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("spacebot", env!("CARGO_PKG_VERSION")),
        )
    }
}

/// Keeps `server` connected until `stop`: restarts it with backoff whenever a session ends.
pub(super) async fn supervise(
    server: Arc<Server>,
    generation: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let span = tracing::info_span!("mcp_server", server = %server.config.name);
    async move {
        let mut backoff = Backoff::new(FIRST_RESTART_WAIT, LONGEST_RESTART_WAIT).with_jitter();
        loop {
            server.update(|live| live.state = ServerState::Starting);
            let started = Instant::now();
            let ended = session(&server, &generation, &stop).await;
            server.update(|live| live.peer = None);
            let reason = match ended {
                Ok(()) => break,
                Err(reason) => reason,
            };
            if stop.is_cancelled() {
                break;
            }
            if started.elapsed() >= HEALTHY_AFTER {
                backoff.reset();
            }
            let wait = backoff.next_wait();
            tracing::warn!(
                error = %reason,
                wait_ms = wait.as_millis() as u64,
                "the MCP server failed; restarting it"
            );
            server.update(|live| {
                live.state = ServerState::Restarting;
                live.last_error = Some(reason);
                live.restarts += 1;
            });
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => break,
            }
        }
        server.update(|live| live.state = ServerState::Stopped);
    }
    .instrument(span)
    .await
}

/// One connection, from start to end: `Ok` when the daemon stops, else why it ended.
async fn session(
    server: &Server,
    generation: &AtomicU64,
    stop: &CancellationToken,
) -> Result<(), String> {
    let tools_changed = Arc::new(Notify::new());
    let handler = Handler {
        tools_changed: tools_changed.clone(),
    };
    let running = tokio::select! {
        connected = tokio::time::timeout(START_TIMEOUT, connect(&server.config, handler)) => {
            match connected {
                Ok(Ok(running)) => running,
                Ok(Err(error)) => return Err(error),
                Err(_) => {
                    return Err(format!(
                        "it did not finish starting within {}s",
                        START_TIMEOUT.as_secs()
                    ));
                }
            }
        }
        () = stop.cancelled() => return Ok(()),
    };
    let peer = running.peer().clone();
    let mut closer = Some(running.cancellation_token());
    let mut ended = std::pin::pin!(running.waiting());
    let listed = tokio::select! {
        listed = tokio::time::timeout(LIST_TIMEOUT, peer.list_all_tools()) => listed,
        quit = &mut ended => return Err(quit_reason(quit)),
        () = stop.cancelled() => {
            close(&mut closer, ended).await;
            return Ok(());
        }
    };
    match listed {
        Ok(Ok(tools)) => {
            server.set_tools(tools);
            generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(Err(error)) => {
            close(&mut closer, ended).await;
            return Err(format!("cannot list its tools: {error}"));
        }
        Err(_) => {
            close(&mut closer, ended).await;
            return Err(format!(
                "it did not list its tools within {}s",
                LIST_TIMEOUT.as_secs()
            ));
        }
    }
    let count = server.tools().len();
    // A call that failed while the last session was ending left a wake-up that is not
    // about this one.
    let _ = server.broken.notified().now_or_never();
    server.update(|live| {
        live.peer = Some(peer.clone());
        live.state = ServerState::Running;
    });
    tracing::info!(tools = count, "the MCP server is connected");
    loop {
        tokio::select! {
            quit = &mut ended => return Err(quit_reason(quit)),
            () = tools_changed.notified() => {
                match tokio::time::timeout(LIST_TIMEOUT, peer.list_all_tools()).await {
                    Ok(Ok(tools)) => {
                        if server.set_tools(tools) {
                            generation.fetch_add(1, Ordering::AcqRel);
                        }
                        tracing::info!(tools = server.tools().len(), "the MCP server's tools changed");
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "cannot list the MCP server's changed tools");
                    }
                    Err(_) => tracing::warn!("the MCP server did not list its changed tools in time"),
                }
            }
            () = server.broken.notified() => {
                close(&mut closer, ended).await;
                return Err("a call found the connection broken".to_string());
            }
            () = stop.cancelled() => {
                close(&mut closer, ended).await;
                return Ok(());
            }
        }
    }
}

/// Ends a session: the service closes its transport (a child's stdin is closed, then it is
/// signalled and killed if it does not exit).
async fn close(
    closer: &mut Option<rmcp::service::RunningServiceCancellationToken>,
    ended: std::pin::Pin<
        &mut impl std::future::Future<Output = Result<QuitReason, tokio::task::JoinError>>,
    >,
) {
    if let Some(closer) = closer.take() {
        closer.cancel();
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), ended).await;
}

fn quit_reason(quit: Result<QuitReason, tokio::task::JoinError>) -> String {
    match quit {
        Ok(QuitReason::Closed) => {
            "the connection closed (the server exited or hung up)".to_string()
        }
        Ok(QuitReason::Cancelled) => "the connection was cancelled".to_string(),
        Ok(QuitReason::JoinError(error)) | Err(error) => {
            format!("the connection's task failed: {error}")
        }
        Ok(other) => format!("the connection ended: {other:?}"),
    }
}

/// Starts the server (stdio) or opens its session (HTTP) and initializes it.
async fn connect(
    config: &McpServerConfig,
    handler: Handler,
) -> Result<RunningService<RoleClient, Handler>, String> {
    match &config.transport {
        McpTransport::Stdio { command, args, env } => {
            let mut process = tokio::process::Command::new(command);
            process.args(args).env_clear();
            for variable in PASSED_VARIABLES {
                if let Some(value) = std::env::var_os(variable) {
                    process.env(variable, value);
                }
            }
            process.envs(env).kill_on_drop(true);
            let (transport, stderr) = TokioChildProcess::builder(process)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|error| format!("cannot run `{command}`: {error}"))?;
            if let Some(stderr) = stderr {
                tokio::spawn(log_stderr(stderr).in_current_span());
            }
            handler
                .serve(transport)
                .await
                .map_err(|error| format!("it did not initialize: {error}"))
        }
        McpTransport::Http { url, headers } => {
            let mut custom = HashMap::new();
            for (name, value) in headers {
                let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|error| format!("header `{name}`: {error}"))?;
                let value = reqwest::header::HeaderValue::from_str(value)
                    .map_err(|error| format!("header `{name}`: {error}"))?;
                custom.insert(name, value);
            }
            let client = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()
                .map_err(|error| format!("cannot build an HTTP client: {error}"))?;
            let transport = StreamableHttpClientTransport::with_client(
                client,
                StreamableHttpClientTransportConfig::with_uri(url.as_str())
                    .custom_headers(custom)
                    .max_json_response_size(LARGEST_HTTP_RESPONSE),
            );
            handler
                .serve(transport)
                .await
                .map_err(|error| format!("it did not initialize: {error}"))
        }
    }
}

/// Logs what a stdio server writes on stderr, a capped line at a time, until it closes.
async fn log_stderr(mut stderr: tokio::process::ChildStderr) {
    let mut buffer = vec![0u8; 4096];
    let mut line = Vec::new();
    loop {
        let read = match stderr.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        for byte in &buffer[..read] {
            if *byte == b'\n' {
                log_line(&line);
                line.clear();
            } else if line.len() < LONGEST_STDERR_LINE {
                line.push(*byte);
            }
        }
    }
    if !line.is_empty() {
        log_line(&line);
    }
}

fn log_line(line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    tracing::info!(stderr = %text.trim_end(), "MCP server stderr");
}
