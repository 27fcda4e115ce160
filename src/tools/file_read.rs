//! `file_read`: read a text file of the workspace, or part of it.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::sandbox::Workspace;

/// Largest file read whole; larger ones need `offset`/`limit` (read up to this much).
const MAXIMUM_BYTES: u64 = 1024 * 1024;
/// Text returned to the model at most.
const MAXIMUM_OUTPUT: usize = 32 * 1024;

pub struct FileRead {
    workspace: Arc<Workspace>,
}

impl FileRead {
    pub fn new(workspace: Arc<Workspace>) -> Self {
        Self { workspace }
    }
}

#[derive(Deserialize)]
pub struct Arguments {
    path: String,
    #[serde(default)]
    offset: Option<usize>,
    #[serde(default)]
    limit: Option<usize>,
}

impl<Effect: Send + 'static> Tool<Effect> for FileRead {
    type Arguments = Arguments;
    const NAME: &'static str = "file_read";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/file_read.md.j2");

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "offset": {"type": "integer", "minimum": 1},
                "limit": {"type": "integer", "minimum": 1}
            },
            "required": ["path"]
        })
    }

    async fn call(&self, _call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        let workspace = self.workspace.clone();
        let requested = arguments.path.clone();
        let read =
            tokio::task::spawn_blocking(move || workspace.read(&requested, MAXIMUM_BYTES)).await;
        let contents = match read {
            Ok(Ok(contents)) => contents,
            Ok(Err(error)) => return ToolOutput::error(format!("cannot read: {error}")),
            Err(error) => return ToolOutput::error(format!("reading failed: {error}")),
        };
        let text = match std::str::from_utf8(&contents.bytes) {
            Ok(text) if !text.contains('\0') => text,
            _ => {
                return ToolOutput::success(format!(
                    "`{}` is a binary file ({} bytes); not shown",
                    arguments.path, contents.size
                ));
            }
        };
        let first = arguments.offset.unwrap_or(1).max(1);
        let mut selected: String = text
            .lines()
            .skip(first - 1)
            .take(arguments.limit.unwrap_or(usize::MAX))
            .collect::<Vec<_>>()
            .join("\n");
        let mut notes = Vec::new();
        if contents.size > MAXIMUM_BYTES {
            notes.push(format!(
                "only the first {MAXIMUM_BYTES} of {} bytes were read",
                contents.size
            ));
        }
        if selected.len() > MAXIMUM_OUTPUT {
            let mut end = MAXIMUM_OUTPUT;
            while !selected.is_char_boundary(end) {
                end -= 1;
            }
            selected.truncate(end);
            notes.push("output truncated; read further with offset and limit".to_string());
        }
        for note in notes {
            selected.push_str(&format!("\n[{note}]"));
        }
        ToolOutput::success(selected)
    }
}
