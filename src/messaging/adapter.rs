//! The `Adapter` trait every chat platform implements, the handle through which an adapter
//! hands inbound messages to the manager, adapter errors, and adapter health.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::InboundMessage;

/// Why an adapter call failed, and whether trying again can help.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdapterError {
    /// Rate limits, server errors, timeouts, lost connections: worth retrying, after
    /// `retry_after` when the platform said how long to wait.
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Forbidden, not found, bad token, bad request: retrying cannot help.
    #[error("{0}")]
    Permanent(String),
}

impl AdapterError {
    pub fn transient(message: impl Into<String>) -> Self {
        AdapterError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        AdapterError::Permanent(message.into())
    }

    /// A conversation id this adapter cannot address.
    pub fn bad_conversation(conversation_id: &str) -> Self {
        AdapterError::Permanent(format!("malformed conversation id `{conversation_id}`"))
    }
}

/// A chat platform. The manager runs `start` as a supervised task (an `Err` means the
/// connection was lost, and it is started again with capped exponential backoff), sends
/// replies through `respond` (already split to `message_limit`, retried on transient errors)
/// and keeps `typing` alive while a turn runs.
#[async_trait::async_trait]
pub trait Adapter: Send + Sync + 'static {
    /// The conversation id prefix this adapter owns, e.g. `telegram`.
    fn name(&self) -> &'static str;

    /// The longest message the platform accepts, in UTF-16 code units.
    fn message_limit(&self) -> usize;

    /// How often the typing indicator must be refreshed to stay visible.
    fn typing_interval(&self) -> Duration;

    /// Connects and hands every inbound message to `inbound` until `stop` is cancelled
    /// (`Ok`) or the connection is lost (`Err`). Reports `inbound.connected()` once connected.
    async fn start(&self, inbound: Inbound, stop: CancellationToken) -> Result<(), AdapterError>;

    /// Sends one chunk of text to a conversation, threaded under the platform message
    /// `reply_to` when given and the platform allows it.
    async fn respond(
        &self,
        conversation_id: &str,
        text: &str,
        reply_to: Option<&str>,
    ) -> Result<(), AdapterError>;

    /// Shows the typing indicator once; the manager refreshes it every `typing_interval`.
    async fn typing(&self, conversation_id: &str) -> Result<(), AdapterError>;

    /// A proactive message, not answering anything (cron results, notices).
    async fn broadcast(&self, conversation_id: &str, text: &str) -> Result<(), AdapterError> {
        self.respond(conversation_id, text, None).await
    }

    /// Releases connections at daemon shutdown, after the last reply was sent.
    async fn shutdown(&self) {}
}

/// The state of one platform connection, as `GET /api/status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterState {
    /// Not configured (no `[messaging.NAME]` table, or `enabled = false`).
    Disabled,
    Connecting,
    Connected,
    /// The connection was lost or could not be made; `last_error` says why.
    Reconnecting,
    Stopped,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdapterStatus {
    pub name: String,
    pub state: AdapterState,
    pub last_error: Option<String>,
    /// Times the connection was lost and made again.
    pub reconnects: u32,
}

/// Shared, lock-protected health of one adapter. A poisoned lock reads as "unknown": the
/// status is an observation, never worth a panic.
#[derive(Debug, Clone)]
pub struct Health {
    inner: Arc<Mutex<AdapterStatus>>,
}

impl Health {
    pub fn new(name: &str, state: AdapterState) -> Self {
        Self {
            inner: Arc::new(Mutex::new(AdapterStatus {
                name: name.to_string(),
                state,
                last_error: None,
                reconnects: 0,
            })),
        }
    }

    pub fn snapshot(&self) -> Option<AdapterStatus> {
        self.inner.lock().ok().map(|status| status.clone())
    }

    pub fn connected(&self) {
        if let Ok(mut status) = self.inner.lock() {
            if status.state == AdapterState::Reconnecting {
                status.reconnects += 1;
            }
            status.state = AdapterState::Connected;
        }
    }

    pub fn reconnecting(&self, error: impl Into<String>) {
        if let Ok(mut status) = self.inner.lock() {
            status.state = AdapterState::Reconnecting;
            status.last_error = Some(error.into());
        }
    }

    pub fn set(&self, state: AdapterState) {
        if let Ok(mut status) = self.inner.lock() {
            status.state = state;
        }
    }
}

/// One inbound message on its way to the manager, with the channel on which the manager
/// says whether it was stored.
pub struct InboundEnvelope {
    pub message: InboundMessage,
    pub stored: oneshot::Sender<Result<(), String>>,
}

/// What an adapter holds to hand messages to the manager and report its connection.
#[derive(Clone)]
pub struct Inbound {
    sender: mpsc::Sender<InboundEnvelope>,
    health: Health,
}

impl Inbound {
    pub fn new(sender: mpsc::Sender<InboundEnvelope>, health: Health) -> Self {
        Self { sender, health }
    }

    /// Hands a message to the manager and waits until it is stored (or handled, or
    /// deliberately ignored). Only after `Ok` may a platform that redelivers (Telegram
    /// offsets, Slack envelopes) be told the message was received.
    pub async fn deliver(&self, message: InboundMessage) -> Result<(), AdapterError> {
        let (stored, outcome) = oneshot::channel();
        self.sender
            .send(InboundEnvelope { message, stored })
            .await
            .map_err(|_| AdapterError::transient("the daemon is no longer taking messages"))?;
        match outcome.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(AdapterError::transient(error)),
            Err(_) => Err(AdapterError::transient(
                "the daemon stopped before storing the message",
            )),
        }
    }

    pub fn connected(&self) {
        self.health.connected();
    }

    pub fn reconnecting(&self, error: impl Into<String>) {
        self.health.reconnecting(error);
    }
}
