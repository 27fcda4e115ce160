//! `cancel`: stop a running branch or worker.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ChannelEffect, Tool, ToolCall, ToolOutput};

pub struct Cancel;

#[derive(Deserialize)]
pub struct Arguments {
    process_id: String,
}

impl Tool<ChannelEffect> for Cancel {
    type Arguments = Arguments;
    const NAME: &'static str = "cancel";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/cancel.md.j2");
    const ACTS: bool = true;

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"process_id": {"type": "string"}},
            "required": ["process_id"]
        })
    }

    async fn call(&self, _call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<ChannelEffect> {
        ToolOutput::effect(ChannelEffect::Cancel {
            process_id: arguments.process_id,
        })
    }
}
