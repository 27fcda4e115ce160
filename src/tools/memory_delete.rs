//! `memory_delete`: a branch forgets a memory (soft delete: it is never recalled again).

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolOutput, parse_arguments};
use crate::memory::MemoryStore;

pub struct MemoryDelete {
    pub(super) store: Arc<MemoryStore>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Arguments {
    id: String,
}

impl Tool for MemoryDelete {
    fn name(&self) -> &'static str {
        "memory_delete"
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "id": {"type": "string", "description": "The id of the memory, from memory_recall."}
            },
            "required": ["id"]
        })
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, ToolOutput> {
        Box::pin(async move {
            let arguments: Arguments = match parse_arguments(self.name(), arguments) {
                Ok(arguments) => arguments,
                Err(output) => return output,
            };
            match self.store.forget(arguments.id.trim()).await {
                Ok(memory) => ToolOutput::success(
                    json!({"id": memory.id, "status": "forgotten", "content": memory.content})
                        .to_string(),
                ),
                Err(error) => ToolOutput::error(error.to_string()),
            }
        })
    }
}
