//! `spawn_worker`: start a worker on a self-contained task (channels and branches).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};

pub struct SpawnWorker;

/// A worker to start: its task, and whether it stays alive for follow-ups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRequest {
    pub task: String,
    pub interactive: bool,
}

#[derive(Deserialize)]
pub struct Arguments {
    task: String,
    #[serde(default)]
    interactive: bool,
}

impl<Effect: From<WorkerRequest> + Send + 'static> Tool<Effect> for SpawnWorker {
    type Arguments = Arguments;
    const NAME: &'static str = "spawn_worker";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/spawn_worker.md.j2");
    const ACTS: bool = true;

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "task": {"type": "string", "description": "The complete, self-contained task."},
                "interactive": {"type": "boolean", "description": "Keep the worker alive for follow-ups sent with route. Default false."}
            },
            "required": ["task"]
        })
    }

    async fn call(&self, _call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        let task = arguments.task.trim();
        if task.is_empty() {
            return ToolOutput::error("`task` is empty");
        }
        ToolOutput::effect(Effect::from(WorkerRequest {
            task: task.to_string(),
            interactive: arguments.interactive,
        }))
    }
}
