//! Delivering a turn's answer through the outbox and recording it: the answer goes out
//! first, then the turn (answer, context, the answered messages' status) is written in one
//! transaction, retried while the disk is full, and only then does the outbox hear it is
//! recorded. A crash before the record leaves the messages pending, to be answered again.

use std::time::Duration;

use rig::message::Message;

use super::Channel;
use super::turn::Answer;
use crate::agent::Agent;
use crate::agent::tool_loop::set_tool_result;
use crate::conversation::{
    ContextBody, ContextItem, MessageStatus, NewMessage, StoredMessage, TurnRecord,
};
use crate::event::{ProcessEvent, TurnOutcome};
use crate::message::{OutboundContent, OutboundResponse, TokenUsage, new_message_id};
use crate::supervision::Backoff;

/// Retrying a turn's record that could not be written: the first wait, doubling to the last.
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(500);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(30);

impl Channel {
    /// Sends the turn's answer, then records it with the turn's context. The triggering
    /// messages are closed only after the send, so a crash before it leaves them pending.
    /// Returns how the turn ended (an answer that could not be sent is a failed turn).
    pub(super) async fn deliver(
        &mut self,
        batch: Vec<StoredMessage>,
        answer: Answer,
        mut new: Vec<Message>,
        usage: TokenUsage,
    ) -> TurnOutcome {
        let agent = self.agent.clone();
        let in_reply_to: Vec<String> = batch.iter().map(|message| message.id.clone()).collect();
        let mut reply_call = None;
        let (content, answered_status, outcome) = match answer {
            Answer::Reply { text, call_id } => {
                reply_call = call_id;
                (
                    OutboundContent::Text { text },
                    MessageStatus::Answered,
                    TurnOutcome::Replied,
                )
            }
            Answer::Skip => (
                OutboundContent::Skip,
                MessageStatus::Skipped,
                TurnOutcome::Skipped,
            ),
            Answer::Failed(error) => {
                agent.tool_loop.events.publish(ProcessEvent::TurnFailed {
                    agent_id: agent.config.id.clone(),
                    conversation_id: self.conversation.to_string(),
                    error: error.clone(),
                });
                let text = format!("Sorry, I could not answer: {error}");
                new.push(Message::assistant(text.clone()));
                (
                    OutboundContent::Failed { error, text },
                    MessageStatus::Failed,
                    TurnOutcome::Failed,
                )
            }
        };
        let response = OutboundResponse {
            agent_id: agent.config.id.clone(),
            conversation: self.conversation.clone(),
            in_reply_to: in_reply_to.clone(),
            // Threaded under the last message answered that the platform knows.
            reply_to: batch
                .iter()
                .rev()
                .find_map(|message| message.platform_message_id.clone()),
            content,
            usage,
            turn_answer: true,
        };
        let delivered = agent.outbox.deliver(&response).await;
        if let Some(call_id) = &reply_call {
            // The model reads, in later turns, whether its reply reached the conversation.
            let text = match &delivered {
                Ok(()) => "delivered".to_string(),
                Err(error) => format!("error: the reply could not be delivered: {error}"),
            };
            set_tool_result(&mut new, call_id, &text);
        }
        let reply_id = new_message_id();
        let (reply, answered_status) = match (&delivered, response.content.text()) {
            (Ok(()), Some(text)) => (
                Some(NewMessage::sent_by_agent(
                    &reply_id,
                    self.conversation.as_str(),
                    &agent.config.display_name,
                    text,
                )),
                answered_status,
            ),
            (Ok(()), None) => (None, answered_status),
            (Err(error), _) => {
                tracing::error!(%error, "cannot deliver the answer; the messages are marked failed");
                (None, MessageStatus::Failed)
            }
        };
        let record = TurnRecord {
            conversation_id: self.conversation.as_str(),
            reply,
            answered: &in_reply_to,
            answered_status,
            context: new.into_iter().map(ContextBody::Message).collect(),
        };
        let recorded = record_until_stored(&agent, &record).await;
        agent.outbox.recorded(&response);
        for message in &batch {
            self.loaded.remove(&message.id);
        }
        let events = &agent.tool_loop.events;
        if let Some((stored, items)) = recorded {
            self.context_items.extend(items);
            if let Some(stored) = stored {
                events.publish(ProcessEvent::MessageSent {
                    agent_id: agent.config.id.clone(),
                    conversation_id: self.conversation.to_string(),
                    message_id: stored.id,
                    in_reply_to: in_reply_to.clone(),
                    content: stored.content,
                });
            }
        }
        if delivered.is_err() {
            return TurnOutcome::Failed;
        }
        events.publish(ProcessEvent::TurnCompleted {
            agent_id: agent.config.id.clone(),
            conversation_id: self.conversation.to_string(),
            in_reply_to,
            outcome,
        });
        outcome
    }
}

/// Records a delivered turn, retrying while the database cannot be written (a full disk, a
/// busy lock): until it is recorded its messages stay pending, and a restart would answer them
/// a second time. Gives up only on shutdown or on an error that retrying cannot cure.
async fn record_until_stored(
    agent: &Agent,
    record: &TurnRecord<'_>,
) -> Option<(Option<StoredMessage>, Vec<ContextItem>)> {
    let mut backoff = Backoff::new(RECORD_RETRY_FIRST, RECORD_RETRY_MAX);
    loop {
        let error = match agent.stores.conversations.record_turn(record).await {
            Ok(recorded) => return Some(recorded),
            Err(error) => error,
        };
        if !error.is_transient() {
            tracing::error!(%error, "the turn was delivered but cannot be recorded; its messages stay pending");
            return None;
        }
        let delay = backoff.next_wait();
        tracing::error!(%error, disk = error.is_disk_failure(), retry_in_ms = delay.as_millis() as u64, "the turn was delivered but cannot be recorded yet; retrying");
        tokio::select! {
            () = agent.lifecycle.closing.cancelled() => {
                tracing::error!("shutting down before the turn could be recorded; its messages stay pending and will be answered again after a restart");
                return None;
            }
            () = tokio::time::sleep(delay) => {}
        }
    }
}
