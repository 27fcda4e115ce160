//! The courier: `send_agent_message` from one agent to a linked one, and the answer back. A
//! message lands in the receiver's `agent:{sender}` conversation; the receiver's answer to
//! that conversation never reaches a platform: `LinkOutbox` hands it here, and it re-triggers
//! the sender's conversation that asked. Loop protection: a message sent while answering
//! another agent's message is one level deeper (at most `[agent_messages] max_depth`), and one
//! agent sends another at most `per_minute` messages a minute.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::DaemonState;
use crate::config::AgentMessagesConfig;
use crate::conversation_id::{ConversationId, Place, Platform};
use crate::message::{
    DeliveryError, Draft, InboundMessage, OutboundContent, OutboundResponse, Outbox, Standing,
};
use crate::tools::{AgentAnswer, AgentMessage, AgentMessageError, AgentMessenger};

/// An exchange unanswered for this long is forgotten.
const EXCHANGE_EXPIRY: Duration = Duration::from_secs(3600);

/// A message on its way: who asked, from where, on whose behalf.
struct Exchange {
    from_conversation: ConversationId,
    question: String,
    depth: u32,
    standing: Standing,
    sent_at: Instant,
}

pub struct Courier {
    /// Set once the daemon's state exists; the agents are read from it at each send, so
    /// agents added or removed by a reload are seen.
    state: OnceLock<Weak<DaemonState>>,
    settings: AgentMessagesConfig,
    /// Unanswered messages by (receiver, sender), oldest first.
    pending: Mutex<HashMap<(String, String), VecDeque<Exchange>>>,
    /// When each (sender, receiver) pair sent, within the last minute.
    sent: Mutex<HashMap<(String, String), VecDeque<Instant>>>,
}

impl Courier {
    pub fn new(settings: AgentMessagesConfig) -> Self {
        Self {
            state: OnceLock::new(),
            settings,
            pending: Mutex::default(),
            sent: Mutex::default(),
        }
    }

    pub fn attach(&self, state: &Arc<DaemonState>) {
        // Set once at startup; a second call changes nothing.
        let _ = self.state.set(Arc::downgrade(state));
    }

    fn state(&self) -> Option<Arc<DaemonState>> {
        self.state.get().and_then(Weak::upgrade)
    }

    /// The depth of the exchange `receiver` is answering for `asker`, or 0.
    fn depth_of(&self, receiver: &str, asker: &str) -> u32 {
        self.pending
            .lock()
            .ok()
            .and_then(|pending| {
                pending
                    .get(&(receiver.to_string(), asker.to_string()))
                    .and_then(|queue| queue.front().map(|exchange| exchange.depth))
            })
            .unwrap_or(0)
    }

    /// Counts a message from `from` to `to` unless the pair already sent `per_minute`.
    fn within_rate(&self, from: &str, to: &str) -> bool {
        let Ok(mut sent) = self.sent.lock() else {
            return false;
        };
        let times = sent.entry((from.to_string(), to.to_string())).or_default();
        let now = Instant::now();
        while times
            .front()
            .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(60))
        {
            times.pop_front();
        }
        if times.len() >= self.settings.per_minute as usize {
            return false;
        }
        times.push_back(now);
        true
    }

    fn push(&self, receiver: &str, asker: &str, exchange: Exchange) {
        if let Ok(mut pending) = self.pending.lock() {
            let queue = pending
                .entry((receiver.to_string(), asker.to_string()))
                .or_default();
            queue.retain(|old| old.sent_at.elapsed() < EXCHANGE_EXPIRY);
            queue.push_back(exchange);
        }
    }

    fn pop(&self, receiver: &str, asker: &str, newest: bool) -> Option<Exchange> {
        let mut pending = self.pending.lock().ok()?;
        let queue = pending.get_mut(&(receiver.to_string(), asker.to_string()))?;
        queue.retain(|old| old.sent_at.elapsed() < EXCHANGE_EXPIRY);
        if newest {
            queue.pop_back()
        } else {
            queue.pop_front()
        }
    }
}

