//! `memory_recall`: a branch searches the agent's memories (hybrid, recent or important).

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolOutput, parse_arguments};
use crate::memory::{MemoryStore, MemoryType, RecallMode, RecallQuery};

/// Results when the model asks for none in particular.
const DEFAULT_RESULTS: usize = 10;

pub struct MemoryRecall {
    pub(super) store: Arc<MemoryStore>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Arguments {
    #[serde(default)]
    query: String,
    #[serde(default)]
    max_results: Option<usize>,
    #[serde(default, rename = "type")]
    memory_type: Option<MemoryType>,
    #[serde(default)]
    mode: Option<RecallMode>,
}

impl Tool for MemoryRecall {
    fn name(&self) -> &'static str {
        "memory_recall"
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look for, in plain words."},
                "max_results": {"type": "integer", "minimum": 1, "maximum": crate::memory::store::MAXIMUM_RESULTS, "description": "Default 10."},
                "type": {
                    "type": "string",
                    "enum": MemoryType::ALL.map(MemoryType::as_str),
                    "description": "Only memories of this type."
                },
                "mode": {
                    "type": "string",
                    "enum": ["hybrid", "recent", "important"],
                    "description": "hybrid (default): best matches; recent / important: matches (or, without a query, all memories) newest or most important first."
                }
            },
            "required": ["query"]
        })
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, ToolOutput> {
        Box::pin(async move {
            let arguments: Arguments = match parse_arguments(self.name(), arguments) {
                Ok(arguments) => arguments,
                Err(output) => return output,
            };
            let query = RecallQuery {
                text: arguments.query,
                max_results: arguments.max_results.unwrap_or(DEFAULT_RESULTS),
                memory_type: arguments.memory_type,
                mode: arguments.mode.unwrap_or_default(),
            };
            match self.store.recall(&query).await {
                Ok(result) => {
                    let memories: Vec<Value> = result
                        .memories
                        .iter()
                        .map(|recalled| {
                            let memory = &recalled.memory;
                            let mut item = json!({
                                "id": memory.id,
                                "type": memory.memory_type,
                                "content": memory.content,
                                "importance": (memory.importance * 100.0).round() / 100.0,
                                "updated": chrono::DateTime::from_timestamp_millis(memory.updated_at)
                                    .map(|time| time.format("%Y-%m-%d").to_string()),
                            });
                            if let Some(via) = &recalled.via {
                                item["via"] = json!({"from": via.from, "relation": via.relation});
                            }
                            item
                        })
                        .collect();
                    let mut answer = json!({"count": memories.len(), "memories": memories});
                    if result.full_text_only {
                        answer["note"] =
                            json!("searched by exact words only (no embedder available)");
                    }
                    ToolOutput::success(answer.to_string())
                }
                Err(error) => ToolOutput::error(error.to_string()),
            }
        })
    }
}
