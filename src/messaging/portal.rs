//! The portal: conversations held through the daemon's own HTTP API (the CLI, the dashboard,
//! the OpenAI-compatible endpoint). It is an adapter like the others: its messages go in
//! through the same `Inbound` handle, and answers come out through the same outbox. Callers
//! that wait for an answer register a waiter by the message id; it is released once the turn
//! that answers is recorded, so the transcript they read next already holds it. While the
//! answer is written, waiters see each draft of it (for streamed API answers).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::adapter::{Adapter, AdapterError};
use super::inbound::{Inbound, InboundError, Receipt};
use crate::conversation_id::{ConversationId, Platform};
use crate::message::{Draft, InboundMessage, OutboundContent, OutboundResponse, TokenUsage};

/// The answer to one portal message: text, or `None` when the agent skipped.
#[derive(Debug, Clone)]
pub struct PortalReply {
    pub content: Option<String>,
    /// Tokens the turn that answered spent.
    pub usage: TokenUsage,
}

/// Someone waiting for the answer to one message, and the drafts of it so far.
struct Waiter {
    reply: oneshot::Sender<PortalReply>,
    draft: watch::Sender<String>,
}

type Waiters = Arc<Mutex<HashMap<String, Waiter>>>;

#[derive(Default)]
pub struct Portal {
    waiters: Waiters,
    /// Where submitted messages go; attached when messaging starts.
    inbound: OnceLock<Inbound>,
}

impl Portal {
    /// Connects the portal to the daemon's inbound path.
    pub(super) fn attach(&self, inbound: Inbound) {
        if self.inbound.set(inbound).is_err() {
            tracing::warn!("the portal was attached twice; keeping the first");
        }
    }

    /// Hands a message in, like any platform does, and says what became of it.
    pub async fn submit(&self, message: InboundMessage) -> Result<Receipt, InboundError> {
        let inbound = self.inbound.get().ok_or(InboundError::NotReady)?;
        inbound.deliver(message).await
    }

    /// Registers interest in the answer to `message_id`. Register before submitting the
    /// message, so a fast answer cannot be missed.
    pub fn wait_for(&self, message_id: &str) -> PortalWaiter {
        let (sender, receiver) = oneshot::channel();
        let (draft, drafts) = watch::channel(String::new());
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.insert(
                message_id.to_string(),
                Waiter {
                    reply: sender,
                    draft,
                },
            );
        }
        PortalWaiter {
            receiver,
            drafts,
            message_id: message_id.to_string(),
            waiters: self.waiters.clone(),
        }
    }

    /// Releases every waiter without an answer (at shutdown).
    pub fn close(&self) {
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.clear();
        }
    }
}

#[async_trait::async_trait]
impl Adapter for Portal {
    fn platform(&self) -> Platform {
        Platform::Portal
    }

    /// Callers get the whole answer at once.
    fn message_limit(&self) -> usize {
        usize::MAX
    }

    /// Callers see no typing indicator; the event stream shows a turn's progress.
    fn typing_interval(&self) -> Option<Duration> {
        None
    }

    /// Nothing to connect to: the portal is up while the daemon is.
    async fn start(&self, inbound: Inbound, stop: CancellationToken) -> Result<(), AdapterError> {
        inbound.connected();
        stop.cancelled().await;
        Ok(())
    }

    /// Nothing to send: the caller hears the answer once the turn is recorded (`recorded`),
    /// and streams read the event bus.
    async fn respond(
        &self,
        _conversation: &ConversationId,
        _text: &str,
        _reply_to: Option<&str>,
    ) -> Result<(), AdapterError> {
        Ok(())
    }

    async fn typing(&self, _conversation: &ConversationId) -> Result<(), AdapterError> {
        Ok(())
    }

    /// Hands the answer to the callers waiting for the messages it answers.
    fn recorded(&self, response: &OutboundResponse) {
        let reply = PortalReply {
            content: match &response.content {
                OutboundContent::Skip => None,
                content => content.text().map(str::to_string),
            },
            usage: response.usage,
        };
        let Ok(mut waiters) = self.waiters.lock() else {
            return;
        };
        for id in &response.in_reply_to {
            if let Some(waiter) = waiters.remove(id) {
                // The caller may have gone away; its answer is still stored.
                let _ = waiter.reply.send(reply.clone());
            }
        }
    }

    /// Hands each draft to the callers waiting for the messages it will answer.
    fn draft(&self, draft: &Draft<'_>) {
        let Ok(waiters) = self.waiters.lock() else {
            return;
        };
        for id in draft.in_reply_to {
            if let Some(waiter) = waiters.get(id) {
                waiter.draft.send_replace(draft.text.to_string());
            }
        }
    }
}

/// A pending answer. Dropping it unregisters the waiter.
pub struct PortalWaiter {
    receiver: oneshot::Receiver<PortalReply>,
    drafts: watch::Receiver<String>,
    message_id: String,
    waiters: Waiters,
}

impl PortalWaiter {
    /// Waits for the answer; `None` if the daemon dropped the turn (it is shutting down).
    pub async fn reply(&mut self) -> Option<PortalReply> {
        (&mut self.receiver).await.ok()
    }

    /// The next draft of the answer, or the answer once it is recorded.
    pub async fn next(&mut self) -> Progress {
        tokio::select! {
            biased;
            reply = &mut self.receiver => match reply {
                Ok(reply) => Progress::Answered(reply),
                Err(_) => Progress::Dropped,
            },
            changed = self.drafts.changed() => match changed {
                Ok(()) => Progress::Draft(self.drafts.borrow_and_update().clone()),
                // The draft sender went with the reply sender; the reply is next.
                Err(_) => match (&mut self.receiver).await {
                    Ok(reply) => Progress::Answered(reply),
                    Err(_) => Progress::Dropped,
                },
            },
        }
    }
}

/// What a waiter heard next.
#[derive(Debug)]
pub enum Progress {
    /// The answer so far (all of it).
    Draft(String),
    Answered(PortalReply),
    /// The daemon dropped the turn (it is shutting down).
    Dropped,
}

impl Drop for PortalWaiter {
    fn drop(&mut self) {
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.remove(&self.message_id);
        }
    }
}