#[async_trait::async_trait]
impl AgentMessenger for Courier {
    async fn send(&self, message: AgentMessage) -> Result<(), AgentMessageError> {
        let unavailable = || AgentMessageError::Unavailable(message.to.clone());
        let state = self.state().ok_or_else(unavailable)?;
        let agents = state.agents();
        let sender = agents
            .get(&message.from)
            .ok_or_else(|| AgentMessageError::Unavailable(message.from.clone()))?;
        let links = &sender.runtime.config().links;
        if !links.contains(&message.to) {
            return Err(AgentMessageError::NotLinked {
                to: message.to.clone(),
                linked: links.clone(),
            });
        }
        let receiver = agents.get(&message.to).ok_or_else(unavailable)?;
        let depth = match message.from_conversation.place() {
            Place::Agent { from: asker } => self.depth_of(&message.from, asker) + 1,
            _ => 1,
        };
        if depth > self.settings.max_depth {
            return Err(AgentMessageError::TooDeep { depth: depth - 1 });
        }
        if !self.within_rate(&message.from, &message.to) {
            return Err(AgentMessageError::RateLimited {
                to: message.to.clone(),
                limit: self.settings.per_minute,
            });
        }
        // Pending before it is routed, so the quickest answer finds it.
        self.push(
            &message.to,
            &message.from,
            Exchange {
                from_conversation: message.from_conversation.clone(),
                question: message.text.clone(),
                depth,
                standing: message.standing,
                sent_at: Instant::now(),
            },
        );
        let mut inbound = InboundMessage::new(
            ConversationId::agent(&message.from),
            sender.runtime.config().display_name.clone(),
            message.text.clone(),
        );
        inbound.agent = Some(message.to.clone());
        inbound.sender_id = Some(format!("agent:{}", message.from));
        inbound.authority = message.standing.authority;
        tracing::info!(from = %message.from, to = %message.to, depth, "an agent sends another a message");
        if let Err(error) = receiver.runtime.route(inbound).await {
            self.pop(&message.to, &message.from, true);
            return Err(AgentMessageError::Failed(error.to_string()));
        }
        Ok(())
    }

    async fn answered(&self, responder: &str, conversation: &ConversationId, answer: AgentAnswer) {
        let Place::Agent { from: asker } = conversation.place() else {
            return;
        };
        let Some(exchange) = self.pop(responder, asker, false) else {
            tracing::warn!(
                responder,
                asker,
                "an agent answered a message nobody waits for (expired, or from before a restart)"
            );
            return;
        };
        let Some(state) = self.state() else {
            return;
        };
        let agents = state.agents();
        let Some(entry) = agents.get(asker) else {
            tracing::warn!(
                responder,
                asker,
                "the agent that asked is gone; the answer is dropped"
            );
            return;
        };
        if let Err(error) = entry
            .runtime
            .relay_answer(
                &exchange.from_conversation,
                responder,
                &exchange.question,
                answer,
                exchange.standing,
            )
            .await
        {
            tracing::error!(%error, responder, asker, "cannot relay an agent's answer");
        }
    }
}

/// An agent's outbox: answers in `agent:{asker}` conversations go back through the courier,
/// everything else to the platforms.
pub struct LinkOutbox {
    pub agent_id: String,
    pub messenger: Arc<dyn AgentMessenger>,
    pub inner: Arc<dyn Outbox>,
}

#[async_trait::async_trait]
impl Outbox for LinkOutbox {
    async fn typing(&self, conversation: &ConversationId) {
        if conversation.platform() != Platform::Agent {
            self.inner.typing(conversation).await;
        }
    }

    async fn deliver(&self, response: &OutboundResponse) -> Result<(), DeliveryError> {
        if response.conversation.platform() != Platform::Agent {
            return self.inner.deliver(response).await;
        }
        let answer = match &response.content {
            OutboundContent::Text { text } => AgentAnswer::Text(text.clone()),
            OutboundContent::Skip => AgentAnswer::Skipped,
            OutboundContent::Failed { error, .. } => AgentAnswer::Failed(error.clone()),
        };
        self.messenger
            .answered(&self.agent_id, &response.conversation, answer)
            .await;
        Ok(())
    }

    fn recorded(&self, response: &OutboundResponse) {
        if response.conversation.platform() != Platform::Agent {
            self.inner.recorded(response);
        }
    }

    fn settled(&self, conversation: &ConversationId) {
        if conversation.platform() != Platform::Agent {
            self.inner.settled(conversation);
        }
    }

    fn reaches(&self, conversation: &ConversationId) -> bool {
        conversation.platform() == Platform::Agent || self.inner.reaches(conversation)
    }

    fn stream(&self, draft: &Draft<'_>) {
        if draft.conversation.platform() != Platform::Agent {
            self.inner.stream(draft);
        }
    }

    async fn react(
        &self,
        conversation: &ConversationId,
        message_id: &str,
        emoji: &str,
    ) -> Result<(), DeliveryError> {
        if conversation.platform() == Platform::Agent {
            return Err(DeliveryError::Failed {
                conversation: conversation.clone(),
                reason: "another agent's messages take no reactions".to_string(),
            });
        }
        self.inner.react(conversation, message_id, emoji).await
    }

    async fn send_file(
        &self,
        conversation: &ConversationId,
        file: &crate::message::OutboundFile,
    ) -> Result<(), DeliveryError> {
        if conversation.platform() == Platform::Agent {
            return Err(DeliveryError::Failed {
                conversation: conversation.clone(),
                reason: "files cannot be sent to another agent; name the file's workspace path in the message instead".to_string(),
            });
        }
        self.inner.send_file(conversation, file).await
    }
}
