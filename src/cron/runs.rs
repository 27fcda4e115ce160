//! How a firing's answers reach the run waiting for them: the agent's outbox is wrapped in
//! `RunOutbox`, which hands what the channel of a `cron:` conversation delivers to the
//! `RunBoard` instead of to a platform, so the channel treats every conversation alike.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::CronService;
use crate::conversation_id::{ConversationId, Platform};
use crate::message::{DeliveryError, Draft, OutboundContent, OutboundResponse, Outbox};

/// What a firing's conversation tells the run waiting on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunReport {
    /// A turn answered with this text.
    Answer(String),
    /// A turn chose not to answer.
    Skipped,
    /// A turn failed (the LLM could not be reached).
    Failed(String),
    /// Nothing is left to do: no turn owed, no branch or worker running.
    Settled,
}

/// Runs waiting for the answers of their conversations.
#[derive(Default)]
pub struct RunBoard {
    runs: Mutex<HashMap<ConversationId, mpsc::UnboundedSender<RunReport>>>,
}

impl RunBoard {
    pub fn open(&self, conversation: &ConversationId) -> mpsc::UnboundedReceiver<RunReport> {
        let (sender, receiver) = mpsc::unbounded_channel();
        if let Ok(mut runs) = self.runs.lock() {
            runs.insert(conversation.clone(), sender);
        }
        receiver
    }

    /// Hands a report to the run of the conversation; false when no run waits for it.
    pub fn report(&self, conversation: &ConversationId, report: RunReport) -> bool {
        let sender = self
            .runs
            .lock()
            .ok()
            .and_then(|runs| runs.get(conversation).cloned());
        sender.is_some_and(|sender| sender.send(report).is_ok())
    }

    pub fn close(&self, conversation: &ConversationId) {
        if let Ok(mut runs) = self.runs.lock() {
            runs.remove(conversation);
        }
    }
}

/// An agent's outbox with its scheduled runs in front: `cron:` conversations report to the
/// run board, every other conversation goes to `platforms`.
pub struct RunOutbox {
    runs: Arc<CronService>,
    platforms: Arc<dyn Outbox>,
}

impl RunOutbox {
    pub fn new(runs: Arc<CronService>, platforms: Arc<dyn Outbox>) -> Self {
        Self { runs, platforms }
    }

    fn report(&self, conversation: &ConversationId, report: RunReport) {
        if !self.runs.board().report(conversation, report) {
            tracing::warn!(%conversation, "no scheduled run waits for this conversation any more; its answer is only recorded");
        }
    }
}

#[async_trait::async_trait]
impl Outbox for RunOutbox {
    async fn typing(&self, conversation: &ConversationId) {
        if conversation.platform() != Platform::Cron {
            self.platforms.typing(conversation).await;
        }
    }

    async fn deliver(&self, response: &OutboundResponse) -> Result<(), DeliveryError> {
        if response.conversation.platform() != Platform::Cron {
            return self.platforms.deliver(response).await;
        }
        let report = match &response.content {
            OutboundContent::Text { text } => RunReport::Answer(text.clone()),
            OutboundContent::Skip => RunReport::Skipped,
            OutboundContent::Failed { error, .. } => RunReport::Failed(error.clone()),
        };
        self.report(&response.conversation, report);
        Ok(())
    }

    fn recorded(&self, response: &OutboundResponse) {
        if response.conversation.platform() != Platform::Cron {
            self.platforms.recorded(response);
        }
    }

    fn settled(&self, conversation: &ConversationId) {
        if conversation.platform() == Platform::Cron {
            // A run may have ended (timed out) before its conversation settled.
            self.runs.board().report(conversation, RunReport::Settled);
        } else {
            self.platforms.settled(conversation);
        }
    }

    fn reaches(&self, conversation: &ConversationId) -> bool {
        conversation.platform() == Platform::Cron || self.platforms.reaches(conversation)
    }

    async fn react(
        &self,
        conversation: &ConversationId,
        message_id: &str,
        emoji: &str,
    ) -> Result<(), DeliveryError> {
        self.platforms.react(conversation, message_id, emoji).await
    }

    async fn send_file(
        &self,
        conversation: &ConversationId,
        file: &crate::message::OutboundFile,
    ) -> Result<(), DeliveryError> {
        if conversation.platform() == Platform::Cron {
            return Err(DeliveryError::Failed {
                conversation: conversation.clone(),
                reason: "a scheduled run has nobody to send a file to; its answer goes to the job's target".to_string(),
            });
        }
        self.platforms.send_file(conversation, file).await
    }

    /// A scheduled run's answer is delivered whole to its target; others stream as usual.
    fn stream(&self, draft: &Draft<'_>) {
        if draft.conversation.platform() != Platform::Cron {
            self.platforms.stream(draft);
        }
    }
}
