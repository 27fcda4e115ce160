//! `react`: an emoji reaction on the message a channel turn answers.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ChannelEffect, Tool, ToolCall, ToolOutput};

/// An emoji is a few code points (skin tones, joiners); anything longer is not one.
const MAXIMUM_EMOJI: usize = 16;

pub struct React;

#[derive(Deserialize)]
pub struct Arguments {
    emoji: String,
}

impl Tool<ChannelEffect> for React {
    type Arguments = Arguments;
    const NAME: &'static str = "react";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/react.md.j2");

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "emoji": {"type": "string", "description": "One emoji, e.g. 👍"}
            },
            "required": ["emoji"]
        })
    }

    async fn call(&self, _call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<ChannelEffect> {
        let emoji = arguments.emoji.trim().to_string();
        if emoji.is_empty()
            || emoji.chars().count() > MAXIMUM_EMOJI
            || emoji
                .chars()
                .any(|character| character.is_ascii_alphanumeric())
        {
            return ToolOutput::error("`emoji` must be one emoji, like 👍");
        }
        ToolOutput::effect(ChannelEffect::React { emoji })
    }
}
