//! The settings of what agents use beyond chat: `[web]` (fetch and search), `[media]`
//! (files in and out), `[[mcp_servers]]` and `[agent_messages]`.

use std::collections::BTreeMap;

/// `[agent_messages]`: loop protection for agents messaging each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentMessagesConfig {
    /// A message sent while answering another agent's message is one level deeper; beyond
    /// this depth sending is refused.
    pub max_depth: u32,
    /// Messages one agent may send another per minute.
    pub per_minute: u32,
}

impl Default for AgentMessagesConfig {
    fn default() -> Self {
        Self {
            max_depth: 3,
            per_minute: 10,
        }
    }
}

/// `[web]`: the limits of `web_fetch`, the hosts it may reach although they resolve to
/// private addresses, and the `web_search` backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    /// Host names (or literal addresses) fetched even though they resolve to loopback,
    /// private, link-local or other internal addresses. Lowercase.
    pub allow_hosts: Vec<String>,
    /// The whole fetch (every redirect and the body) ends after this long.
    pub fetch_timeout_secs: u64,
    /// Bytes of a response body read at most.
    pub max_fetch_bytes: u64,
    /// How long a fetched page or a search's results are reused.
    pub cache_secs: u64,
    /// `None`: no `web_search` tool.
    pub search: Option<SearchConfig>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            allow_hosts: Vec::new(),
            fetch_timeout_secs: 20,
            max_fetch_bytes: 2 << 20,
            cache_secs: 600,
            search: None,
        }
    }
}

/// `[web.search]`: the backend `web_search` asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchConfig {
    pub backend: SearchBackend,
    /// The instance (SearXNG) or API base (Brave, Tavily), without a trailing `/`.
    pub url: String,
    /// The resolved key (Brave, Tavily).
    pub api_key: Option<String>,
}

/// `[web.search] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchBackend {
    Searxng,
    Brave,
    Tavily,
}

impl SearchBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchBackend::Searxng => "searxng",
            SearchBackend::Brave => "brave",
            SearchBackend::Tavily => "tavily",
        }
    }
}

/// Files people send and the agent sends (`[media]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// The largest file received or sent, in bytes (`max_file_mb`); a larger one is refused
    /// with a reply saying so.
    pub max_file_bytes: u64,
    /// Images whose longer side is larger are scaled down to it before a model sees them.
    pub image_max_side: u32,
    /// How much of a document's text is put into the turn, in characters; the whole file
    /// stays readable through `file_read`.
    pub document_chars: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 20 << 20,
            image_max_side: 1568,
            document_chars: 8000,
        }
    }
}

/// How long an MCP tool call may take unless its server's `timeout_secs` says otherwise.
pub const DEFAULT_MCP_TIMEOUT_SECS: u64 = 60;

/// One `[[mcp_servers]]` entry: a Model Context Protocol server whose tools are offered to
/// the workers (and, when they only read, the branches) of the agents it is enabled for.
#[derive(Debug, Clone, PartialEq)]
pub struct McpServerConfig {
    /// `[a-z0-9_-]`, at most 32 characters, no `__` and no `_` at the end, unique: tools are
    /// named `{name}__{tool}`, so two servers' tools never clash.
    pub name: String,
    pub transport: McpTransport,
    /// The agents that get its tools; empty: every agent.
    pub agents: Vec<String>,
    /// How long one tool call may take, in seconds.
    pub timeout_secs: u64,
    /// Values that came from `env:` (and every header value): secrets, for redaction.
    pub secret_values: Vec<String>,
}

impl McpServerConfig {
    /// Whether `agent` gets this server's tools.
    pub fn serves(&self, agent: &str) -> bool {
        self.agents.is_empty() || self.agents.iter().any(|name| name == agent)
    }

    pub(super) fn secrets(&self) -> impl Iterator<Item = &str> {
        self.secret_values.iter().map(String::as_str)
    }
}

/// How the daemon talks to an MCP server.
#[derive(Debug, Clone, PartialEq)]
pub enum McpTransport {
    /// A child process speaking JSON-RPC on its stdin and stdout. It gets only `env` (and
    /// `PATH`), not the daemon's environment.
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
    },
    /// Streamable HTTP at `url`, with these headers on every request.
    Http {
        url: String,
        headers: BTreeMap<String, String>,
    },
}
