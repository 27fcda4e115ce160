//! `branch`: fork the channel into a thinking branch.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ChannelEffect, Tool, ToolCall, ToolOutput};

pub struct Branch;

#[derive(Deserialize)]
pub struct Arguments {
    prompt: String,
}

impl Tool<ChannelEffect> for Branch {
    type Arguments = Arguments;
    const NAME: &'static str = "branch";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/branch.md.j2");

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"prompt": {"type": "string", "description": "What the branch should figure out."}},
            "required": ["prompt"]
        })
    }

    async fn call(&self, _call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<ChannelEffect> {
        let prompt = arguments.prompt.trim();
        if prompt.is_empty() {
            return ToolOutput::error("`prompt` is empty");
        }
        ToolOutput::effect(ChannelEffect::Branch {
            prompt: prompt.to_string(),
        })
    }
}
