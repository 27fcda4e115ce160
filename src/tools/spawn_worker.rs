//! `spawn_worker`: start a worker on a self-contained task.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolEffect, ToolOutput, parse_arguments};

pub struct SpawnWorker;

#[derive(Deserialize)]
struct Arguments {
    task: String,
    #[serde(default)]
    interactive: bool,
}

impl Tool for SpawnWorker {
    fn name(&self) -> &'static str {
        "spawn_worker"
    }

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

    fn call(&self, arguments: Value) -> BoxFuture<'_, ToolOutput> {
        Box::pin(async move {
            match parse_arguments::<Arguments>(self.name(), arguments) {
                Ok(arguments) if arguments.task.trim().is_empty() => {
                    ToolOutput::error("`task` is empty")
                }
                Ok(arguments) => ToolOutput::effect(ToolEffect::SpawnWorker {
                    task: arguments.task.trim().to_string(),
                    interactive: arguments.interactive,
                }),
                Err(output) => output,
            }
        })
    }
}
