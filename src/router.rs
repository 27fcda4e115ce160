//! The router: between messaging, which knows no agent, and the agents. It takes every
//! inbound message (from the chat platforms and the portal alike), resolves the agent it is
//! for (named by the sender, else by `[[bindings]]`), answers the daemon's own commands
//! (`/help`, `/status`, `/new`), and hands everything else to the agent to store and answer.

mod bindings;
mod commands;

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::Instrument;

use crate::agent::{AgentError, AgentRuntime, RouteOutcome};
use crate::config::BindingConfig;
use crate::message::{InboundMessage, OutboundContent, OutboundResponse, Outbox};
use crate::messaging::{InboundError, InboundHandler, Receipt};
use bindings::{Bindings, Resolution};

pub struct Router {
    agents: BTreeMap<String, Arc<AgentRuntime>>,
    bindings: Bindings,
    /// Where command answers go (the platforms' outbox).
    outbox: Arc<dyn Outbox>,
}

impl Router {
    pub fn new(
        agents: BTreeMap<String, Arc<AgentRuntime>>,
        bindings: Vec<BindingConfig>,
        default_agent: String,
        outbox: Arc<dyn Outbox>,
    ) -> Self {
        Self {
            agents,
            bindings: Bindings::new(bindings, default_agent),
            outbox,
        }
    }

    /// The agent a message is for, or why it is for none.
    fn agent_for(
        &self,
        message: &InboundMessage,
    ) -> Result<Option<&Arc<AgentRuntime>>, InboundError> {
        let agent_id = match &message.agent {
            Some(agent_id) => agent_id.as_str(),
            None => match self.bindings.resolve(message) {
                Resolution::Agent(agent_id) => agent_id,
                Resolution::NotAddressed => {
                    tracing::debug!("not addressed to the bot; ignored");
                    return Ok(None);
                }
            },
        };
        self.agents
            .get(agent_id)
            .map(Some)
            .ok_or_else(|| InboundError::UnknownAgent {
                agent: agent_id.to_string(),
                known: self.agents.keys().cloned().collect(),
            })
    }

    async fn handle(&self, message: InboundMessage) -> Result<Receipt, InboundError> {
        let Some(agent) = self.agent_for(&message)? else {
            return Ok(Receipt::Ignored);
        };
        if let Some(command) = commands::parse(&message.content) {
            tracing::info!(agent_id = %agent.id(), ?command, "command");
            let text = commands::run(command, agent, &message.conversation).await;
            let answer = OutboundResponse {
                agent_id: agent.id().to_string(),
                conversation: message.conversation.clone(),
                in_reply_to: Vec::new(),
                reply_to: message.platform_message_id.clone(),
                content: OutboundContent::Text { text: text.clone() },
                usage: Default::default(),
                turn_answer: false,
            };
            if let Err(error) = self.outbox.deliver(&answer).await {
                tracing::error!(%error, "cannot answer the command");
            }
            return Ok(Receipt::Answered { text });
        }
        match agent.route(message).await {
            Ok(RouteOutcome::Accepted { message_id }) => Ok(Receipt::Stored {
                agent_id: agent.id().to_string(),
                message_id,
            }),
            Ok(RouteOutcome::Duplicate) => Ok(Receipt::Duplicate),
            Err(AgentError::ShuttingDown(_)) => Err(InboundError::ShuttingDown),
            Err(AgentError::Store(error)) if error.is_disk_failure() => {
                tracing::error!(%error, "a message was refused: the database cannot be written");
                Err(InboundError::DiskFull(error.to_string()))
            }
            Err(error) => {
                tracing::error!(%error, "a message could not be stored");
                Err(InboundError::Storage(error.to_string()))
            }
        }
    }
}

#[async_trait::async_trait]
impl InboundHandler for Router {
    async fn receive(&self, message: InboundMessage) -> Result<Receipt, InboundError> {
        let span = tracing::info_span!("inbound", conversation_id = %message.conversation);
        self.handle(message).instrument(span).await
    }
}
