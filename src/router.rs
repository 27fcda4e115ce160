//! The router: between messaging, which knows no agent, and the agents. It takes every
//! inbound message (from the chat platforms and the portal alike), resolves the agent it is
//! for (named by the sender, else by `[[bindings]]`), asks `access` whether and with what
//! authority it may be read (a stranger's direct message gets a pairing code instead),
//! answers the daemon's own commands (`/help`, `/status`, `/new`), and hands everything else
//! to the agent to store and answer.

mod bindings;
mod commands;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tracing::Instrument;

use crate::access::{Access, Admission, GroupRule};
use crate::agent::{AgentError, AgentRuntime, RouteOutcome};
use crate::config::BindingConfig;
use crate::conversation_id::Platform;
use crate::message::{Authority, InboundMessage, OutboundContent, OutboundResponse, Outbox};
use crate::messaging::{InboundError, InboundHandler, Receipt};
use bindings::Bindings;

pub struct Router {
    /// Replaced whole by a config reload; each message reads the table once.
    table: RwLock<Arc<RouteTable>>,
    access: Arc<Access>,
    /// Where the router's own answers go (commands, pairing codes): the platforms' outbox.
    outbox: Arc<dyn Outbox>,
}

/// Where messages go: the agents by id, and the bindings that pick one.
pub struct RouteTable {
    agents: BTreeMap<String, Arc<AgentRuntime>>,
    bindings: Bindings,
}

impl RouteTable {
    pub fn new(
        agents: BTreeMap<String, Arc<AgentRuntime>>,
        bindings: Vec<BindingConfig>,
        default_agent: String,
    ) -> Self {
        Self {
            agents,
            bindings: Bindings::new(bindings, default_agent),
        }
    }
}

impl Router {
    pub fn new(table: RouteTable, access: Arc<Access>, outbox: Arc<dyn Outbox>) -> Self {
        Self {
            table: RwLock::new(Arc::new(table)),
            access,
            outbox,
        }
    }

    /// Routes every message from now on by `table` (a config reload: agents added or
    /// removed, bindings changed). A message already being handled finishes on the old one.
    pub fn replace(&self, table: RouteTable) {
        match self.table.write() {
            Ok(mut current) => *current = Arc::new(table),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(table),
        }
    }

    fn table(&self) -> Arc<RouteTable> {
        match self.table.read() {
            Ok(table) => table.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The agent a message is for, and what its binding says about the group.
    fn agent_for(
        &self,
        message: &InboundMessage,
    ) -> Result<(Arc<AgentRuntime>, GroupRule), InboundError> {
        let table = self.table();
        let (agent_id, rule) = match &message.agent {
            Some(agent_id) => (agent_id.as_str(), GroupRule::default()),
            None => table.bindings.resolve(message),
        };
        let agent = table
            .agents
            .get(agent_id)
            .ok_or_else(|| InboundError::UnknownAgent {
                agent: agent_id.to_string(),
                known: table.agents.keys().cloned().collect(),
            })?;
        Ok((agent.clone(), rule))
    }

    /// Sends the router's own answer to the message's conversation.
    async fn answer(&self, agent: &AgentRuntime, message: &InboundMessage, text: &str) {
        let answer = OutboundResponse {
            agent_id: agent.id().to_string(),
            conversation: message.conversation.clone(),
            in_reply_to: Vec::new(),
            reply_to: message.platform_message_id.clone(),
            content: OutboundContent::Text {
                text: text.to_string(),
            },
            usage: Default::default(),
            turn_answer: false,
        };
        if let Err(error) = self.outbox.deliver(&answer).await {
            tracing::error!(%error, "cannot send the router's answer");
        }
    }

    /// The authority the message is read with, or the receipt when it is not read.
    async fn admit(
        &self,
        agent: &AgentRuntime,
        message: &InboundMessage,
        rule: GroupRule,
    ) -> Result<Result<Authority, Receipt>, InboundError> {
        if message.conversation.platform() == Platform::Portal {
            // The HTTP API is the owner's: loopback, or the token.
            return Ok(Ok(Authority::Owner));
        }
        let admission = self.access.admit(message, rule).await.map_err(|error| {
            // Not taken; a platform that redelivers brings it again.
            tracing::error!(%error, "cannot decide on the message's access");
            InboundError::Storage(error.to_string())
        })?;
        Ok(match admission {
            Admission::Admit(authority) => Ok(authority),
            Admission::Pair(pairing) => {
                let valid = u64::try_from(pairing.expires_at - pairing.created_at).unwrap_or(0);
                let text = format!(
                    "Hello! I only talk with people my owner knows. To be let in, ask them to \
                     run: spacebot access approve {} (valid for {}).",
                    pairing.code,
                    crate::schedule::format_duration(std::time::Duration::from_millis(valid))
                );
                self.answer(agent, message, &text).await;
                Err(Receipt::Answered { text })
            }
            Admission::Ignore(reason) => {
                tracing::debug!(reason, sender_id = ?message.sender_id, "not read");
                Err(Receipt::Ignored)
            }
            Admission::Throttle { notify } => {
                tracing::info!(sender_id = ?message.sender_id, "over the group message rate; not read");
                if notify {
                    let text = format!(
                        "{}, you are writing faster than I read here; I will skip your \
                         messages for a minute.",
                        message.sender
                    );
                    self.answer(agent, message, &text).await;
                }
                Err(Receipt::Ignored)
            }
        })
    }

    async fn handle(&self, mut message: InboundMessage) -> Result<Receipt, InboundError> {
        let (agent, rule) = self.agent_for(&message)?;
        let agent = &agent;
        message.authority = match self.admit(agent, &message, rule).await? {
            Ok(authority) => authority,
            Err(receipt) => return Ok(receipt),
        };
        if let Some(command) = commands::parse(&message.content) {
            tracing::info!(agent_id = %agent.id(), ?command, "command");
            let text = commands::run(command, agent, &message.conversation).await;
            self.answer(agent, &message, &text).await;
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
