//! `file_list`: list a workspace directory, a few levels deep.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::sandbox::{EntryKind, SandboxError, Workspace};

const DEFAULT_DEPTH: usize = 2;
const MAXIMUM_DEPTH: usize = 5;
const MAXIMUM_ENTRIES: usize = 500;

pub struct FileList {
    workspace: Arc<Workspace>,
}

impl FileList {
    pub fn new(workspace: Arc<Workspace>) -> Self {
        Self { workspace }
    }
}

#[derive(Deserialize)]
pub struct Arguments {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    depth: Option<usize>,
}

impl<Effect: Send + 'static> Tool<Effect> for FileList {
    type Arguments = Arguments;
    const NAME: &'static str = "file_list";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/file_list.md.j2");

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "depth": {"type": "integer", "minimum": 1, "maximum": MAXIMUM_DEPTH}
            }
        })
    }

    async fn call(&self, _call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        let requested = arguments.path.unwrap_or_else(|| ".".to_string());
        let depth = arguments
            .depth
            .unwrap_or(DEFAULT_DEPTH)
            .clamp(1, MAXIMUM_DEPTH);
        let workspace = self.workspace.clone();
        let start = requested.clone();
        let listing = tokio::task::spawn_blocking(move || {
            let mut lines = Vec::new();
            list(&workspace, &start, "", depth, &mut lines).map(|()| lines)
        })
        .await;
        match listing {
            Ok(Ok(lines)) if lines.is_empty() => ToolOutput::success("(empty)"),
            Ok(Ok(mut lines)) => {
                if lines.len() >= MAXIMUM_ENTRIES {
                    lines.push(format!("[listing stopped at {MAXIMUM_ENTRIES} entries]"));
                }
                ToolOutput::success(lines.join("\n"))
            }
            Ok(Err(error)) => ToolOutput::error(format!("cannot list `{requested}`: {error}")),
            Err(error) => ToolOutput::error(format!("listing failed: {error}")),
        }
    }
}

/// Appends `relative/path (size)` lines, at most `depth` levels deep, never following
/// symlinks (they are shown as such).
fn list(
    workspace: &Workspace,
    directory: &str,
    prefix: &str,
    depth: usize,
    lines: &mut Vec<String>,
) -> Result<(), SandboxError> {
    for entry in workspace.list(directory)? {
        if lines.len() >= MAXIMUM_ENTRIES {
            return Ok(());
        }
        let relative = format!("{prefix}{}", entry.name);
        match entry.kind {
            EntryKind::Directory => {
                lines.push(format!("{relative}/"));
                if depth > 1 {
                    list(
                        workspace,
                        &format!("{directory}/{}", entry.name),
                        &format!("{relative}/"),
                        depth - 1,
                        lines,
                    )?;
                }
            }
            EntryKind::Symlink => lines.push(format!("{relative} (symlink, not followed)")),
            EntryKind::File => lines.push(format!("{relative} ({} bytes)", entry.size)),
            EntryKind::Other => lines.push(format!("{relative} (not a regular file)")),
        }
    }
    Ok(())
}
