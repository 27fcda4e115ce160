//! The channel: one task per conversation, the user-facing LLM process. It runs one turn at a
//! time and queues what arrives meanwhile; each turn delivers exactly one answer (or none).

use std::collections::{HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use rig::OneOrMany;
use rig::message::{AssistantContent, Message, ToolResult, ToolResultContent, UserContent};
use tokio::sync::mpsc;

use super::AgentContext;
use crate::conversation::{MessageStatus, NewMessage, Role, StoredMessage};
use crate::event::{ProcessEvent, ProcessId, TurnOutcome};
use crate::llm::LlmRequest;
use crate::messaging::{OutboundContent, OutboundResponse, new_message_id};
use crate::tools::ToolEffect;

/// What a channel's inbox carries.
#[derive(Debug)]
pub enum ChannelInput {
    /// A stored user message.
    Message(StoredMessage),
    /// Look in the store for messages still owed an answer.
    Wake,
}

/// How a turn ended, before delivery.
enum TurnResult {
    Reply(String),
    Skip,
    Failed(String),
}

pub struct Channel {
    context: Arc<AgentContext>,
    conversation_id: String,
    process_id: ProcessId,
    inbox: mpsc::Receiver<ChannelInput>,
    /// Recent transcript (answered, skipped or failed messages and replies), oldest first.
    history: VecDeque<StoredMessage>,
    /// User messages waiting for the next turn.
    pending: Vec<StoredMessage>,
    /// Ids already taken from the store, so an inbox copy of the same message is not run twice.
    loaded: HashSet<String>,
    system_prompt: String,
}

impl Channel {
    pub fn new(
        context: Arc<AgentContext>,
        conversation_id: String,
        inbox: mpsc::Receiver<ChannelInput>,
    ) -> Self {
        Self {
            process_id: ProcessId::Channel(conversation_id.clone()),
            context,
            conversation_id,
            inbox,
            history: VecDeque::new(),
            pending: Vec::new(),
            loaded: HashSet::new(),
            system_prompt: String::new(),
        }
    }

    pub async fn run(mut self) {
        if let Err(error) = self.load().await {
            tracing::error!(%error, "cannot load the conversation; the channel stops and its messages stay pending");
            return;
        }
        loop {
            if self.pending.is_empty() {
                match self.inbox.recv().await {
                    Some(input) => self.accept(input).await,
                    None => break,
                }
            }
            while let Ok(input) = self.inbox.try_recv() {
                self.accept(input).await;
            }
            if self.pending.is_empty() {
                continue;
            }
            let batch = std::mem::take(&mut self.pending);
            let result = AssertUnwindSafe(self.run_turn(&batch))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    tracing::error!("the turn panicked");
                    TurnResult::Failed("an internal error interrupted this turn".to_string())
                });
            self.deliver(batch, result).await;
        }
        tracing::debug!("channel stopped");
    }

    async fn load(&mut self) -> Result<(), crate::conversation::StoreError> {
        let store = &self.context.store;
        let recent = store
            .recent(&self.conversation_id, self.context.config.history_messages)
            .await?;
        self.history = recent
            .into_iter()
            .filter(|message| message.status != MessageStatus::Pending)
            .collect();
        self.pending = store.pending(&self.conversation_id).await?;
        self.loaded = self
            .pending
            .iter()
            .map(|message| message.id.clone())
            .collect();
        let identity = &self.context.identity;
        self.system_prompt = self
            .context
            .prompts
            .render(
                "channel",
                minijinja::context! {
                    agent_name => &self.context.config.display_name,
                    conversation_id => &self.conversation_id,
                    soul => &identity.soul,
                    identity => &identity.identity,
                    role => &identity.role,
                    notices => Vec::<String>::new(),
                },
            )
            .unwrap_or_else(|error| {
                tracing::error!(%error, "cannot render the channel prompt");
                String::new()
            });
        Ok(())
    }

    async fn accept(&mut self, input: ChannelInput) {
        match input {
            ChannelInput::Message(message) => {
                if !self.loaded.contains(&message.id) {
                    self.pending.push(message);
                }
            }
            ChannelInput::Wake => match self.context.store.pending(&self.conversation_id).await {
                Ok(stored) => {
                    for message in stored {
                        let known = self.loaded.contains(&message.id)
                            || self.pending.iter().any(|queued| queued.id == message.id);
                        if !known {
                            self.loaded.insert(message.id.clone());
                            self.pending.push(message);
                        }
                    }
                }
                Err(error) => tracing::error!(%error, "cannot read pending messages"),
            },
        }
    }

    async fn run_turn(&self, batch: &[StoredMessage]) -> TurnResult {
        let context = &self.context;
        // The memory block is rendered every turn (cached until the store changes).
        let memories = context.memory.prompt_block(&context.prompts).await;
        let mut system = self.system_prompt.clone();
        if !memories.is_empty() {
            system = format!("{system}\n\n{memories}");
        }
        let mut request = LlmRequest {
            system,
            messages: conversation_messages(self.history.iter().chain(batch)),
            tools: context.channel_tools.definitions().to_vec(),
        };
        let mut answer: Option<TurnResult> = None;
        for _ in 0..context.config.max_turns {
            let response = match context
                .llm
                .complete(
                    &context.config.routing,
                    &self.process_id,
                    &request,
                    &context.usage,
                )
                .await
            {
                Ok(response) => response,
                Err(error) => {
                    tracing::error!(%error, "LLM call failed");
                    return TurnResult::Failed(error.to_string());
                }
            };
            let mut text = String::new();
            let mut calls = Vec::new();
            for content in &response.content {
                match content {
                    AssistantContent::Text(part) => text.push_str(&part.text),
                    AssistantContent::ToolCall(call) => calls.push(call.clone()),
                    AssistantContent::Reasoning(_) | AssistantContent::Image(_) => {}
                }
            }
            if calls.is_empty() {
                // No tool call: the final text is the answer (models without tool calling).
                let text = text.trim();
                return if text.is_empty() {
                    TurnResult::Skip
                } else {
                    TurnResult::Reply(text.to_string())
                };
            }
            let mut results = Vec::with_capacity(calls.len());
            for call in calls {
                let name = call.function.name.clone();
                context.events.publish(ProcessEvent::ToolStarted {
                    agent_id: context.agent_id.clone(),
                    process_id: self.process_id.clone(),
                    tool: name.clone(),
                });
                let output = if answer.is_some() && (name == "reply" || name == "skip") {
                    crate::tools::ToolOutput::error(
                        "this turn is already answered; a turn gets one reply or skip",
                    )
                } else {
                    context
                        .channel_tools
                        .call(&name, call.function.arguments.clone())
                        .await
                };
                tracing::debug!(tool = %name, is_error = output.is_error, "tool call");
                context.events.publish(ProcessEvent::ToolCompleted {
                    agent_id: context.agent_id.clone(),
                    process_id: self.process_id.clone(),
                    tool: name,
                    is_error: output.is_error,
                });
                match output.effect {
                    Some(ToolEffect::Reply { content }) => {
                        answer = Some(TurnResult::Reply(content))
                    }
                    Some(ToolEffect::Skip { reason }) => {
                        tracing::debug!(%reason, "skipping");
                        answer = Some(TurnResult::Skip);
                    }
                    None => {}
                }
                results.push(UserContent::ToolResult(ToolResult {
                    id: call.id.clone(),
                    call_id: call.call_id.clone(),
                    content: OneOrMany::one(ToolResultContent::text(output.content)),
                }));
            }
            if let Some(answer) = answer {
                return answer;
            }
            if let Ok(content) = OneOrMany::many(response.content) {
                request
                    .messages
                    .push(Message::Assistant { id: None, content });
            }
            if let Ok(content) = OneOrMany::many(results) {
                request.messages.push(Message::User { content });
            }
        }
        TurnResult::Failed(format!(
            "the model did not answer within {} steps",
            context.config.max_turns
        ))
    }

    /// Sends the turn's answer, then records it. The triggering messages are closed only
    /// after the send, so a crash before it leaves them pending for the next start.
    async fn deliver(&mut self, batch: Vec<StoredMessage>, result: TurnResult) {
        let context = self.context.clone();
        let in_reply_to: Vec<String> = batch.iter().map(|message| message.id.clone()).collect();
        let (content, answered_status, outcome) = match result {
            TurnResult::Reply(text) => (
                OutboundContent::Text(text),
                MessageStatus::Answered,
                TurnOutcome::Replied,
            ),
            TurnResult::Skip => (
                OutboundContent::Skip,
                MessageStatus::Skipped,
                TurnOutcome::Skipped,
            ),
            TurnResult::Failed(error) => {
                context.events.publish(ProcessEvent::TurnFailed {
                    agent_id: context.agent_id.clone(),
                    conversation_id: self.conversation_id.clone(),
                    error: error.clone(),
                });
                (
                    OutboundContent::Text(format!("Sorry, I could not answer: {error}")),
                    MessageStatus::Failed,
                    TurnOutcome::Failed,
                )
            }
        };
        let response = OutboundResponse {
            agent_id: context.agent_id.clone(),
            conversation_id: self.conversation_id.clone(),
            in_reply_to: in_reply_to.clone(),
            content: content.clone(),
        };
        if let Err(error) = context.messaging.deliver(response).await {
            tracing::error!(%error, "cannot deliver the answer; the messages are marked failed");
            if let Err(error) = context
                .store
                .close(&in_reply_to, MessageStatus::Failed)
                .await
            {
                tracing::error!(%error, "cannot record the failed delivery");
            }
            self.remember(batch, MessageStatus::Failed, None);
            return;
        }
        let reply = match content {
            OutboundContent::Text(text) => {
                let id = new_message_id();
                let recorded = context
                    .store
                    .record_reply(
                        &NewMessage {
                            id: &id,
                            conversation_id: &self.conversation_id,
                            role: Role::Assistant,
                            sender: &context.config.display_name,
                            content: &text,
                            platform_message_id: None,
                            status: MessageStatus::Sent,
                        },
                        &in_reply_to,
                        answered_status,
                    )
                    .await;
                match recorded {
                    Ok(stored) => {
                        context.events.publish(ProcessEvent::MessageSent {
                            agent_id: context.agent_id.clone(),
                            conversation_id: self.conversation_id.clone(),
                            message_id: stored.id.clone(),
                            in_reply_to: in_reply_to.clone(),
                            content: stored.content.clone(),
                        });
                        Some(stored)
                    }
                    Err(error) => {
                        tracing::error!(%error, "reply sent but not recorded");
                        None
                    }
                }
            }
            OutboundContent::Skip => {
                if let Err(error) = context.store.close(&in_reply_to, answered_status).await {
                    tracing::error!(%error, "cannot record the skip");
                }
                None
            }
        };
        context.events.publish(ProcessEvent::TurnCompleted {
            agent_id: context.agent_id.clone(),
            conversation_id: self.conversation_id.clone(),
            in_reply_to,
            outcome,
        });
        self.remember(batch, answered_status, reply);
    }

    fn remember(
        &mut self,
        batch: Vec<StoredMessage>,
        status: MessageStatus,
        reply: Option<StoredMessage>,
    ) {
        for mut message in batch {
            self.loaded.remove(&message.id);
            message.status = status;
            self.history.push_back(message);
        }
        self.history.extend(reply);
        let limit = self.context.config.history_messages;
        while self.history.len() > limit {
            self.history.pop_front();
        }
    }
}

