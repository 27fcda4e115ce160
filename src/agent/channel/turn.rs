//! One channel turn: build the request (prompt, status block, memories, history, the new
//! input), run the tool loop with the channel's tools while the answer streams to the
//! outbox, and carry out what the tools ask. A request the model's window cannot hold gets
//! one emergency compaction and one more try.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use rig::message::Message;

use super::Channel;
use super::scheduler::Trigger;
use super::stream::AnswerStream;
use crate::agent::tool_loop::{CallResult, Handled, LoopEnd, LoopScope};
use crate::agent::{attachments, branch, worker};
use crate::conversation::StoredMessage;
use crate::conversation_id::{ConversationId, Platform};
use crate::llm::{LlmError, LlmRequest};
use crate::memory::Audience;
use crate::message::Standing;
use crate::tools::ChannelEffect;

/// How a turn ended, before delivery.
pub(super) enum Answer {
    /// The model answered; through the `reply` tool when `call_id` names its call.
    Reply {
        text: String,
        call_id: Option<String>,
    },
    Skip,
    Failed(String),
}

impl Channel {
    pub(super) async fn run_turn(&mut self, trigger: Trigger) {
        let started = std::time::Instant::now();
        self.agent.outbox.typing(&self.conversation).await;
        let (input, batch, standing) = match trigger {
            Trigger::Messages(batch) => {
                let standing = standing_of(&batch, &self.conversation);
                let files = attachments::for_turn(&self.agent, &batch).await;
                (
                    files.message(user_input(&batch, &files.notes)),
                    batch,
                    standing,
                )
            }
            Trigger::Results(reports) => {
                let standing = reports
                    .iter()
                    .map(|report| report.standing)
                    .reduce(Standing::weakest)
                    .unwrap_or(Standing::OWNER);
                let lines: Vec<String> = reports
                    .iter()
                    .map(|report| report.result.describe())
                    .collect();
                let input = self
                    .agent
                    .tool_loop
                    .render("retrigger", minijinja::context! { results => &lines });
                let input = if input.is_empty() {
                    lines.join("\n")
                } else {
                    input
                };
                (Message::user(input), Vec::new(), standing)
            }
        };
        // The memory block is cached by the store until its memories change. Its audience
        // is who takes part in this conversation.
        let audience = Audience::of(standing, self.conversation.as_str());
        let memories = self
            .agent
            .stores
            .memory
            .prompt_block(&self.agent.tool_loop.prompts, &audience)
            .await;
        let mut system = self.system_with_status();
        if !memories.is_empty() {
            system = format!("{system}\n\n{memories}");
        }
        let skills = self.agent.skills_prompt(false);
        if !skills.is_empty() {
            system = format!("{system}\n\n{skills}");
        }
        let speakers = self.speakers(&batch, standing);
        if !speakers.is_empty() {
            system = format!("{system}\n\n{speakers}");
        }
        let agent = self.agent.clone();
        let mut stream = AnswerStream::new(
            agent.outbox.clone(),
            agent.tool_loop.events.clone(),
            agent.tool_loop.redactor.clone(),
            &agent.config.id,
            &self.conversation,
            batch.iter().map(|message| message.id.clone()).collect(),
            batch
                .iter()
                .rev()
                .find_map(|message| message.platform_message_id.clone()),
        );
        let mut compacted = false;
        let (answer, new_context) = loop {
            let mut request = LlmRequest {
                system: system.clone(),
                messages: self.history(),
                tools: agent.tools.channel.definitions(standing.authority),
            };
            request.messages.push(input.clone());
            let turn_start = request.messages.len() - 1;
            let outcome = AssertUnwindSafe(self.converse(&mut request, standing, &mut stream))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    tracing::error!("the turn panicked");
                    Ok(Answer::Failed(
                        "an internal error interrupted this turn".to_string(),
                    ))
                });
            let answer = match outcome {
                Ok(answer) => answer,
                Err(error) => {
                    // Only a turn whose first call overflowed is run again: nothing it did
                    // (a worker started, a reply sent) would be done twice.
                    let untouched = request.messages.len() == turn_start + 1;
                    if !compacted && untouched && self.compact_now().await {
                        tracing::warn!(%error, "the context overflowed the model's window; compacted it, trying once more");
                        compacted = true;
                        continue;
                    }
                    tracing::error!(%error, "LLM call failed");
                    Answer::Failed(error.to_string())
                }
            };
            // Images are shown in their own turn only: the context keeps each file's line
            // (what it is, where it is stored), so history does not grow by the image.
            let new_context = request
                .messages
                .split_off(turn_start)
                .into_iter()
                .map(crate::llm::without_images)
                .collect();
            break (answer, new_context);
        };
        let usage = stream.usage;
        let outcome = self.deliver(batch, answer, new_context, usage).await;
        self.agent
            .metrics
            .turn(&self.agent.config.id, outcome.as_str(), started.elapsed());
    }

    /// The context as LLM messages, opening with a user message as some providers require.
    fn history(&self) -> Vec<Message> {
        let mut messages: Vec<Message> = self
            .context_items
            .iter()
            .map(|item| item.body.to_message())
            .skip_while(|message| !matches!(message, Message::User { .. }))
            .collect();
        // A conversation whose history opens with a tool result lost its call to a cut.
        while matches!(messages.first(), Some(message) if is_tool_result(message)) {
            messages.remove(0);
        }
        messages
    }

    /// Runs the turn's tool loop; `Err` only when the request overflowed the model's
    /// context window, which the caller may cure by compacting.
    async fn converse(
        &self,
        request: &mut LlmRequest,
        standing: Standing,
        stream: &mut AnswerStream,
    ) -> Result<Answer, LlmError> {
        let agent = &self.agent;
        let mut answered = false;
        let end = agent
            .tool_loop
            .run(
                LoopScope {
                    process_id: &self.process_id,
                    conversation: &self.conversation,
                    standing,
                },
                request,
                &agent.tools.channel,
                agent.config.max_turns,
                stream,
                |effect, result, history| {
                    self.apply(effect, result, history, standing, &mut answered)
                },
            )
            .await;
        Ok(match end {
            LoopEnd::Finished {
                value: Some(text),
                call_id,
            } => Answer::Reply {
                text,
                call_id: Some(call_id),
            },
            LoopEnd::Finished { value: None, .. } => Answer::Skip,
            LoopEnd::Text(text) if text.is_empty() => Answer::Skip,
            LoopEnd::Text(text) => Answer::Reply {
                text,
                call_id: None,
            },
            LoopEnd::TurnLimit => Answer::Failed(format!(
                "the model did not answer within {} steps",
                agent.config.max_turns
            )),
            LoopEnd::Unreadable => Answer::Failed(
                "the model kept writing tool calls that could not be read".to_string(),
            ),
            LoopEnd::Failed(error) if error.is_context_overflow() => return Err(error),
            LoopEnd::Failed(error) => {
                tracing::error!(%error, "LLM call failed");
                Answer::Failed(error.to_string())
            }
        })
    }

    /// Carries out a channel tool's effect; the result is what the model reads. The turn
    /// finishes with `Some(text)` for a reply and `None` for a skip.
    fn apply(
        &self,
        effect: ChannelEffect,
        result: CallResult,
        history: &[Message],
        standing: Standing,
        answered: &mut bool,
    ) -> Handled<Option<String>> {
        let agent = &self.agent;
        let conversation_id = self.conversation.as_str();
        match effect {
            ChannelEffect::Reply { .. } | ChannelEffect::Skip { .. } if *answered => {
                Handled::continue_with(CallResult::error(
                    "this turn is already answered; a turn gets one reply or skip",
                ))
            }
            ChannelEffect::Reply { content } => {
                *answered = true;
                Handled::finish(result, Some(content))
            }
            ChannelEffect::Skip { reason } => {
                *answered = true;
                tracing::debug!(%reason, "skipping");
                Handled::finish(result, None)
            }
            ChannelEffect::Branch { prompt } => Handled::continue_with(
                match branch::spawn(
                    agent,
                    &self.conversation,
                    standing,
                    self.results.clone(),
                    history,
                    prompt,
                ) {
                    Ok(id) => CallResult::success(format!(
                        "branch `{id}` started; its conclusion will come back to you"
                    )),
                    Err(error) => CallResult::error(error.to_string()),
                },
            ),
            ChannelEffect::SpawnWorker(request) => Handled::continue_with(
                match worker::spawn(
                    agent,
                    &self.conversation,
                    standing,
                    self.results.clone(),
                    request,
                ) {
                    Ok(id) => CallResult::success(format!(
                        "worker `{id}` started; its result will come back to you"
                    )),
                    Err(error) => CallResult::error(error.to_string()),
                },
            ),
            ChannelEffect::Route { worker_id, message } => Handled::continue_with(
                match agent.processes.route(conversation_id, &worker_id, message) {
                    Ok(id) => CallResult::success(format!("sent to `{id}`")),
                    Err(error) => CallResult::error(error.to_string()),
                },
            ),
            ChannelEffect::Cancel { process_id } => {
                Handled::continue_with(match agent.processes.cancel(conversation_id, &process_id) {
                    Ok(id) => CallResult::success(format!(
                        "cancelling `{id}`; you will hear when it has stopped"
                    )),
                    Err(error) => CallResult::error(error.to_string()),
                })
            }
        }
    }
}

