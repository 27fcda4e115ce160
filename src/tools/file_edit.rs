//! `file_edit`: replace one exact occurrence of a text in a workspace file.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::sandbox::Workspace;

pub struct FileEdit {
    workspace: Arc<Workspace>,
}

impl FileEdit {
    pub fn new(workspace: Arc<Workspace>) -> Self {
        Self { workspace }
    }
}

#[derive(Deserialize)]
pub struct Arguments {
    path: String,
    old_text: String,
    new_text: String,
}

impl<Effect: Send + 'static> Tool<Effect> for FileEdit {
    type Arguments = Arguments;
    const NAME: &'static str = "file_edit";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/file_edit.md.j2");
    const ACTS: bool = true;

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "old_text": {"type": "string", "description": "Must occur exactly once."},
                "new_text": {"type": "string"}
            },
            "required": ["path", "old_text", "new_text"]
        })
    }

    async fn call(&self, _call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        if arguments.old_text.is_empty() {
            return ToolOutput::error("`old_text` is empty");
        }
        let path = match self.workspace.resolve(&arguments.path) {
            Ok(path) => path,
            Err(error) => return ToolOutput::error(error.to_string()),
        };
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(text) => text,
            Err(error) => {
                return ToolOutput::error(format!("cannot read `{}`: {error}", arguments.path));
            }
        };
        match text.matches(arguments.old_text.as_str()).count() {
            0 => ToolOutput::error(format!("`old_text` does not occur in `{}`", arguments.path)),
            1 => {
                let edited = text.replacen(&arguments.old_text, &arguments.new_text, 1);
                match tokio::fs::write(&path, edited).await {
                    Ok(()) => ToolOutput::success(format!("edited `{}`", arguments.path)),
                    Err(error) => {
                        ToolOutput::error(format!("cannot write `{}`: {error}", arguments.path))
                    }
                }
            }
            count => ToolOutput::error(format!(
                "`old_text` occurs {count} times in `{}`; include more context so it is unique",
                arguments.path
            )),
        }
    }
}
