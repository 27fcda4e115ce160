//! `set_status`: a worker's progress report, and the only way it finishes.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolEffect, ToolOutput, WorkerOutcome, parse_arguments};

pub struct SetStatus;

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum State {
    Working,
    Done,
    Failed,
}

#[derive(Deserialize)]
struct Arguments {
    state: State,
    message: String,
}

impl Tool for SetStatus {
    fn name(&self) -> &'static str {
        "set_status"
    }

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

    fn call(&self, arguments: Value) -> BoxFuture<'_, ToolOutput> {
        Box::pin(async move {
            let arguments = match parse_arguments::<Arguments>(self.name(), arguments) {
                Ok(arguments) => arguments,
                Err(output) => return output,
            };
            let outcome = match arguments.state {
                State::Working => None,
                State::Done => Some(WorkerOutcome::Succeeded),
                State::Failed => Some(WorkerOutcome::Failed),
            };
            ToolOutput::success("status recorded").with_effect(ToolEffect::Status {
                message: arguments.message,
                outcome,
            })
        })
    }
}
