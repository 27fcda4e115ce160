//! The HTTP client behind the CLI verbs (`chat`, `send`, `status`, `access`, `cron`, `memory`): every verb but
//! `serve` talks to a running daemon through its API.

mod listing;
mod status;
mod usage;

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

pub use listing::{describe_job, describe_memory};
pub use status::render as render_status;
pub use usage::render as render_usage;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "the daemon is not running at {url} (start it with `spacebot serve`, or point \
         --url / SPACEBOT_URL at it): {source}"
    )]
    NotRunning { url: String, source: reqwest::Error },
    #[error("{url} answered HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("request to {url} failed: {source}")]
    Request { url: String, source: reqwest::Error },
}

pub struct ApiClient {
    base_url: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(base_url: impl Into<String>, token: Option<String>) -> Result<Self, ClientError> {
        let base_url = base_url.into().trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|source| ClientError::Request {
                url: base_url.clone(),
                source,
            })?;
        Ok(Self {
            base_url,
            token,
            http,
        })
    }

    pub async fn status(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(self.url("/api/status"))).await
    }

    /// `GET /api/usage` for the last `days` days, of one agent or all.
    pub async fn usage(&self, days: u32, agent: Option<&str>) -> Result<Value, ClientError> {
        let mut request = self
            .http
            .get(self.url("/api/usage"))
            .query(&[("days", days.to_string())]);
        if let Some(agent) = agent {
            request = request.query(&[("agent", agent)]);
        }
        self.send(request).await
    }

    /// Owners, members, approved members and waiting pairing codes.
    pub async fn access(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(self.url("/api/access"))).await
    }

    /// Makes the person behind a pairing code a member, or an owner.
    pub async fn approve(&self, code: &str, owner: bool) -> Result<Value, ClientError> {
        let body = json!({ "code": code, "owner": owner });
        self.send(self.http.post(self.url("/api/access/approve")).json(&body))
            .await
    }

    /// Removes an approved member.
    pub async fn revoke(&self, user_id: &str) -> Result<Value, ClientError> {
        let body = json!({ "user_id": user_id });
        self.send(self.http.post(self.url("/api/access/revoke")).json(&body))
            .await
    }

    /// Sends one message to a portal conversation and waits for the answer (`None`: skipped).
    pub async fn send_message(
        &self,
        agent: &str,
        conversation: &str,
        content: &str,
    ) -> Result<Option<String>, ClientError> {
        let body = json!({"content": content, "conversation": conversation, "sender": "cli", "wait": true});
        let answer = self
            .send(
                self.http
                    .post(self.url(&format!("/api/agents/{agent}/messages")))
                    .json(&body),
            )
            .await?;
        Ok(answer
            .get("reply")
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    /// Queues a message without waiting; answers arrive on the event stream.
    pub async fn post_message(
        &self,
        agent: &str,
        conversation: &str,
        content: &str,
    ) -> Result<(), ClientError> {
        let body = json!({"content": content, "conversation": conversation, "sender": "cli"});
        self.send(
            self.http
                .post(self.url(&format!("/api/agents/{agent}/messages")))
                .json(&body),
        )
        .await
        .map(|_| ())
    }

    /// The agent's cron jobs, each with its last execution.
    pub async fn cron_jobs(&self, agent: &str) -> Result<Value, ClientError> {
        self.send(
            self.http
                .get(self.url(&format!("/api/agents/{agent}/cron"))),
        )
        .await
    }

    /// Creates a job from a draft (`crate::cron::JobDraft` as JSON).
    pub async fn cron_add(&self, agent: &str, draft: &Value) -> Result<Value, ClientError> {
        self.send(
            self.http
                .post(self.url(&format!("/api/agents/{agent}/cron")))
                .json(draft),
        )
        .await
    }

    pub async fn cron_remove(&self, agent: &str, job: &str) -> Result<Value, ClientError> {
        self.send(
            self.http
                .delete(self.url(&format!("/api/agents/{agent}/cron/{job}"))),
        )
        .await
    }

    /// `action` is `run`, `enable` or `disable`.
    pub async fn cron_action(
        &self,
        agent: &str,
        job: &str,
        action: &str,
    ) -> Result<Value, ClientError> {
        self.send(
            self.http
                .post(self.url(&format!("/api/agents/{agent}/cron/{job}/{action}")))
                .json(&json!({})),
        )
        .await
    }

    /// An agent's memories, newest first (`order`: `recent` or `important`).
    pub async fn memories(
        &self,
        agent: &str,
        memory_type: Option<&str>,
        order: &str,
        limit: usize,
    ) -> Result<Value, ClientError> {
        let mut query = vec![("order", order.to_string()), ("limit", limit.to_string())];
        if let Some(memory_type) = memory_type {
            query.push(("type", memory_type.to_string()));
        }
        self.send(
            self.http
                .get(self.url(&format!("/api/agents/{agent}/memories")))
                .query(&query),
        )
        .await
    }

    /// Hybrid (or `recent` / `important`) recall over an agent's memories.
    pub async fn search_memories(
        &self,
        agent: &str,
        text: &str,
        memory_type: Option<&str>,
        mode: Option<&str>,
        limit: usize,
    ) -> Result<Value, ClientError> {
        let mut query = vec![("q", text.to_string()), ("limit", limit.to_string())];
        if let Some(memory_type) = memory_type {
            query.push(("type", memory_type.to_string()));
        }
        if let Some(mode) = mode {
            query.push(("mode", mode.to_string()));
        }
        self.send(
            self.http
                .get(self.url(&format!("/api/agents/{agent}/memories/search")))
                .query(&query),
        )
        .await
    }

    pub async fn add_memory(
        &self,
        agent: &str,
        content: &str,
        memory_type: &str,
        importance: Option<f64>,
    ) -> Result<Value, ClientError> {
        let mut body = json!({"content": content, "type": memory_type, "source": "cli"});
        if let Some(importance) = importance {
            body["importance"] = json!(importance);
        }
        self.send(
            self.http
                .post(self.url(&format!("/api/agents/{agent}/memories")))
                .json(&body),
        )
        .await
    }

    /// Soft-deletes a memory.
    pub async fn forget_memory(&self, agent: &str, id: &str) -> Result<Value, ClientError> {
        self.send(
            self.http
                .delete(self.url(&format!("/api/agents/{agent}/memories/{id}"))),
        )
        .await
    }

    /// An agent's memory export (JSON Lines), as a response to read chunk by chunk.
    pub async fn export_memories(&self, agent: &str) -> Result<reqwest::Response, ClientError> {
        let url = self.url(&format!("/api/agents/{agent}/memories/export"));
        let response = self
            .authorized(self.http.get(&url))
            .send()
            .await
            .map_err(|source| self.connection_error(source))?;
        check_status(&url, response).await
    }

    /// Imports a memory export (JSON Lines) into an agent; answers what was imported.
    pub async fn import_memories(&self, agent: &str, lines: Vec<u8>) -> Result<Value, ClientError> {
        self.send(
            self.http
                .post(self.url(&format!("/api/agents/{agent}/memories/import")))
                .header("content-type", "application/x-ndjson")
                .body(lines),
        )
        .await
    }

    /// Follows the event stream of one conversation, calling `on_event(name, data)` for each
    /// event until the stream ends.
    pub async fn follow_events(
        &self,
        agent: &str,
        conversation_id: &str,
        mut on_event: impl FnMut(&str, &Value),
    ) -> Result<(), ClientError> {
        let url = self.url("/api/events");
        let response = self
            .authorized(
                self.http
                    .get(&url)
                    .query(&[("agent", agent), ("conversation", conversation_id)]),
            )
            .send()
            .await
            .map_err(|source| self.connection_error(source))?;
        let response = check_status(&url, response).await?;
        let mut bytes = response.bytes_stream();
        let mut buffer = String::new();
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk.map_err(|source| ClientError::Request {
                url: url.clone(),
                source,
            })?;
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let mut name = "message";
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if let Ok(value) = serde_json::from_str::<Value>(&data) {
                    on_event(name, &value);
                }
            }
        }
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    fn connection_error(&self, source: reqwest::Error) -> ClientError {
        if source.is_connect() {
            ClientError::NotRunning {
                url: self.base_url.clone(),
                source,
            }
        } else {
            ClientError::Request {
                url: self.base_url.clone(),
                source,
            }
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let request = self.authorized(request);
        let response = request
            .send()
            .await
            .map_err(|source| self.connection_error(source))?;
        let url = response.url().to_string();
        let response = check_status(&url, response).await?;
        response
            .json()
            .await
            .map_err(|source| ClientError::Request { url, source })
    }
}

async fn check_status(
    url: &str,
    response: reqwest::Response,
) -> Result<reqwest::Response, ClientError> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|body| body["error"]["message"].as_str().map(str::to_string))
        .unwrap_or(text);
    Err(ClientError::Status {
        url: url.to_string(),
        status,
        message,
    })
}
