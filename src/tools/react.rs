//! `react`: an emoji reaction on the message a channel turn answers. The emoji is checked
//! here against what the conversation's platform takes (Slack wants a name it can be given),
//! so the model hears at once why one cannot be sent.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ChannelEffect, Tool, ToolCall, ToolOutput};
use crate::conversation_id::Platform;
use crate::message::emoji;

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
                "emoji": {"type": "string", "description": "One emoji, e.g. 👍, or its name, e.g. :thumbsup:"}
            },
            "required": ["emoji"]
        })
    }

    async fn call(&self, call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<ChannelEffect> {
        let emoji = arguments.emoji.trim().to_string();
        let named = emoji::name_in(&emoji).is_some();
        if !named
            && (emoji.is_empty()
                || emoji.chars().count() > MAXIMUM_EMOJI
                || emoji
                    .chars()
                    .any(|character| character.is_ascii_alphanumeric()))
        {
            return ToolOutput::error(
                "`emoji` must be one emoji, like 👍, or its name, like :thumbsup:",
            );
        }
        let sendable = if call.conversation.platform() == Platform::Slack {
            emoji::slack_name(&emoji).is_some()
        } else {
            emoji::unicode(&emoji).is_some()
        };
        if !sendable {
            return ToolOutput::error(format!(
                "`{emoji}` cannot be sent as a reaction here; use one of {}",
                emoji::known()
            ));
        }
        ToolOutput::effect(ChannelEffect::React { emoji })
    }
}
