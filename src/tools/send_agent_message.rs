//! `send_agent_message`: the channel writes to a linked agent of the daemon. The message lands
//! in that agent's `agent:{from}` conversation; its answer comes back later as a background
//! result that starts a turn here. The daemon's courier (`AgentMessenger`) delivers both ways
//! and holds the loop protection (depth and rate).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::conversation_id::ConversationId;
use crate::message::Standing;

/// Characters of a message at most.
pub const MAX_AGENT_MESSAGE: usize = 8_000;

/// A message from one agent to another.
#[derive(Debug, Clone)]
pub struct AgentMessage {
    pub from: String,
    /// The sender's conversation, which the answer re-triggers.
    pub from_conversation: ConversationId,
    pub to: String,
    pub text: String,
    /// On whose behalf the sender works; the receiver's turn works on it too.
    pub standing: Standing,
}

/// What became of a message: the receiver's answer, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentAnswer {
    Text(String),
    Skipped,
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AgentMessageError {
    #[error("`{to}` is not an agent you may message{}", linked_names(.linked))]
    NotLinked { to: String, linked: Vec<String> },
    #[error(
        "this exchange between agents is already {depth} messages deep (the limit); answer \
         with what you have instead of asking further"
    )]
    TooDeep { depth: u32 },
    #[error(
        "you sent `{to}` {limit} messages in the last minute (the limit); wait, or go on \
         without asking"
    )]
    RateLimited { to: String, limit: u32 },
    #[error("`{0}` is not running")]
    Unavailable(String),
    #[error("the message could not be delivered: {0}")]
    Failed(String),
}

fn linked_names(linked: &[String]) -> String {
    if linked.is_empty() {
        "; you are linked to no agent".to_string()
    } else {
        format!("; you may message: {}", linked.join(", "))
    }
}

/// Delivers messages between the daemon's agents, and their answers back.
#[async_trait::async_trait]
pub trait AgentMessenger: Send + Sync {
    /// Stores the message in the receiver's `agent:{from}` conversation and starts its turn;
    /// returns once it is stored.
    async fn send(&self, message: AgentMessage) -> Result<(), AgentMessageError>;

    /// The agent `responder` answered in `conversation` (`agent:{asker}`): the asker's
    /// conversation that sent the message hears it.
    async fn answered(&self, responder: &str, conversation: &ConversationId, answer: AgentAnswer);
}

pub struct SendAgentMessage {
    messenger: Arc<dyn AgentMessenger>,
    links: Vec<String>,
}

impl SendAgentMessage {
    pub fn new(messenger: Arc<dyn AgentMessenger>, links: Vec<String>) -> Self {
        Self { messenger, links }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arguments {
    to: String,
    message: String,
}

impl<Effect: Send + 'static> Tool<Effect> for SendAgentMessage {
    type Arguments = Arguments;
    const NAME: &'static str = "send_agent_message";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/send_agent_message.md.j2");
    /// It makes another agent work (and spend), on this turn's authority.
    const ACTS: bool = true;

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "to": {"type": "string", "enum": self.links, "description": "The agent to write to."},
                "message": {"type": "string", "description": "What to ask or tell it, self-contained: it does not see this conversation."}
            },
            "required": ["to", "message"]
        })
    }

    async fn call(&self, call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        let text = arguments.message.trim();
        if text.is_empty() {
            return ToolOutput::error("the message is empty");
        }
        if text.chars().count() > MAX_AGENT_MESSAGE {
            return ToolOutput::error(format!(
                "the message is longer than {MAX_AGENT_MESSAGE} characters; shorten it"
            ));
        }
        let to = arguments.to.trim().to_string();
        let message = AgentMessage {
            from: call.agent_id.to_string(),
            from_conversation: call.conversation.clone(),
            to: to.clone(),
            text: text.to_string(),
            standing: call.standing,
        };
        match self.messenger.send(message).await {
            Ok(()) => ToolOutput::success(format!(
                "sent to `{to}`; its answer will come back to you as a background result"
            )),
            Err(error) => {
                tracing::warn!(agent_id = call.agent_id, to = %to, %error, "a message to another agent was refused");
                ToolOutput::error(error.to_string())
            }
        }
    }
}
