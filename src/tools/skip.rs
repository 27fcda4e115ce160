//! `skip`: end a channel turn without answering.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolEffect, ToolOutput, parse_arguments};

pub struct Skip;

#[derive(Deserialize)]
struct Arguments {
    #[serde(default)]
    reason: String,
}

impl Tool for Skip {
    fn name(&self) -> &'static str {
        "skip"
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "Why no reply is needed (for the log)."}
            }
        })
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, ToolOutput> {
        Box::pin(async move {
            match parse_arguments::<Arguments>(self.name(), arguments) {
                Ok(arguments) => ToolOutput::success("skipped").with_effect(ToolEffect::Skip {
                    reason: arguments.reason,
                }),
                Err(output) => output,
            }
        })
    }
}
