//! Starts the real daemon in-process on a temporary `$SPACEBOT_HOME`, with its API on an
//! ephemeral 127.0.0.1 port, and talks to it over HTTP like any client.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use spacebot::daemon::{Daemon, DaemonOptions};

use crate::fake_llm::{FakeLlm, Scripted};

/// An `[access]` table: these owners, these allowed groups, and group messages read without
/// a mention (the fakes' messages do not mention the bot unless a test says so).
pub fn access(owners: &[&str], groups: &[&str]) -> String {
    format!("\n[access]\nowners = {owners:?}\ngroups = {groups:?}\nrequire_mention = false\n")
}

/// The model's answer through the `reply` tool.
pub fn reply(content: &str) -> Scripted {
    Scripted::tool_call("reply", json!({"content": content}))
}

/// `config_for` with these lines added to `[defaults]`.
pub fn with_defaults(llm: &FakeLlm, extra: &str) -> String {
    config_for(llm).replace(
        "shutdown_grace_secs = 2\n",
        &format!("shutdown_grace_secs = 2\n{extra}\n"),
    )
}

/// The LLM requests whose last user text contains `needle`.
pub fn requests_with(llm: &FakeLlm, needle: &str) -> Vec<Value> {
    llm.requests()
        .into_iter()
        .filter(|request| FakeLlm::last_user_text(request).contains(needle))
        .collect()
}

/// The terminal states of the main agent's worker runs, read from its database after the
/// daemon in `home` has stopped.
pub async fn worker_states(home: &Path) -> Vec<String> {
    let pool = open_database(&home.join("agents/main/spacebot.db")).await;
    sqlx::query_scalar("SELECT state FROM worker_runs")
        .fetch_all(&pool)
        .await
        .expect("query")
}

/// A config whose only provider is the fake LLM (OpenAI-compatible), with fast retries.
/// Memory has no embedding model (and never downloads one): recall is full-text only.
pub fn config_for(llm: &FakeLlm) -> String {
    config_with_memory(llm, "download_model = false")
}

/// A config whose only provider is the fake LLM's Anthropic side (`claude/fake-claude`).
pub fn anthropic_config_for(llm: &FakeLlm) -> String {
    config_for(llm)
        .replace(
            &format!(
                "kind = \"openai\"\nbase_url = \"{}\"",
                llm.openai_base_url()
            ),
            &format!(
                "kind = \"anthropic\"\nbase_url = \"{}\"",
                llm.anthropic_base_url()
            ),
        )
        .replace(
            "channel = \"fake/fake-model\"",
            "channel = \"fake/fake-claude\"",
        )
}

/// `config_for` with these lines as its `[memory]` table.
pub fn config_with_memory(llm: &FakeLlm, memory: &str) -> String {
    format!(
        r#"
[llm.providers.fake]
kind = "openai"
base_url = "{}"
api_key = "test-key"

[defaults]
shutdown_grace_secs = 2

[defaults.routing]
channel = "fake/fake-model"

[defaults.retry]
max_retries = 2
initial_backoff_ms = 10
max_backoff_ms = 40

[[agents]]
id = "main"
default = true

[memory]
{memory}
"#,
        llm.openai_base_url()
    )
}

pub struct TestDaemon {
    daemon: Option<Daemon>,
    pub base_url: String,
    pub http: reqwest::Client,
}

impl TestDaemon {
    /// Writes `config` to `{home}/config.toml` and starts the daemon on it.
    pub async fn start(home: &Path, config: &str) -> TestDaemon {
        Self::start_with_environment(home, config, HashMap::new()).await
    }

    pub async fn start_with_environment(
        home: &Path,
        config: &str,
        environment: HashMap<String, String>,
    ) -> TestDaemon {
        spacebot::install_crypto_provider();
        // RUST_LOG=spacebot=debug shows the daemon's log in a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
        std::fs::write(home.join("config.toml"), config).expect("write config");
        let daemon = Daemon::start(DaemonOptions {
            home: home.to_path_buf(),
            config_path: None,
            bind: Some([127, 0, 0, 1].into()),
            port: Some(0),
            environment: Arc::new(move |name: &str| environment.get(name).cloned()),
            api: Some(spacebot::api::router),
        })
        .await
        .expect("daemon starts");
        let address = daemon.api_address().expect("api enabled");
        TestDaemon {
            daemon: Some(daemon),
            base_url: format!("http://{address}"),
            http: reqwest::Client::new(),
        }
    }