/// Turns a transcript into LLM messages: consecutive messages of one role are merged (several
/// people talking, or unanswered messages), and a leading assistant message is dropped, since
/// some providers require the conversation to open with the user.
fn conversation_messages<'a>(transcript: impl Iterator<Item = &'a StoredMessage>) -> Vec<Message> {
    let mut merged: Vec<(Role, String)> = Vec::new();
    for message in transcript {
        match merged.last_mut() {
            Some((role, text)) if *role == message.role => {
                text.push_str("\n\n");
                text.push_str(&message.content);
            }
            _ => merged.push((message.role, message.content.clone())),
        }
    }
    merged
        .into_iter()
        .skip_while(|(role, _)| *role == Role::Assistant)
        .map(|(role, text)| match role {
            Role::User => Message::user(text),
            Role::Assistant => Message::assistant(text),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: Role, content: &str) -> StoredMessage {
        StoredMessage {
            id: new_message_id(),
            conversation_id: "portal:test".into(),
            role,
            sender: "someone".into(),
            content: content.into(),
            platform_message_id: None,
            status: MessageStatus::Answered,
            created_at: 0,
        }
    }

    #[test]
    fn transcript_merges_roles_and_opens_with_the_user() {
        let transcript = [
            message(Role::Assistant, "left over"),
            message(Role::User, "one"),
            message(Role::User, "two"),
            message(Role::Assistant, "answer"),
            message(Role::User, "three"),
        ];
        let messages = conversation_messages(transcript.iter());
        assert_eq!(
            messages,
            vec![
                Message::user("one\n\ntwo"),
                Message::assistant("answer"),
                Message::user("three"),
            ]
        );
    }
}
