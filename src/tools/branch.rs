//! `branch`: fork the channel into a thinking branch.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolEffect, ToolOutput, parse_arguments};

pub struct Branch;

#[derive(Deserialize)]
struct Arguments {
    prompt: String,
}

impl Tool for Branch {
    fn name(&self) -> &'static str {
        "branch"
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"prompt": {"type": "string", "description": "What the branch should figure out."}},
            "required": ["prompt"]
        })
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, ToolOutput> {
        Box::pin(async move {
            match parse_arguments::<Arguments>(self.name(), arguments) {
                Ok(arguments) if arguments.prompt.trim().is_empty() => {
                    ToolOutput::error("`prompt` is empty")
                }
                Ok(arguments) => ToolOutput::effect(ToolEffect::Branch {
                    prompt: arguments.prompt.trim().to_string(),
                }),
                Err(output) => output,
            }
        })
    }
}
