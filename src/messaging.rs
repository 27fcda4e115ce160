//! Messages in and out of the daemon: the inbound and outbound types, and the manager that
//! routes each outbound response to the adapter named by its conversation id prefix.

pub mod portal;

use serde::Serialize;

pub use portal::{Portal, PortalReply, PortalWaiter};

/// A message a person sent, on its way to an agent.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    /// Our id for the message (uuid v7), assigned where it entered the daemon.
    pub id: String,
    /// `{platform}:{scope}`, e.g. `portal:cli` or `telegram:42`.
    pub conversation_id: String,
    pub sender: String,
    pub content: String,
    /// The platform's own id, when it has one: storing is idempotent on it.
    pub platform_message_id: Option<String>,
    /// A direct message starts a turn at once; group messages coalesce into bursts.
    pub direct: bool,
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
            direct: true,
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
}

/// Routes outbound responses to adapters by conversation id prefix.
#[derive(Default)]
pub struct MessagingManager {
    portal: Portal,
}

impl MessagingManager {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn portal(&self) -> &Portal {
        &self.portal
    }

    pub async fn deliver(&self, response: OutboundResponse) -> Result<(), MessagingError> {
        match platform_of(&response.conversation_id) {
            "portal" => {
                self.portal.deliver(&response);
                Ok(())
            }
            _ => Err(MessagingError::NoAdapter(response.conversation_id)),
        }
    }
}

/// The platform prefix of a conversation id.
pub fn platform_of(conversation_id: &str) -> &str {
    conversation_id
        .split_once(':')
        .map_or(conversation_id, |(platform, _)| platform)
}
