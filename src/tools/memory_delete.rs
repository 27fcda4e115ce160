//! `memory_delete`: a branch forgets a memory (soft delete: it is never recalled again).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::memory::MemoryStore;

pub struct MemoryDelete {
    store: Arc<MemoryStore>,
}

impl MemoryDelete {
    pub fn new(store: Arc<MemoryStore>) -> Self {
        Self { store }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arguments {
    id: String,
}

impl<Effect: Send + 'static> Tool<Effect> for MemoryDelete {
    type Arguments = Arguments;
    const NAME: &'static str = "memory_delete";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/memory_delete.md.j2");
    const ACTS: bool = true;

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "id": {"type": "string", "description": "The id of the memory, from memory_recall."}
            },
            "required": ["id"]
        })
    }

    async fn call(&self, _call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        match self.store.forget(arguments.id.trim()).await {
            Ok(memory) => ToolOutput::success(
                json!({"id": memory.id, "status": "forgotten", "content": memory.content})
                    .to_string(),
            ),
            Err(error) => ToolOutput::error(error.to_string()),
        }
    }
}
