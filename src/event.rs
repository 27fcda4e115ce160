//! Process identities and the per-agent broadcast bus of `ProcessEvent`s.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// The kinds of process an agent runs. Exhaustive on purpose: a new kind must break every
/// `match` that has to decide something about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessType {
    Channel,
    Branch,
    Worker,
    Compactor,
    Cortex,
    /// Automatic memory capture over a conversation's recent messages.
    Capture,
}

impl ProcessType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessType::Channel => "channel",
            ProcessType::Branch => "branch",
            ProcessType::Worker => "worker",
            ProcessType::Compactor => "compactor",
            ProcessType::Cortex => "cortex",
            ProcessType::Capture => "capture",
        }
    }
}

/// Identifies one running process of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum ProcessId {
    /// A channel is named by its conversation id.
    Channel(String),
    Branch(uuid::Uuid),
    Worker(uuid::Uuid),
    /// One compactor and one cortex per agent, named by the agent id.
    Compactor(String),
    Cortex(String),
    /// A capture pass is named by the conversation it reads.
    Capture(String),
}

impl ProcessId {
    pub fn process_type(&self) -> ProcessType {
        match self {
            ProcessId::Channel(_) => ProcessType::Channel,
            ProcessId::Branch(_) => ProcessType::Branch,
            ProcessId::Worker(_) => ProcessType::Worker,
            ProcessId::Compactor(_) => ProcessType::Compactor,
            ProcessId::Cortex(_) => ProcessType::Cortex,
            ProcessId::Capture(_) => ProcessType::Capture,
        }
    }
}

impl std::fmt::Display for ProcessId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcessId::Channel(conversation) => write!(formatter, "channel:{conversation}"),
            ProcessId::Branch(id) => write!(formatter, "branch:{id}"),
            ProcessId::Worker(id) => write!(formatter, "worker:{id}"),
            ProcessId::Compactor(agent) => write!(formatter, "compactor:{agent}"),
            ProcessId::Cortex(agent) => write!(formatter, "cortex:{agent}"),
            ProcessId::Capture(conversation) => write!(formatter, "capture:{conversation}"),
        }
    }
}

/// How a channel turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnOutcome {
    Replied,
    Skipped,
    Failed,
}

impl TurnOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            TurnOutcome::Replied => "replied",
            TurnOutcome::Skipped => "skipped",
            TurnOutcome::Failed => "failed",
        }
    }
}

/// The one terminal state of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
}

impl WorkerState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Succeeded => "succeeded",
            WorkerState::Failed => "failed",
            WorkerState::Cancelled => "cancelled",
            WorkerState::TimedOut => "timed_out",
        }
    }
}

/// Lifecycle and progress of an agent's processes. Observers (the HTTP event stream, the
/// cortex) may lag and miss events; work that must not be lost never travels here.
/// Every event names the conversation whose channel owns the process.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProcessEvent {
    MessageReceived {
        agent_id: String,
        conversation_id: String,
        message_id: String,
        sender: String,
        content: String,
    },
    MessageSent {
        agent_id: String,
        conversation_id: String,
        message_id: String,
        in_reply_to: Vec<String>,
        content: String,
    },
    TurnCompleted {
        agent_id: String,
        conversation_id: String,
        in_reply_to: Vec<String>,
        outcome: TurnOutcome,
    },
    /// The answer being written, as far as it may be shown (`text` is all of it so far; at
    /// most about ten of these a second). `message_sent` carries the final text.
    ReplyStreaming {
        agent_id: String,
        conversation_id: String,
        in_reply_to: Vec<String>,
        text: String,
    },
    TurnFailed {
        agent_id: String,
        conversation_id: String,
        error: String,
    },
    BranchStarted {
        agent_id: String,
        conversation_id: String,
        process_id: ProcessId,
        prompt: String,
    },
    BranchResult {
        agent_id: String,
        conversation_id: String,
        process_id: ProcessId,
        conclusion: String,
    },
    WorkerStarted {
        agent_id: String,
        conversation_id: String,
        process_id: ProcessId,
        task: String,
        interactive: bool,
    },
    WorkerStatus {
        agent_id: String,
        conversation_id: String,
        process_id: ProcessId,
        status: String,
    },
    WorkerComplete {
        agent_id: String,
        conversation_id: String,
        process_id: ProcessId,
        state: WorkerState,
        result: String,
    },
    ToolStarted {
        agent_id: String,
        conversation_id: String,
        process_id: ProcessId,
        tool: String,
    },
    /// A line of live output from a running tool (shell).
    ToolOutput {
        agent_id: String,
        conversation_id: String,
        process_id: ProcessId,
        tool: String,
        line: String,
    },
    ToolCompleted {
        agent_id: String,
        conversation_id: String,
        process_id: ProcessId,
        tool: String,
        is_error: bool,
    },
    CompactionStarted {
        agent_id: String,
        conversation_id: String,
        items: usize,
        tokens: usize,
    },
    CompactionCompleted {
        agent_id: String,
        conversation_id: String,
        removed_items: usize,
        /// True when the oldest history was dropped at once rather than summarised.
        dropped: bool,
    },
    /// A memory was saved, or a near-duplicate was updated (`merged`).
    MemorySaved {
        agent_id: String,
        memory_id: String,
        memory_type: String,
        merged: bool,
        /// Who saved it: `branch:{id}`, `api`, ...
        source: String,
        /// The conversation it came from, if any.
        conversation_id: Option<String>,
    },
}

