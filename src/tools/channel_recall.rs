//! `channel_recall`: search the conversation's full transcript.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::conversation::ConversationStore;

const DEFAULT_RESULTS: usize = 10;
const MAXIMUM_RESULTS: usize = 50;

pub struct ChannelRecall {
    store: ConversationStore,
}

impl ChannelRecall {
    pub fn new(store: ConversationStore) -> Self {
        Self { store }
    }
}

#[derive(Deserialize)]
pub struct Arguments {
    query: String,
    #[serde(default)]
    max_results: Option<usize>,
}

impl<Effect: Send + 'static> Tool<Effect> for ChannelRecall {
    type Arguments = Arguments;
    const NAME: &'static str = "channel_recall";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/channel_recall.md.j2");

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Words that must all appear."},
                "max_results": {"type": "integer", "minimum": 1, "maximum": MAXIMUM_RESULTS}
            },
            "required": ["query"]
        })
    }

    async fn call(&self, call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        let words: Vec<&str> = arguments.query.split_whitespace().collect();
        if words.is_empty() {
            return ToolOutput::error("`query` is empty");
        }
        let limit = arguments
            .max_results
            .unwrap_or(DEFAULT_RESULTS)
            .clamp(1, MAXIMUM_RESULTS);
        match self
            .store
            .search_transcript(call.conversation.as_str(), &words, limit)
            .await
        {
            Ok(messages) if messages.is_empty() => ToolOutput::success("no matching messages"),
            Ok(messages) => ToolOutput::success(
                messages
                    .iter()
                    .map(|message| {
                        let time = chrono::DateTime::from_timestamp_millis(message.created_at)
                            .map(|time| time.format("%Y-%m-%d %H:%M").to_string())
                            .unwrap_or_default();
                        format!("[{time}] {}: {}", message.sender, message.content)
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Err(error) => ToolOutput::error(format!("search failed: {error}")),
        }
    }
}
