//! `file_list`: list a workspace directory, a few levels deep.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::sandbox::Workspace;

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
        let path = match self.workspace.resolve(&requested) {
            Ok(path) => path,
            Err(error) => return ToolOutput::error(error.to_string()),
        };
        let depth = arguments
            .depth
            .unwrap_or(DEFAULT_DEPTH)
            .clamp(1, MAXIMUM_DEPTH);
        let listing = tokio::task::spawn_blocking(move || {
            let mut lines = Vec::new();
            list(&path, &path, depth, &mut lines).map(|()| lines)
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

/// Appends `relative/path [size]` lines, directories first at each level, never following
/// symlinks.
fn list(
    root: &Path,
    directory: &Path,
    depth: usize,
    lines: &mut Vec<String>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(directory)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        if lines.len() >= MAXIMUM_ENTRIES {
            return Ok(());
        }
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let file_type = entry.file_type()?;
        if file_type.is_symlink() {
            let target = std::fs::read_link(&path)
                .map(|target| target.display().to_string())
                .unwrap_or_default();
            lines.push(format!("{relative} -> {target}"));
        } else if file_type.is_dir() {
            lines.push(format!("{relative}/"));
            if depth > 1 {
                list(root, &path, depth - 1, lines)?;
            }
        } else {
            lines.push(format!("{relative} ({} bytes)", entry.metadata()?.len()));
        }
    }
    Ok(())
}
