//! `set_status`: a worker's progress report, and the only way it finishes.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput, WorkerEffect};

pub struct SetStatus;

/// How a worker says it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerOutcome {
    Succeeded,
    Failed,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum State {
    Working,
    Done,
    Failed,
}

#[derive(Deserialize)]
pub struct Arguments {
    state: State,
    message: String,
}

impl Tool<WorkerEffect> for SetStatus {
    type Arguments = Arguments;
    const NAME: &'static str = "set_status";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/set_status.md.j2");

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "state": {"type": "string", "enum": ["working", "done", "failed"]},
                "message": {"type": "string", "description": "Progress, or the full result when finishing."}
            },
            "required": ["state", "message"]
        })
    }

    async fn call(&self, _call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<WorkerEffect> {
        let outcome = match arguments.state {
            State::Working => None,
            State::Done => Some(WorkerOutcome::Succeeded),
            State::Failed => Some(WorkerOutcome::Failed),
        };
        ToolOutput::success("status recorded").with_effect(WorkerEffect::Status {
            message: arguments.message,
            outcome,
        })
    }
}
