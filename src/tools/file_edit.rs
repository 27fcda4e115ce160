//! `file_edit`: replace one exact occurrence of a text in a workspace file.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::sandbox::Workspace;

/// The largest file edited in place.
const MAXIMUM_BYTES: u64 = 1024 * 1024;

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
        let workspace = self.workspace.clone();
        let edited = tokio::task::spawn_blocking(move || edit(&workspace, &arguments)).await;
        match edited {
            Ok(output) => output,
            Err(error) => ToolOutput::error(format!("editing failed: {error}")),
        }
    }
}

/// Replaces the one occurrence of `old_text`, in a file of at most `MAXIMUM_BYTES`.
fn edit<Effect>(workspace: &Workspace, arguments: &Arguments) -> ToolOutput<Effect> {
    let path = &arguments.path;
    let contents = match workspace.read(path, MAXIMUM_BYTES + 1) {
        Ok(contents) => contents,
        Err(error) => return ToolOutput::error(format!("cannot read: {error}")),
    };
    if contents.size > MAXIMUM_BYTES {
        return ToolOutput::error(format!(
            "`{path}` is {} bytes; file_edit edits files of up to {MAXIMUM_BYTES} bytes (use \
             the shell for larger ones)",
            contents.size
        ));
    }
    let Ok(text) = String::from_utf8(contents.bytes) else {
        return ToolOutput::error(format!("`{path}` is not text"));
    };
    match text.matches(arguments.old_text.as_str()).count() {
        0 => ToolOutput::error(format!("`old_text` does not occur in `{path}`")),
        1 => {
            let edited = text.replacen(&arguments.old_text, &arguments.new_text, 1);
            match workspace.write(path, edited.as_bytes()) {
                Ok(()) => ToolOutput::success(format!("edited `{path}`")),
                Err(error) => ToolOutput::error(format!("cannot write: {error}")),
            }
        }
        count => ToolOutput::error(format!(
            "`old_text` occurs {count} times in `{path}`; include more context so it is unique"
        )),
    }
}
