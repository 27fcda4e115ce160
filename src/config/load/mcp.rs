//! Resolving `[[mcp_servers]]`: a name, then a command (stdio) or a URL (streamable HTTP),
//! the agents that get the server's tools, and its call timeout.

use std::collections::BTreeMap;

use toml::Spanned;

use super::Resolver;
use super::raw::RawMcpServer;
use crate::config::{
    AgentConfig, ConfigError, DEFAULT_MCP_TIMEOUT_SECS, McpServerConfig, McpTransport,
};

/// Longest server name: it prefixes every tool name, which providers cap at 64 characters.
const LONGEST_NAME: usize = 32;
/// Longest call timeout: an hour.
const LONGEST_TIMEOUT_SECS: u64 = 3600;

impl Resolver<'_> {
    pub(super) fn mcp_servers(
        &self,
        raw: &[RawMcpServer],
        agents: &[AgentConfig],
    ) -> Result<Vec<McpServerConfig>, ConfigError> {
        let mut servers: Vec<McpServerConfig> = Vec::with_capacity(raw.len());
        for (index, server) in raw.iter().enumerate() {
            let key = |name: &str| format!("mcp_servers[{index}].{name}");
            let name = server.name.get_ref();
            if let Err(reason) = check_name(name) {
                return Err(self.error(Some(server.name.span()), &key("name"), reason));
            }
            if servers.iter().any(|known| known.name == *name) {
                let message = format!("a server named `{name}` is already configured");
                return Err(self.error(Some(server.name.span()), &key("name"), message));
            }
            let mut secret_values = Vec::new();
            let transport = match (&server.command, &server.url) {
                (Some(command), None) => {
                    if let Some(headers) = &server.headers {
                        return Err(self.error(
                            Some(headers.span()),
                            &key("headers"),
                            "headers are for a server reached by `url`; a `command` server \
                             takes `env`",
                        ));
                    }
                    if command.get_ref().trim().is_empty() {
                        return Err(self.error(
                            Some(command.span()),
                            &key("command"),
                            "the command is empty",
                        ));
                    }
                    let mut env = BTreeMap::new();
                    for (variable, value) in server.env.iter().flat_map(|env| env.get_ref()) {
                        let env_key = format!("{}.{variable}", key("env"));
                        if variable.is_empty() || variable.contains(['=', '\0']) {
                            return Err(self.error(
                                Some(value.span()),
                                &env_key,
                                "not a valid environment variable name",
                            ));
                        }
                        let resolved = self.secret(value, &env_key)?;
                        if value.get_ref().starts_with("env:") {
                            secret_values.push(resolved.clone());
                        }
                        env.insert(variable.clone(), resolved);
                    }
                    McpTransport::Stdio {
                        command: command.get_ref().clone(),
                        args: server
                            .args
                            .as_ref()
                            .map(|args| args.get_ref().clone())
                            .unwrap_or_default(),
                        env,
                    }
                }
                (None, Some(url)) => {
                    for (option, span) in [
                        ("args", server.args.as_ref().map(Spanned::span)),
                        ("env", server.env.as_ref().map(Spanned::span)),
                    ] {
                        if let Some(span) = span {
                            let message = format!(
                                "`{option}` is for a server started by `command`; a `url` \
                                 server takes `headers`"
                            );
                            return Err(self.error(Some(span), &key(option), message));
                        }
                    }
                    let parsed = url::Url::parse(url.get_ref()).map_err(|error| {
                        self.error(
                            Some(url.span()),
                            &key("url"),
                            format!("invalid URL: {error}"),
                        )
                    })?;
                    if !matches!(parsed.scheme(), "http" | "https") {
                        return Err(self.error(
                            Some(url.span()),
                            &key("url"),
                            "the URL must start with http:// or https://",
                        ));
                    }
                    let mut headers = BTreeMap::new();
                    for (header, value) in
                        server.headers.iter().flat_map(|headers| headers.get_ref())
                    {
                        let header_key = format!("{}.{header}", key("headers"));
                        if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                            return Err(self.error(
                                Some(value.span()),
                                &header_key,
                                "not a valid HTTP header name",
                            ));
                        }
                        let resolved = self.secret(value, &header_key)?;
                        if reqwest::header::HeaderValue::from_str(&resolved).is_err() {
                            return Err(self.error(
                                Some(value.span()),
                                &header_key,
                                "not a valid HTTP header value (control characters or \
                                 non-ASCII text)",
                            ));
                        }
                        secret_values.push(resolved.clone());
                        headers.insert(header.clone(), resolved);
                    }
                    McpTransport::Http {
                        url: url.get_ref().clone(),
                        headers,
                    }
                }
                (Some(command), Some(_)) => {
                    return Err(self.error(
                        Some(command.span()),
                        &key("command"),
                        "give either `command` (a server over stdio) or `url` (a server over \
                         streamable HTTP), not both",
                    ));
                }
                (None, None) => {
                    return Err(self.error(
                        Some(server.name.span()),
                        &key("command"),
                        "give `command` (a server over stdio) or `url` (a server over \
                         streamable HTTP)",
                    ));
                }
            };
            let mut enabled_for = Vec::new();
            for (position, agent) in server.agents.iter().flatten().enumerate() {
                if !agents.iter().any(|known| known.id == *agent.get_ref()) {
                    let known: Vec<&str> = agents.iter().map(|known| known.id.as_str()).collect();
                    let message = format!(
                        "unknown agent `{}`; configured agents: {}",
                        agent.get_ref(),
                        known.join(", ")
                    );
                    return Err(self.error(
                        Some(agent.span()),
                        &format!("{}[{position}]", key("agents")),
                        message,
                    ));
                }
                enabled_for.push(agent.get_ref().clone());
            }
            if server.agents.as_ref().is_some_and(Vec::is_empty) {
                return Err(self.error(
                    Some(server.name.span()),
                    &key("agents"),
                    "the list is empty, so no agent would get the server's tools; remove \
                     `agents` to enable it for every agent",
                ));
            }
            let timeout_secs = match &server.timeout_secs {
                None => DEFAULT_MCP_TIMEOUT_SECS,
                Some(value) if (1..=LONGEST_TIMEOUT_SECS).contains(value.get_ref()) => {
                    *value.get_ref()
                }
                Some(value) => {
                    return Err(self.error(
                        Some(value.span()),
                        &key("timeout_secs"),
                        format!("must be between 1 and {LONGEST_TIMEOUT_SECS}"),
                    ));
                }
            };
            servers.push(McpServerConfig {
                name: name.clone(),
                transport,
                agents: enabled_for,
                timeout_secs,
                secret_values,
            });
        }
        Ok(servers)
    }
}