/// On whose behalf a turn answering `batch` works: the weakest authority among its messages,
/// in private when that is the owner's and nobody else reads the conversation.
/// The standing a turn answering `batch` works on: the weakest authority among its senders,
/// private only when an owner is alone with the agent.
pub(in crate::agent) fn standing_of(
    batch: &[StoredMessage],
    conversation: &ConversationId,
) -> Standing {
    let authority = batch
        .iter()
        .map(|message| message.authority)
        .min()
        .unwrap_or(crate::message::Authority::Owner);
    let private = match conversation.platform() {
        Platform::Portal | Platform::Cron => true,
        Platform::Telegram | Platform::Discord | Platform::Slack => {
            batch.iter().all(|message| message.direct)
        }
    };
    Standing {
        authority,
        private: private && authority.may_act(),
    }
}

/// The user message of a turn: one message as it is; several (a coalesced burst, or messages
/// queued during a turn) with a note of who said what when more than one person spoke.
/// A message's files are noted after its text (`notes`, by message id).
fn user_input(batch: &[StoredMessage], notes: &HashMap<String, String>) -> String {
    let several_senders = batch
        .iter()
        .any(|message| message.sender != batch[0].sender);
    batch
        .iter()
        .map(|message| {
            let content = match notes.get(&message.id) {
                Some(note) if message.content.trim().is_empty() => note.clone(),
                Some(note) => format!("{}\n{note}", message.content),
                None => message.content.clone(),
            };
            if several_senders {
                format!("[{}]: {content}", message.sender)
            } else {
                content
            }
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn is_tool_result(message: &Message) -> bool {
    match message {
        Message::User { content } => content
            .iter()
            .any(|part| matches!(part, rig::message::UserContent::ToolResult(_))),
        Message::System { .. } | Message::Assistant { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{MessageStatus, Role};
    use crate::message::Authority;

    fn message(sender: &str, content: &str) -> StoredMessage {
        StoredMessage {
            id: crate::message::new_message_id(),
            conversation_id: "portal:test".into(),
            role: Role::User,
            sender: sender.into(),
            content: content.into(),
            platform_message_id: None,
            status: MessageStatus::Pending,
            created_at: 0,
            sender_id: None,
            authority: Authority::Owner,
            direct: true,
        }
    }

    #[test]
    fn a_burst_notes_who_said_what() {
        let notes = HashMap::new();
        assert_eq!(
            user_input(&[message("ana", "one"), message("ana", "two")], &notes),
            "one\n\ntwo"
        );
        assert_eq!(
            user_input(&[message("ana", "hi"), message("bo", "hello")], &notes),
            "[ana]: hi\n\n[bo]: hello"
        );
    }

    #[test]
    fn a_message_of_only_files_is_its_note() {
        let photo = message("ana", "");
        let captioned = message("ana", "look");
        let notes = HashMap::from([
            (photo.id.clone(), "[image attached]".to_string()),
            (captioned.id.clone(), "[image attached]".to_string()),
        ]);
        assert_eq!(
            user_input(&[photo, captioned], &notes),
            "[image attached]\n\nlook\n[image attached]"
        );
    }
}
