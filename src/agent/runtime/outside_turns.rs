//! What enters a conversation outside any turn: a scheduled job's outcome sent there
//! (`announce`), and another agent's answer to what the conversation asked it
//! (`relay_answer`), each recorded so the conversation knows it.

use super::{AgentError, AgentRuntime};
use crate::agent::channel::{self, ChannelInput};
use crate::conversation::{ContextBody, MessageStatus, NewMessage, Role, TurnRecord};
use crate::conversation_id::ConversationId;
use crate::event::ProcessEvent;
use crate::message::{OutboundContent, OutboundResponse, new_message_id};
use rig::message::Message;

impl AgentRuntime {
    /// Sends `text` to a conversation outside any turn (a scheduled job's outcome), then
    /// records it there: in the transcript, in the context its channel's model sees, and on
    /// the event bus, so that conversation knows what it was sent.
    pub async fn announce(
        &self,
        conversation: &ConversationId,
        text: &str,
    ) -> Result<(), AgentError> {
        let agent = &self.agent;
        agent
            .outbox
            .deliver(&OutboundResponse {
                agent_id: self.id().to_string(),
                conversation: conversation.clone(),
                in_reply_to: Vec::new(),
                reply_to: None,
                content: OutboundContent::Text {
                    text: text.to_string(),
                },
                usage: Default::default(),
                turn_answer: false,
            })
            .await?;
        let conversation_id = conversation.as_str();
        let store = &agent.stores.conversations;
        let stored = store
            .insert(
                &NewMessage::sent_by_agent(
                    &new_message_id(),
                    conversation_id,
                    &agent.config.display_name,
                    text,
                ),
                false,
            )
            .await?;
        let (_, items) = store
            .record_turn(&TurnRecord {
                conversation_id,
                reply: None,
                answered: &[],
                answered_status: MessageStatus::Answered,
                context: vec![ContextBody::Message(Message::assistant(text))],
            })
            .await?;
        if let Some(channel) = self.running_channel(conversation) {
            // A channel that has just ended loads the stored context when it starts again.
            let _ = channel.offer(ChannelInput::Announced(items));
        }
        if let Some(stored) = stored {
            agent.tool_loop.events.publish(ProcessEvent::MessageSent {
                agent_id: self.id().to_string(),
                conversation_id: conversation_id.to_string(),
                message_id: stored.id,
                in_reply_to: Vec::new(),
                content: stored.content,
            });
        }
        Ok(())
    }

    /// Another agent answered (or did not) what this agent's `conversation` sent it: the
    /// answer is kept in the transcript (a message from that agent, already answered) and
    /// re-triggers the conversation's channel as a background result on `standing`.
    pub async fn relay_answer(
        &self,
        conversation: &ConversationId,
        from_agent: &str,
        question: &str,
        answer: crate::tools::AgentAnswer,
        standing: crate::message::Standing,
    ) -> Result<(), AgentError> {
        let result = channel::ProcessResult::AgentAnswered {
            agent: from_agent.to_string(),
            question: question.to_string(),
            answer,
        };
        let text = result.describe();
        let sender = format!("{from_agent} (agent)");
        let sender_id = format!("agent:{from_agent}");
        self.agent
            .stores
            .conversations
            .insert(
                &NewMessage {
                    id: &new_message_id(),
                    conversation_id: conversation.as_str(),
                    role: Role::User,
                    sender: &sender,
                    content: &text,
                    platform_message_id: None,
                    status: MessageStatus::Answered,
                    sender_id: Some(&sender_id),
                    authority: standing.authority,
                    direct: false,
                },
                false,
            )
            .await?;
        self.dispatch(
            conversation,
            ChannelInput::Result(channel::ProcessReport { standing, result }),
        )
        .await;
        Ok(())
    }
}
