//! `file_write`: create or replace a file of the workspace.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::sandbox::Workspace;

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
        let path = match self.workspace.resolve(&arguments.path) {
            Ok(path) => path,
            Err(error) => return ToolOutput::error(error.to_string()),
        };
        if let Some(parent) = path.parent()
            && let Err(error) = tokio::fs::create_dir_all(parent).await
        {
            return ToolOutput::error(format!("cannot create the directory: {error}"));
        }
        match tokio::fs::write(&path, arguments.content.as_bytes()).await {
            Ok(()) => ToolOutput::success(format!(
                "wrote {} bytes to `{}`",
                arguments.content.len(),
                arguments.path
            )),
            Err(error) => ToolOutput::error(format!("cannot write `{}`: {error}", arguments.path)),
        }
    }
}
