//! The `Adapter` trait every platform implements (the chat platforms and the portal),
//! adapter errors, and adapter health.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::inbound::{Inbound, InboundError};
use crate::conversation_id::{ConversationId, Platform};
use crate::message::{Draft, OutboundResponse};

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

    /// A conversation this adapter cannot address.
    pub fn bad_conversation(conversation: &ConversationId) -> Self {
        AdapterError::Permanent(format!(
            "conversation `{conversation}` is not one this platform can address"
        ))
    }
}

/// A message the daemon could not take is one the platform should deliver again.
impl From<InboundError> for AdapterError {
    fn from(error: InboundError) -> Self {
        AdapterError::transient(error.to_string())
    }
}

/// A platform. The manager runs `start` as a supervised task (an `Err` means the connection
/// was lost, and it is started again with capped exponential backoff), sends answers through
/// `respond` (already split to `message_limit`, retried on transient errors) and keeps
/// `typing` alive while a turn runs.
#[async_trait::async_trait]
pub trait Adapter: Send + Sync + 'static {
    /// The platform whose conversations this adapter carries.
    fn platform(&self) -> Platform;

    /// The longest message the platform accepts, in UTF-16 code units.
    fn message_limit(&self) -> usize;

    /// How often the typing indicator must be refreshed to stay visible; `None` for a
    /// platform that shows none.
    fn typing_interval(&self) -> Option<Duration>;

    /// Connects and hands every inbound message to `inbound` until `stop` is cancelled
    /// (`Ok`) or the connection is lost (`Err`). Reports `inbound.connected()` once connected.
    async fn start(&self, inbound: Inbound, stop: CancellationToken) -> Result<(), AdapterError>;

    /// Sends one chunk of text to a conversation, threaded under the platform message
    /// `reply_to` when given and the platform allows it.
    async fn respond(
        &self,
        conversation: &ConversationId,
        text: &str,
        reply_to: Option<&str>,
    ) -> Result<(), AdapterError>;

    /// Shows the typing indicator once; the manager refreshes it every `typing_interval`.
    async fn typing(&self, conversation: &ConversationId) -> Result<(), AdapterError>;

    /// How often a message may be edited while an answer is written into it; `None` when
    /// answers are not streamed here (the platform cannot edit, or streaming is off).
    fn edit_interval(&self) -> Option<Duration> {
        None
    }

    /// Sends a message that `edit` will change, and returns the platform's id for it.
    async fn send_editable(
        &self,
        conversation: &ConversationId,
        _text: &str,
        _reply_to: Option<&str>,
    ) -> Result<String, AdapterError> {
        Err(AdapterError::permanent(format!(
            "{conversation}: this platform cannot edit messages"
        )))
    }

    /// Replaces the text of a message `send_editable` sent.
    async fn edit(
        &self,
        conversation: &ConversationId,
        _message_id: &str,
        _text: &str,
    ) -> Result<(), AdapterError> {
        Err(AdapterError::permanent(format!(
            "{conversation}: this platform cannot edit messages"
        )))
    }

    /// Removes a message `send_editable` sent (an answer that ended up skipped).
    async fn delete(
        &self,
        _conversation: &ConversationId,
        _message_id: &str,
    ) -> Result<(), AdapterError> {
        Ok(())
    }

    /// Puts an emoji reaction on a message of a conversation.
    async fn react(
        &self,
        conversation: &ConversationId,
        _message_id: &str,
        _emoji: &str,
    ) -> Result<(), AdapterError> {
        Err(AdapterError::permanent(format!(
            "{conversation}: this platform has no reactions the agent can send"
        )))
    }

    /// Sends a file to a conversation (a photo or a document).
    async fn send_file(
        &self,
        conversation: &ConversationId,
        _file: &crate::message::OutboundFile,
    ) -> Result<(), AdapterError> {
        Err(AdapterError::permanent(format!(
            "{conversation}: sending files is not supported on this platform yet"
        )))
    }

    /// Sees every change of an answer being written, unthrottled (the portal hands it to
    /// the API callers waiting for that answer).
    fn draft(&self, _draft: &Draft<'_>) {}

    /// The turn that sent `response` is recorded (the portal releases the callers waiting
    /// for it now).
    fn recorded(&self, _response: &OutboundResponse) {}

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

impl AdapterState {
    pub const ALL: [&'static str; 5] = [
        "disabled",
        "connecting",
        "connected",
        "reconnecting",
        "stopped",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AdapterState::Disabled => "disabled",
            AdapterState::Connecting => "connecting",
            AdapterState::Connected => "connected",
            AdapterState::Reconnecting => "reconnecting",
            AdapterState::Stopped => "stopped",
        }
    }
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
