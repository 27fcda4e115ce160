//! Messages in and out of the daemon: the inbound and outbound types, and the manager that
//! runs the platform adapters, routes their messages to agents, and routes each outbound
//! response to the adapter named by its conversation id prefix.

pub mod adapter;
pub mod bindings;
pub mod commands;
pub mod discord;
mod manager;
pub mod portal;
pub mod slack;
pub mod split;
pub mod telegram;

use serde::Serialize;

pub use adapter::{Adapter, AdapterError, AdapterState, AdapterStatus, Inbound};
pub use manager::MessagingManager;
pub use portal::{Portal, PortalReply, PortalWaiter};
pub use split::split_message;

/// A message a person sent, on its way to an agent.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    /// Our id for the message (uuid v7), assigned where it entered the daemon.
    pub id: String,
    /// `{platform}:{scope}`, e.g. `portal:cli` or `telegram:42`.
    pub conversation_id: String,
    pub sender: String,
    pub content: String,
    /// The platform's own id, when it has one: storing is idempotent on it, and replies are
    /// threaded under it.
    pub platform_message_id: Option<String>,
    /// The message mentions the bot (or replies to it).
    pub mentions_bot: bool,
    /// A direct message: one person and the bot.
    pub is_direct: bool,
    /// Where on the platform it was sent, for `[[bindings]]`.
    pub location: MessageLocation,
}

/// A platform location. Discord: guild, channel (a thread is a channel) and the thread's
/// parent; Telegram: the chat as `channel_id`; Slack: team and channel.
#[derive(Debug, Clone, Default)]
pub struct MessageLocation {
    pub server_id: Option<String>,
    pub channel_id: Option<String>,
    pub parent_channel_id: Option<String>,
}

impl InboundMessage {
    pub fn new(
        conversation_id: impl Into<String>,
        sender: impl Into<String>,
        content: impl Into<String>,
    ) -> Self {
        Self {
            id: new_message_id(),
            conversation_id: conversation_id.into(),
            sender: sender.into(),
            content: content.into(),
            platform_message_id: None,
            mentions_bot: false,
            is_direct: true,
            location: MessageLocation::default(),
        }
    }
}

/// A fresh, time-ordered message id.
pub fn new_message_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What a channel turn sends back to its conversation.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", content = "content", rename_all = "snake_case")]
pub enum OutboundContent {
    Text(String),
    /// The agent chose not to answer: platforms send nothing, waiting API callers are released.
    Skip,
}

#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub agent_id: String,
    pub conversation_id: String,
    /// The inbound message ids this answers.
    pub in_reply_to: Vec<String>,
    pub content: OutboundContent,
}

#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error("no adapter handles conversation `{0}`")]
    NoAdapter(String),
    #[error("cannot send to `{conversation_id}`: {source}")]
    Send {
        conversation_id: String,
        source: AdapterError,
    },
    #[error("cannot set up the {platform} adapter: {message}")]
    Setup {
        platform: &'static str,
        message: String,
    },
}

/// The platform prefix of a conversation id.
pub fn platform_of(conversation_id: &str) -> &str {
    conversation_id
        .split_once(':')
        .map_or(conversation_id, |(platform, _)| platform)
}
