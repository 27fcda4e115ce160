//! `skip`: end a channel turn without answering.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ChannelEffect, Tool, ToolCall, ToolOutput};

pub struct Skip;

#[derive(Deserialize)]
pub struct Arguments {
    #[serde(default)]
    reason: String,
}

impl Tool<ChannelEffect> for Skip {
    type Arguments = Arguments;
    const NAME: &'static str = "skip";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/skip.md.j2");

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "Why no reply is needed (for the log)."}
            }
        })
    }

    async fn call(&self, _call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<ChannelEffect> {
        ToolOutput::success("skipped").with_effect(ChannelEffect::Skip {
            reason: arguments.reason,
        })
    }
}