    /// The running daemon, for tests that reach into an agent (e.g. its memory store).
    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("daemon running")
    }

    pub async fn shutdown(mut self) {
        if let Some(daemon) = self.daemon.take() {
            daemon.shutdown().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends a portal message and waits for the answer; returns the whole response body.
    pub async fn send(&self, conversation: &str, content: &str) -> Value {
        let response = self
            .http
            .post(self.url("/api/agents/main/messages"))
            .json(&json!({"content": content, "conversation": conversation, "wait": true, "timeout_secs": 30}))
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_success(),
            "send failed: {}",
            response.status()
        );
        response.json().await.expect("json")
    }

    /// Queues a portal message without waiting for the answer.
    pub async fn post(&self, conversation: &str, content: &str) -> Value {
        let response = self
            .http
            .post(self.url("/api/agents/main/messages"))
            .json(&json!({"content": content, "conversation": conversation}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 202);
        response.json().await.expect("json")
    }

    pub async fn get(&self, path: &str) -> Value {
        let response = self.http.get(self.url(path)).send().await.expect("request");
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.expect("json")
    }

    /// The stored transcript of a portal conversation.
    pub async fn messages(&self, conversation: &str) -> Vec<Value> {
        let body = self
            .get(&format!(
                "/api/agents/main/conversations/portal:{conversation}/messages?limit=1000"
            ))
            .await;
        body["messages"].as_array().cloned().unwrap_or_default()
    }

    /// The stored transcript of any conversation of any agent.
    pub async fn transcript(&self, agent: &str, conversation_id: &str) -> Vec<Value> {
        let response = self
            .http
            .get(self.url(&format!(
                "/api/agents/{agent}/conversations/{conversation_id}/messages?limit=1000"
            )))
            .send()
            .await
            .expect("request");
        if !response.status().is_success() {
            return Vec::new();
        }
        let body: Value = response.json().await.expect("json");
        body["messages"].as_array().cloned().unwrap_or_default()
    }

    /// Polls the transcript until `predicate` holds.
    pub async fn wait_for_messages(
        &self,
        conversation: &str,
        predicate: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let messages = self.messages(conversation).await;
            if predicate(&messages) {
                return messages;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "transcript never matched: {messages:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Assistant messages of a transcript.
pub fn replies(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter(|message| message["role"] == "assistant")
        .filter_map(|message| message["content"].as_str().map(str::to_string))
        .collect()
}

/// Scripts the channel's answer to a message containing `trigger`: start a worker on `task`
/// and reply `acknowledgement`.
pub fn spawn_worker_on(trigger: &str, llm: &FakeLlm, task: &str, acknowledgement: &str) {
    llm.push_when(
        trigger,
        crate::fake_llm::Scripted::ToolCalls(vec![
            ("spawn_worker".into(), json!({"task": task})),
            ("reply".into(), json!({"content": acknowledgement})),
        ]),
    );
}

/// Polls an agent's transcript of `conversation_id` until it holds `count` replies.
pub async fn wait_for_replies(
    daemon: &TestDaemon,
    agent: &str,
    conversation_id: &str,
    count: usize,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let replies = replies(&daemon.transcript(agent, conversation_id).await);
        if replies.len() >= count {
            return replies;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{conversation_id}: {replies:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Opens an agent's database file directly, to check what the daemon stored.
pub async fn open_database(path: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open db")
}

/// Polls `GET path` until `ready` holds for its body.
pub async fn wait_for_json(
    daemon: &TestDaemon,
    path: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let body = daemon.get(path).await;
        if ready(&body) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "GET {path} never matched: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The tool results of the first worker request (its system prompt holds "You are a worker")
/// that has `count` of them, with that request.
pub async fn worker_results(llm: &FakeLlm, count: usize) -> (Vec<String>, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found = llm
            .requests()
            .into_iter()
            .filter(|request| FakeLlm::system_text(request).contains("You are a worker"))
            .find(|request| FakeLlm::tool_results(request).len() >= count);
        if let Some(request) = found {
            return (FakeLlm::tool_results(&request), request);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker never got {count} tool results"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