impl ProcessEvent {
    /// The serde tag of the event, e.g. `message_sent`.
    pub fn name(&self) -> &'static str {
        match self {
            ProcessEvent::MessageReceived { .. } => "message_received",
            ProcessEvent::MessageSent { .. } => "message_sent",
            ProcessEvent::TurnCompleted { .. } => "turn_completed",
            ProcessEvent::ReplyStreaming { .. } => "reply_streaming",
            ProcessEvent::TurnFailed { .. } => "turn_failed",
            ProcessEvent::BranchStarted { .. } => "branch_started",
            ProcessEvent::BranchResult { .. } => "branch_result",
            ProcessEvent::WorkerStarted { .. } => "worker_started",
            ProcessEvent::WorkerStatus { .. } => "worker_status",
            ProcessEvent::WorkerComplete { .. } => "worker_complete",
            ProcessEvent::ToolStarted { .. } => "tool_started",
            ProcessEvent::ToolOutput { .. } => "tool_output",
            ProcessEvent::ToolCompleted { .. } => "tool_completed",
            ProcessEvent::CompactionStarted { .. } => "compaction_started",
            ProcessEvent::CompactionCompleted { .. } => "compaction_completed",
            ProcessEvent::MemorySaved { .. } => "memory_saved",
        }
    }

    pub fn agent_id(&self) -> &str {
        self.ids().0
    }

    /// The conversation whose channel the event belongs to, if any.
    pub fn conversation_id(&self) -> Option<&str> {
        self.ids().1
    }

    fn ids(&self) -> (&str, Option<&str>) {
        match self {
            ProcessEvent::MemorySaved {
                agent_id,
                conversation_id,
                ..
            } => (agent_id, conversation_id.as_deref()),
            ProcessEvent::MessageReceived {
                agent_id,
                conversation_id,
                ..
            }
            | ProcessEvent::MessageSent {
                agent_id,
                conversation_id,
                ..
            }
            | ProcessEvent::TurnCompleted {
                agent_id,
                conversation_id,
                ..
            }
            | ProcessEvent::TurnFailed {
                agent_id,
                conversation_id,
                ..
            }
            | ProcessEvent::ReplyStreaming {
                agent_id,
                conversation_id,
                ..
            }
            | ProcessEvent::BranchStarted {
                agent_id,
                conversation_id,
                ..
            }
            | ProcessEvent::BranchResult {
                agent_id,
                conversation_id,
                ..
            }
            | ProcessEvent::WorkerStarted {
                agent_id,
                conversation_id,
                ..
            }
            | ProcessEvent::WorkerStatus {
                agent_id,
                conversation_id,
                ..
            }
            | ProcessEvent::WorkerComplete {
                agent_id,
                conversation_id,
                ..
            }
            | ProcessEvent::ToolStarted {
                agent_id,
                conversation_id,
                ..
            }
            | ProcessEvent::ToolOutput {
                agent_id,
                conversation_id,
                ..
            }
            | ProcessEvent::ToolCompleted {
                agent_id,
                conversation_id,
                ..
            }
            | ProcessEvent::CompactionStarted {
                agent_id,
                conversation_id,
                ..
            }
            | ProcessEvent::CompactionCompleted {
                agent_id,
                conversation_id,
                ..
            } => (agent_id, Some(conversation_id)),
        }
    }
}

/// The broadcast bus of one agent. Publishing never blocks and never fails: with no
/// subscriber the event is simply not observed.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<ProcessEvent>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self { sender }
    }

    pub fn publish(&self, event: ProcessEvent) {
        // No subscriber is not an error: events are observations.
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ProcessEvent> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_match_their_serde_tags() {
        let event = ProcessEvent::WorkerComplete {
            agent_id: "main".into(),
            conversation_id: "portal:x".into(),
            process_id: ProcessId::Worker(uuid::Uuid::nil()),
            state: WorkerState::TimedOut,
            result: String::new(),
        };
        let value = serde_json::to_value(&event).expect("serializes");
        assert_eq!(value["event"], event.name());
        assert_eq!(value["state"], "timed_out");
        assert_eq!(value["process_id"]["type"], "worker");
    }
}
