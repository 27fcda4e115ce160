//! `reply`: the channel's way to answer the conversation.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolEffect, ToolOutput, parse_arguments};

pub struct Reply;

#[derive(Deserialize)]
struct Arguments {
    content: String,
}

impl Tool for Reply {
    fn name(&self) -> &'static str {
        "reply"
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "content": {"type": "string", "description": "The message to send."}
            },
            "required": ["content"]
        })
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, ToolOutput> {
        Box::pin(async move {
            let arguments: Arguments = match parse_arguments(self.name(), arguments) {
                Ok(arguments) => arguments,
                Err(output) => return output,
            };
            let content = arguments.content.trim();
            if content.is_empty() {
                return ToolOutput::error("`content` is empty; to stay silent call `skip`");
            }
            ToolOutput::success("sent").with_effect(ToolEffect::Reply {
                content: content.to_string(),
            })
        })
    }
}
