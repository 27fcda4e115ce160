//! `memory_save`: a branch stores one memory (near-duplicates update the existing one).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::memory::{MemoryStore, MemoryType, NewAssociation, NewMemory, Origin, Relation};

pub struct MemorySave {
    store: Arc<MemoryStore>,
}

impl MemorySave {
    pub fn new(store: Arc<MemoryStore>) -> Self {
        Self { store }
    }

    /// Where a memory saved by this call came from: the calling conversation. Trusted, with
    /// no sender, for now; the trust model passes the sender and whether it is an owner.
    fn origin(call: &ToolCall<'_>) -> Origin {
        Origin::conversation(call.conversation.to_string(), None, true)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arguments {
    content: String,
    #[serde(rename = "type")]
    memory_type: MemoryType,
    #[serde(default)]
    importance: Option<f64>,
    #[serde(default)]
    associations: Vec<NewAssociation>,
}

impl<Effect: Send + 'static> Tool<Effect> for MemorySave {
    type Arguments = Arguments;
    const NAME: &'static str = "memory_save";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/memory_save.md.j2");
    const ACTS: bool = true;

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "content": {
                    "type": "string",
                    "description": "One self-contained statement, understandable without this conversation."
                },
                "type": {
                    "type": "string",
                    "enum": MemoryType::ALL.map(MemoryType::as_str),
                    "description": "What kind of memory this is."
                },
                "importance": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "description": "0 to 1; omit to use the type's default."
                },
                "associations": {
                    "type": "array",
                    "description": "Links to existing memories (ids from memory_recall).",
                    "items": {
                        "type": "object",
                        "properties": {
                            "target_id": {"type": "string"},
                            "relation": {"type": "string", "enum": Relation::ALL.map(Relation::as_str)},
                            "weight": {"type": "number", "minimum": 0, "maximum": 1}
                        },
                        "required": ["target_id", "relation"]
                    }
                }
            },
            "required": ["content", "type"]
        })
    }

    async fn call(&self, call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        let memory = NewMemory {
            content: arguments.content,
            memory_type: arguments.memory_type,
            importance: arguments.importance,
            // Attributed to the process that saved it, in its conversation.
            source: call.process_id.to_string(),
            origin: Self::origin(call),
            associations: arguments.associations,
        };
        match self.store.save(memory).await {
            Ok(outcome) => ToolOutput::success(
                json!({
                    "id": outcome.memory.id,
                    "status": if outcome.merged { "updated_existing_near_duplicate" } else { "saved" },
                    "type": outcome.memory.memory_type,
                    "importance": outcome.memory.importance,
                })
                .to_string(),
            ),
            Err(error) => ToolOutput::error(error.to_string()),
        }
    }
}
