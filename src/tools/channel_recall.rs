//! `channel_recall`: search the conversation's full transcript.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolOutput, parse_arguments};
use crate::conversation::ConversationStore;

const DEFAULT_RESULTS: usize = 10;
const MAXIMUM_RESULTS: usize = 50;

pub struct ChannelRecall {
    store: ConversationStore,
    conversation_id: String,
}

impl ChannelRecall {
    pub fn new(store: ConversationStore, conversation_id: String) -> Self {
        Self {
            store,
            conversation_id,
        }
    }
}

#[derive(Deserialize)]
struct Arguments {
    query: String,
    #[serde(default)]
    max_results: Option<usize>,
}

impl Tool for ChannelRecall {
    fn name(&self) -> &'static str {
        "channel_recall"
    }

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

    fn call(&self, arguments: Value) -> BoxFuture<'_, ToolOutput> {
        Box::pin(async move {
            let arguments = match parse_arguments::<Arguments>(self.name(), arguments) {
                Ok(arguments) => arguments,
                Err(output) => return output,
            };
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
                .search_transcript(&self.conversation_id, &words, limit)
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
        })
    }
}
