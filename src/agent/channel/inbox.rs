//! What a channel's inbox carries, and the directory in which a message finds its channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::conversation::{ContextItem, StoredMessage};
use crate::conversation_id::ConversationId;
use crate::event::{ProcessId, WorkerState};
use crate::message::Standing;

/// What a channel's inbox carries. Everything owed to a channel travels here (mpsc), never
/// over the lossy event bus.
#[derive(Debug)]
pub enum ChannelInput {
    /// A stored user message. Direct messages start a turn at once; group messages coalesce.
    Message {
        message: StoredMessage,
        direct: bool,
    },
    /// Look in the store for messages still owed an answer.
    Wake,
    /// A branch or worker reporting back.
    Result(ProcessReport),
    /// A background summary finished (or failed).
    Compacted(Compaction),
    /// `/new`: forget the context held so far (the store is already reset).
    Reset,
    /// Something was sent to the conversation from outside a turn (a scheduled job's
    /// outcome); these context items, already stored, record it.
    Announced(Vec<ContextItem>),
    /// Stop after the current turn (a scheduled run is over).
    Close,
}

/// A branch's or worker's report to its channel, with the standing of the turn that started
/// it (a turn it re-triggers works on that standing).
#[derive(Debug, Clone)]
pub struct ProcessReport {
    pub standing: Standing,
    pub result: ProcessResult,
}

#[derive(Debug, Clone)]
pub enum ProcessResult {
    BranchConcluded {
        process_id: ProcessId,
        prompt: String,
        conclusion: String,
    },
    WorkerFinished {
        process_id: ProcessId,
        task: String,
        state: WorkerState,
        result: String,
    },
    /// An interactive worker said something and waits for a follow-up (`route`).
    WorkerWaiting {
        process_id: ProcessId,
        task: String,
        message: String,
    },
    /// Another agent answered a message sent with `send_agent_message`.
    AgentAnswered {
        agent: String,
        question: String,
        answer: crate::tools::AgentAnswer,
    },
}

impl ProcessResult {
    /// One line for the model: which process, what it was for, what came of it.
    pub fn describe(&self) -> String {
        match self {
            ProcessResult::BranchConcluded {
                process_id,
                prompt,
                conclusion,
            } => format!(
                "{process_id} (\"{}\") concluded: {conclusion}",
                excerpt(prompt, 120)
            ),
            ProcessResult::WorkerFinished {
                process_id,
                task,
                state,
                result,
            } => format!(
                "{process_id} (\"{}\") {}: {result}",
                excerpt(task, 120),
                state.as_str()
            ),
            ProcessResult::WorkerWaiting {
                process_id,
                task,
                message,
            } => format!(
                "{process_id} (\"{}\") is waiting for a follow-up (send it with `route`): {message}",
                excerpt(task, 120)
            ),
            ProcessResult::AgentAnswered {
                agent,
                question,
                answer,
            } => {
                let question = excerpt(question, 120);
                match answer {
                    crate::tools::AgentAnswer::Text(text) => {
                        format!("agent `{agent}` answered your message (\"{question}\"): {text}")
                    }
                    crate::tools::AgentAnswer::Skipped => format!(
                        "agent `{agent}` read your message (\"{question}\") and chose not to answer"
                    ),
                    crate::tools::AgentAnswer::Failed(error) => format!(
                        "agent `{agent}` could not answer your message (\"{question}\"): {error}"
                    ),
                }
            }
        }
    }
}

/// A finished background summary of the items `first..=last`.
#[derive(Debug)]
pub struct Compaction {
    pub first: i64,
    pub last: i64,
    pub count: usize,
    pub summary: Result<String, crate::llm::LlmError>,
}

/// The running channels of an agent, by conversation: where a message finds its channel.
pub type ChannelDirectory = Arc<Mutex<HashMap<ConversationId, ChannelHandle>>>;

/// How the rest of the agent reaches a running channel. Its inbox is bounded; a sender that
/// must not wait (the router) offers inputs instead of sending them, and when the inbox is
/// full the channel is told to read the store again, which holds everything offered.
#[derive(Debug, Clone)]
pub struct ChannelHandle {
    sender: mpsc::Sender<ChannelInput>,
    stale: Arc<AtomicBool>,
}

/// The channel behind a handle has stopped.
#[derive(Debug)]
pub struct ChannelGone(pub Box<ChannelInput>);

impl ChannelHandle {
    pub fn new(sender: mpsc::Sender<ChannelInput>, stale: Arc<AtomicBool>) -> Self {
        Self { sender, stale }
    }

    /// Hands over an input whose effect is already in the store (a stored message, a reset
    /// context, an announcement) without waiting: when the inbox is full, the channel reloads
    /// from the store instead.
    pub fn offer(&self, input: ChannelInput) -> Result<(), ChannelGone> {
        match self.sender.try_send(input) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stale.store(true, Ordering::Release);
                tracing::debug!("channel inbox full; it will read the store again");
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(input)) => Err(ChannelGone(Box::new(input))),
        }
    }

    /// Sends an input that exists nowhere else, waiting for room.
    pub async fn send(&self, input: ChannelInput) -> Result<(), ChannelGone> {
        self.sender
            .send(input)
            .await
            .map_err(|mpsc::error::SendError(input)| ChannelGone(Box::new(input)))
    }

    /// Inputs waiting in the inbox.
    pub fn depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    /// Whether `sender` is this channel's inbox.
    pub fn is(&self, sender: &mpsc::Sender<ChannelInput>) -> bool {
        self.sender.same_channel(sender)
    }

    pub fn same_channel(&self, other: &ChannelHandle) -> bool {
        self.sender.same_channel(&other.sender)
    }
}

/// The first `limit` characters of `text`, with an ellipsis when cut.
pub fn excerpt(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let cut: String = text.chars().take(limit).collect();
    format!("{cut}…")
}
