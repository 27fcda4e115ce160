//! `reply`: the channel's way to answer the conversation.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ChannelEffect, Tool, ToolCall, ToolOutput};

pub struct Reply;

#[derive(Deserialize)]
pub struct Arguments {
    content: String,
}

impl Tool<ChannelEffect> for Reply {
    type Arguments = Arguments;
    const NAME: &'static str = "reply";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/reply.md.j2");

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "content": {"type": "string", "description": "The message to send."}
            },
            "required": ["content"]
        })
    }

    async fn call(&self, _call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<ChannelEffect> {
        let content = arguments.content.trim();
        if content.is_empty() {
            return ToolOutput::error("`content` is empty; to stay silent call `skip`");
        }
        // The channel replaces this with whether the reply reached the conversation.
        ToolOutput::success("the reply is being delivered").with_effect(ChannelEffect::Reply {
            content: content.to_string(),
        })
    }
}
