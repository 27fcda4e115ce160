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
}

impl ProcessType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessType::Channel => "channel",
            ProcessType::Branch => "branch",
            ProcessType::Worker => "worker",
            ProcessType::Compactor => "compactor",
            ProcessType::Cortex => "cortex",
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
}

impl ProcessId {
    pub fn process_type(&self) -> ProcessType {
        match self {
            ProcessId::Channel(_) => ProcessType::Channel,
            ProcessId::Branch(_) => ProcessType::Branch,
            ProcessId::Worker(_) => ProcessType::Worker,
            ProcessId::Compactor(_) => ProcessType::Compactor,
            ProcessId::Cortex(_) => ProcessType::Cortex,
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

/// Lifecycle and progress of an agent's processes. Observers (the HTTP event stream, the
/// cortex) may lag and miss events; work that must not be lost never travels here.
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
    TurnFailed {
        agent_id: String,
        conversation_id: String,
        error: String,
    },
    ToolStarted {
        agent_id: String,
        process_id: ProcessId,
        tool: String,
    },
    ToolCompleted {
        agent_id: String,
        process_id: ProcessId,
        tool: String,
        is_error: bool,
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
            ProcessEvent::TurnFailed { .. } => "turn_failed",
            ProcessEvent::ToolStarted { .. } => "tool_started",
            ProcessEvent::ToolCompleted { .. } => "tool_completed",
            ProcessEvent::MemorySaved { .. } => "memory_saved",
        }
    }

    pub fn agent_id(&self) -> &str {
        match self {
            ProcessEvent::MessageReceived { agent_id, .. }
            | ProcessEvent::MessageSent { agent_id, .. }
            | ProcessEvent::TurnCompleted { agent_id, .. }
            | ProcessEvent::TurnFailed { agent_id, .. }
            | ProcessEvent::ToolStarted { agent_id, .. }
            | ProcessEvent::ToolCompleted { agent_id, .. }
            | ProcessEvent::MemorySaved { agent_id, .. } => agent_id,
        }
    }

    /// The conversation an event belongs to, when it belongs to one.
    pub fn conversation_id(&self) -> Option<&str> {
        match self {
            ProcessEvent::MessageReceived {
                conversation_id, ..
            }
            | ProcessEvent::MessageSent {
                conversation_id, ..
            }
            | ProcessEvent::TurnCompleted {
                conversation_id, ..
            }
            | ProcessEvent::TurnFailed {
                conversation_id, ..
            } => Some(conversation_id),
            ProcessEvent::ToolStarted { process_id, .. }
            | ProcessEvent::ToolCompleted { process_id, .. } => match process_id {
                ProcessId::Channel(conversation_id) => Some(conversation_id),
                ProcessId::Branch(_)
                | ProcessId::Worker(_)
                | ProcessId::Compactor(_)
                | ProcessId::Cortex(_) => None,
            },
            ProcessEvent::MemorySaved {
                conversation_id, ..
            } => conversation_id.as_deref(),
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
