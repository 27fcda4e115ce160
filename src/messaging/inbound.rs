//! The inbound direction: the `Inbound` handle through which an adapter hands a message to
//! whatever handles messages (the router, which messaging does not know), and what comes back:
//! a `Receipt` once the message is stored (or answered, or deliberately ignored), or an
//! `InboundError` saying why it was not taken.

use std::sync::Arc;

use super::adapter::Health;
use crate::message::InboundMessage;

/// What became of an inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// Stored and queued for the agent's answer.
    Stored {
        agent_id: String,
        message_id: String,
    },
    /// Already received (the same platform message id); nothing was done.
    Duplicate,
    /// A command the daemon answered itself (`/help`, `/status`, `/new`) with this text.
    Answered { text: String },
    /// Not for the bot (a group message that does not mention it, for one).
    Ignored,
}

/// Why a message was not taken. Platforms that redeliver (Telegram, Slack) get it again.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InboundError {
    #[error("no agent `{agent}`; agents: {}", known.join(", "))]
    UnknownAgent { agent: String, known: Vec<String> },
    #[error("the daemon is shutting down and accepts no new messages")]
    ShuttingDown,
    #[error("the daemon is not taking messages yet")]
    NotReady,
    #[error(
        "the message was not stored, so it was not accepted: the disk is full or failing \
         ({0}); send it again once there is space"
    )]
    DiskFull(String),
    #[error("the message could not be stored: {0}")]
    Storage(String),
}

/// Takes inbound messages: stores each and queues it for its agent, or answers it.
#[async_trait::async_trait]
pub trait InboundHandler: Send + Sync {
    async fn receive(&self, message: InboundMessage) -> Result<Receipt, InboundError>;
}

/// What an adapter holds to hand messages in and report its connection.
#[derive(Clone)]
pub struct Inbound {
    handler: Arc<dyn InboundHandler>,
    health: Health,
}

impl Inbound {
    pub fn new(handler: Arc<dyn InboundHandler>, health: Health) -> Self {
        Self { handler, health }
    }

    /// Hands a message in and waits until it is stored (or answered, or deliberately
    /// ignored). Only after `Ok` may a platform that redelivers (Telegram offsets, Slack
    /// envelopes) be told the message was received.
    pub async fn deliver(&self, message: InboundMessage) -> Result<Receipt, InboundError> {
        self.handler.receive(message).await
    }

    pub fn connected(&self) {
        self.health.connected();
    }

    pub fn reconnecting(&self, error: impl Into<String>) {
        self.health.reconnecting(error);
    }
}