/// Why `name` cannot name a server: it must be `[a-z0-9_-]`, 1 to 32 characters, without
/// `__` or a trailing `_`, so that the first `__` of a tool name `{server}__{tool}` always
/// ends the server's name.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > LONGEST_NAME {
        return Err(format!("must be 1 to {LONGEST_NAME} characters"));
    }
    if !name
        .chars()
        .all(|character| matches!(character, 'a'..='z' | '0'..='9' | '_' | '-'))
    {
        return Err(
            "may contain only lowercase letters, digits, `_` and `-` (it prefixes tool names)"
                .to_string(),
        );
    }
    if name.contains("__") || name.ends_with('_') {
        return Err(
            "must not contain `__` or end with `_`: tools are named `{server}__{tool}`".to_string(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, McpTransport};

    const AGENTS: &str =
        "[[agents]]\nid = \"main\"\ndefault = true\n\n[[agents]]\nid = \"helper\"\n";

    fn parse(servers: &str) -> Result<Config, ConfigError> {
        let text = format!("{AGENTS}\n{servers}");
        Config::parse(&text, "test.toml", &|name| {
            (name == "MCP_TOKEN").then(|| "Bearer from-the-environment".to_string())
        })
    }

    /// The line and key of the error `servers` gives, with its message.
    fn error(servers: &str) -> (usize, String, String) {
        match parse(servers) {
            Err(ConfigError::Invalid {
                line, key, message, ..
            }) => (line - AGENTS.lines().count() - 2, key, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn stdio_and_http_servers_resolve_with_their_secrets() {
        let config = parse(
            "[[mcp_servers]]\nname = \"files\"\ncommand = \"files-server\"\nargs = [\"--root\", \"/srv\"]\n\
             env = { LEVEL = \"debug\", TOKEN = \"env:MCP_TOKEN\" }\n\n\
             [[mcp_servers]]\nname = \"web-search\"\nurl = \"https://mcp.example.com/mcp\"\n\
             headers = { Authorization = \"env:MCP_TOKEN\" }\nagents = [\"helper\"]\ntimeout_secs = 5\n",
        )
        .expect("parses");
        let [files, web] = config.mcp_servers.as_slice() else {
            panic!("two servers");
        };
        let McpTransport::Stdio { command, args, env } = &files.transport else {
            panic!("stdio");
        };
        assert_eq!(command, "files-server");
        assert_eq!(args, &["--root", "/srv"]);
        assert_eq!(env["TOKEN"], "Bearer from-the-environment");
        assert!(files.serves("main") && files.serves("helper"));
        assert_eq!(files.timeout_secs, crate::config::DEFAULT_MCP_TIMEOUT_SECS);
        let McpTransport::Http { url, headers } = &web.transport else {
            panic!("http");
        };
        assert_eq!(url, "https://mcp.example.com/mcp");
        assert_eq!(headers["Authorization"], "Bearer from-the-environment");
        assert!(web.serves("helper") && !web.serves("main"));
        assert_eq!(web.timeout_secs, 5);
        // Secrets are redacted; a plain env value is not a secret.
        let secrets = config.secrets();
        assert!(secrets.contains(&"Bearer from-the-environment".to_string()));
        assert!(!secrets.contains(&"debug".to_string()));
    }

    #[test]
    fn mistakes_name_their_line_and_key() {
        let cases = [
            (
                "[[mcp_servers]]\nname = \"a__b\"\ncommand = \"x\"\n",
                1,
                "mcp_servers[0].name",
                "`__`",
            ),
            (
                "[[mcp_servers]]\nname = \"Files\"\ncommand = \"x\"\n",
                1,
                "mcp_servers[0].name",
                "lowercase",
            ),
            (
                "[[mcp_servers]]\nname = \"a\"\ncommand = \"x\"\n[[mcp_servers]]\nname = \"a\"\nurl = \"http://127.0.0.1:1/mcp\"\n",
                4,
                "mcp_servers[1].name",
                "already",
            ),
            (
                "[[mcp_servers]]\nname = \"a\"\n",
                1,
                "mcp_servers[0].command",
                "`url`",
            ),
            (
                "[[mcp_servers]]\nname = \"a\"\ncommand = \"x\"\nurl = \"http://127.0.0.1:1\"\n",
                2,
                "mcp_servers[0].command",
                "not both",
            ),
            (
                "[[mcp_servers]]\nname = \"a\"\nurl = \"ftp://example.com\"\n",
                2,
                "mcp_servers[0].url",
                "http://",
            ),
            (
                "[[mcp_servers]]\nname = \"a\"\nurl = \"http://127.0.0.1:1\"\nenv = { A = \"b\" }\n",
                3,
                "mcp_servers[0].env",
                "`command`",
            ),
            (
                "[[mcp_servers]]\nname = \"a\"\ncommand = \"x\"\nheaders = { A = \"b\" }\n",
                3,
                "mcp_servers[0].headers",
                "`url`",
            ),
            (
                "[[mcp_servers]]\nname = \"a\"\nurl = \"http://127.0.0.1:1\"\nheaders = { \"bad header\" = \"b\" }\n",
                3,
                "mcp_servers[0].headers.bad header",
                "header name",
            ),
            (
                "[[mcp_servers]]\nname = \"a\"\ncommand = \"x\"\nenv = { TOKEN = \"env:UNSET\" }\n",
                3,
                "mcp_servers[0].env.TOKEN",
                "`UNSET` is not set",
            ),
            (
                "[[mcp_servers]]\nname = \"a\"\ncommand = \"x\"\nagents = [\"main\", \"nobody\"]\n",
                3,
                "mcp_servers[0].agents[1]",
                "unknown agent `nobody`",
            ),
            (
                "[[mcp_servers]]\nname = \"a\"\ncommand = \"x\"\ntimeout_secs = 0\n",
                3,
                "mcp_servers[0].timeout_secs",
                "between 1",
            ),
            (
                "[[mcp_servers]]\nname = \"a\"\ncommand = \"x\"\nport = 1\n",
                3,
                "mcp_servers[0].port",
                "unknown field `port`",
            ),
        ];
        for (servers, line, key, needle) in cases {
            let (found_line, found_key, message) = error(servers);
            assert_eq!(
                (found_line, found_key.as_str()),
                (line, key),
                "{servers}: {message}"
            );
            assert!(message.contains(needle), "{servers}: {message}");
        }
    }
}
