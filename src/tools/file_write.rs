//! `file_write`: create or replace a file of the workspace.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::sandbox::Workspace;

/// The largest file written at once.
const MAXIMUM_BYTES: usize = 8 * 1024 * 1024;

pub struct FileWrite {
    workspace: Arc<Workspace>,
}

impl FileWrite {
    pub fn new(workspace: Arc<Workspace>) -> Self {
        Self { workspace }
    }
}

#[derive(Deserialize)]
pub struct Arguments {
    path: String,
    content: String,
}

impl<Effect: Send + 'static> Tool<Effect> for FileWrite {
    type Arguments = Arguments;
    const NAME: &'static str = "file_write";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/file_write.md.j2");
    const ACTS: bool = true;

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"]
        })
    }

    async fn call(&self, _call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        let size = arguments.content.len();
        if size > MAXIMUM_BYTES {
            return ToolOutput::error(format!(
                "the content is {size} bytes; a file is written {MAXIMUM_BYTES} bytes at most"
            ));
        }
        let workspace = self.workspace.clone();
        let path = arguments.path.clone();
        let written = tokio::task::spawn_blocking(move || {
            workspace.write(&path, arguments.content.as_bytes())
        })
        .await;
        match written {
            Ok(Ok(())) => {
                ToolOutput::success(format!("wrote {size} bytes to `{}`", arguments.path))
            }
            Ok(Err(error)) => ToolOutput::error(format!("cannot write: {error}")),
            Err(error) => ToolOutput::error(format!("writing failed: {error}")),
        }
    }
}
