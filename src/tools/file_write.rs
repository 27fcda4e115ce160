//! `file_write`: create or replace a file of the workspace.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolOutput, parse_arguments};
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
struct Arguments {
    path: String,
    content: String,
}

impl Tool for FileWrite {
    fn name(&self) -> &'static str {
        "file_write"
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"]
        })
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, ToolOutput> {
        Box::pin(async move {
            let arguments = match parse_arguments::<Arguments>(self.name(), arguments) {
                Ok(arguments) => arguments,
                Err(output) => return output,
            };
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
                Err(error) => {
                    ToolOutput::error(format!("cannot write `{}`: {error}", arguments.path))
                }
            }
        })
    }
}
