//! `route`: a follow-up message for a running interactive worker.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ChannelEffect, Tool, ToolCall, ToolOutput};

pub struct Route;

#[derive(Deserialize)]
pub struct Arguments {
    worker_id: String,
    message: String,
}

impl Tool<ChannelEffect> for Route {
    type Arguments = Arguments;
    const NAME: &'static str = "route";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/route.md.j2");
    const ACTS: bool = true;

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "worker_id": {"type": "string"},
                "message": {"type": "string"}
            },
            "required": ["worker_id", "message"]
        })
    }

    async fn call(&self, _call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<ChannelEffect> {
        ToolOutput::effect(ChannelEffect::Route {
            worker_id: arguments.worker_id,
            message: arguments.message,
        })
    }
}
