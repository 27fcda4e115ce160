//! `send_file`: send a workspace file to the conversation (a photo or a document on chat
//! platforms, a download link in the web chat and the API). Confined to the workspace and
//! capped at `[media] max_file_mb`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::conversation_id::Platform;
use crate::message::{OutboundFile, Outbox, media_type_of};
use crate::sandbox::Workspace;

/// The longest path and caption taken.
const MAXIMUM_PATH: usize = 1024;
const MAXIMUM_CAPTION: usize = 1024;

pub struct SendFile {
    workspace: Arc<Workspace>,
    outbox: Arc<dyn Outbox>,
    max_bytes: u64,
}

impl SendFile {
    pub fn new(workspace: Arc<Workspace>, outbox: Arc<dyn Outbox>, max_bytes: u64) -> Self {
        Self {
            workspace,
            outbox,
            max_bytes,
        }
    }
}

#[derive(Deserialize)]
pub struct Arguments {
    path: String,
    #[serde(default)]
    caption: Option<String>,
}

/// Where the API serves a workspace file of an agent (behind the API token).
pub fn download_link(agent_id: &str, path: &str) -> String {
    format!(
        "/api/agents/{agent_id}/files/{}",
        path.trim_start_matches('/')
    )
}

impl<Effect: Send + 'static> Tool<Effect> for SendFile {
    type Arguments = Arguments;
    const NAME: &'static str = "send_file";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/send_file.md.j2");
    const ACTS: bool = true;

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "caption": {"type": "string"}
            },
            "required": ["path"]
        })
    }

    async fn call(&self, call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        if arguments.path.len() > MAXIMUM_PATH {
            return ToolOutput::error(format!("`path` is longer than {MAXIMUM_PATH} bytes"));
        }
        if arguments
            .caption
            .as_ref()
            .is_some_and(|caption| caption.chars().count() > MAXIMUM_CAPTION)
        {
            return ToolOutput::error(format!(
                "`caption` is longer than {MAXIMUM_CAPTION} characters"
            ));
        }
        let components = match self.workspace.components(&arguments.path) {
            Ok(components) if !components.is_empty() => components,
            Ok(_) => return ToolOutput::error("`path` names the workspace itself, not a file"),
            Err(error) => return ToolOutput::error(format!("cannot send: {error}")),
        };
        let relative = components.join("/");
        let workspace = self.workspace.clone();
        let limit = self.max_bytes;
        let requested = relative.clone();
        let read = tokio::task::spawn_blocking(move || workspace.read(&requested, limit + 1)).await;
        let contents = match read {
            Ok(Ok(contents)) => contents,
            Ok(Err(error)) => return ToolOutput::error(format!("cannot send: {error}")),
            Err(error) => return ToolOutput::error(format!("reading failed: {error}")),
        };
        if contents.size > limit {
            return ToolOutput::error(format!(
                "`{relative}` is {}, over the {} limit for files",
                crate::media::human_size(contents.size),
                crate::media::human_size(limit)
            ));
        }
        let name = components.last().cloned().unwrap_or_default();
        if call.conversation.platform() == Platform::Portal {
            return ToolOutput::success(format!(
                "`{name}` is ready to download at {} (the API token is needed); give the person \
                 this link in your reply",
                download_link(call.agent_id, &relative)
            ));
        }
        let file = OutboundFile {
            media_type: media_type_of(&name).to_string(),
            name: name.clone(),
            bytes: contents.bytes,
            caption: arguments
                .caption
                .filter(|caption| !caption.trim().is_empty()),
        };
        match self.outbox.send_file(call.conversation, &file).await {
            Ok(()) => ToolOutput::success(format!(
                "sent `{name}` ({}) to the conversation",
                crate::media::human_size(contents.size)
            )),
            Err(error) => ToolOutput::error(format!("cannot send `{name}`: {error}")),
        }
    }
}
