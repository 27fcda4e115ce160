//! Tools the LLM can call, and which process gets which. A tool error is a result the model
//! reads and can recover from, never a failed turn.

mod branch;
mod cancel;
mod channel_recall;
mod cron;
mod file_edit;
mod file_list;
mod file_read;
mod file_write;
mod memory_delete;
mod memory_recall;
mod memory_save;
mod reply;
mod route;
mod set_status;
mod shell;
mod skip;
mod spawn_worker;

use std::sync::Arc;

use futures::future::BoxFuture;
use rig::completion::ToolDefinition;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::conversation::ConversationStore;
use crate::event::{EventBus, ProcessId};
use crate::memory::MemoryStore;
use crate::prompts::Prompts;
use crate::sandbox::Workspace;
pub use cron::{CronRequest, apply as apply_cron};

/// What a tool asks of the process that called it. The process applies it and may replace
/// the tool's text result with what came of it (e.g. the id of a started worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolEffect {
    /// Deliver this text to the conversation.
    Reply {
        content: String,
    },
    /// End the turn without answering.
    Skip {
        reason: String,
    },
    /// Fork the conversation into a branch.
    Branch {
        prompt: String,
    },
    SpawnWorker {
        task: String,
        interactive: bool,
    },
    /// A follow-up for a running interactive worker.
    Route {
        worker_id: String,
        message: String,
    },
    Cancel {
        process_id: String,
    },
    /// Create, list or delete scheduled jobs.
    Cron(CronRequest),
    /// A worker's progress, or its final outcome.
    Status {
        message: String,
        outcome: Option<WorkerOutcome>,
    },
}

/// How a worker says it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerOutcome {
    Succeeded,
    Failed,
}

/// Who is running a tool, for tools that publish progress (shell output lines).
#[derive(Debug, Clone)]
pub struct ProcessScope {
    pub agent_id: String,
    pub conversation_id: String,
    pub process_id: ProcessId,
    pub events: EventBus,
}

#[derive(Debug, Clone)]
pub struct ToolOutput {
    pub content: String,
    pub is_error: bool,
    pub effect: Option<ToolEffect>,
}

impl ToolOutput {
    pub fn success(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: false,
            effect: None,
        }
    }

    pub fn error(content: impl Into<String>) -> Self {
        Self {
            content: format!("error: {}", content.into()),
            is_error: true,
            effect: None,
        }
    }

    pub fn with_effect(mut self, effect: ToolEffect) -> Self {
        self.effect = Some(effect);
        self
    }

    /// A result that is only an effect; the process fills in the text.
    pub fn effect(effect: ToolEffect) -> Self {
        Self::success(String::new()).with_effect(effect)
    }
}

pub trait Tool: Send + Sync {
    fn name(&self) -> &'static str;
    /// JSON schema of the arguments object.
    fn parameters(&self) -> Value;
    fn call(&self, arguments: Value) -> BoxFuture<'_, ToolOutput>;
}

/// The tools of one process, with their definitions rendered once.
pub struct ToolSet {
    tools: Vec<Box<dyn Tool>>,
    definitions: Arc<[ToolDefinition]>,
}

impl ToolSet {
    /// A channel answers, delegates and manages what it delegated. It has no tool that does
    /// work itself, so it never blocks on work.
    pub fn channel(prompts: &Prompts) -> Self {
        Self::new(
            prompts,
            vec![
                Box::new(reply::Reply),
                Box::new(skip::Skip),
                Box::new(branch::Branch),
                Box::new(spawn_worker::SpawnWorker),
                Box::new(route::Route),
                Box::new(cancel::Cancel),
                Box::new(cron::Cron),
            ],
        )
    }

    /// A branch thinks: it recalls the conversation and memories, saves what is worth keeping
    /// (on behalf of `origin`), and may start workers.
    pub fn branch(
        prompts: &Prompts,
        store: ConversationStore,
        conversation_id: String,
        memory: Arc<MemoryStore>,
        origin: MemoryOrigin,
    ) -> Self {
        Self::new(
            prompts,
            vec![
                Box::new(memory_save::MemorySave {
                    store: memory.clone(),
                    origin,
                }),
                Box::new(memory_recall::MemoryRecall {
                    store: memory.clone(),
                }),
                Box::new(memory_delete::MemoryDelete { store: memory }),
                Box::new(channel_recall::ChannelRecall::new(store, conversation_id)),
                Box::new(spawn_worker::SpawnWorker),
            ],
        )
    }

    /// A worker acts in the workspace and reports with `set_status`.
    pub fn worker(prompts: &Prompts, workspace: Arc<Workspace>, scope: ProcessScope) -> Self {
        Self::new(
            prompts,
            vec![
                Box::new(shell::Shell::new(workspace.clone(), scope)),
                Box::new(file_read::FileRead::new(workspace.clone())),
                Box::new(file_write::FileWrite::new(workspace.clone())),
                Box::new(file_edit::FileEdit::new(workspace.clone())),
                Box::new(file_list::FileList::new(workspace)),
                Box::new(set_status::SetStatus),
            ],
        )
    }

    fn new(prompts: &Prompts, tools: Vec<Box<dyn Tool>>) -> Self {
        let definitions = tools
            .iter()
            .map(|tool| ToolDefinition {
                name: tool.name().to_string(),
                description: prompts.tool_description(tool.name()).to_string(),
                parameters: tool.parameters(),
            })
            .collect();
        Self { tools, definitions }
    }

    /// Shared, so a request takes them without copying every JSON schema.
    pub fn definitions(&self) -> Arc<[ToolDefinition]> {
        self.definitions.clone()
    }

    pub async fn call(&self, name: &str, arguments: Value) -> ToolOutput {
        match self.tools.iter().find(|tool| tool.name() == name) {
            Some(tool) => tool.call(arguments).await,
            None => ToolOutput::error(format!(
                "there is no tool named `{name}`; the tools you have are: {}",
                self.tools
                    .iter()
                    .map(|tool| tool.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// Who memories saved through the tools are attributed to.
#[derive(Debug, Clone)]
pub struct MemoryOrigin {
    /// Recorded as the memory's source, e.g. `branch:{id}`.
    pub source: String,
    /// The conversation the saving process works for.
    pub channel_id: Option<String>,
}

/// Reads a tool's arguments, accepting an object or a string that holds one (some providers
/// double-encode). The error is written for the model to correct its call.
fn parse_arguments<T: DeserializeOwned>(tool: &str, arguments: Value) -> Result<T, ToolOutput> {
    let arguments = match arguments {
        Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Value::Null => Value::Object(Default::default()),
        other => other,
    };
    serde_json::from_value(arguments)
        .map_err(|error| ToolOutput::error(format!("invalid arguments for `{tool}`: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn unknown_tools_and_bad_arguments_are_readable_errors() {
        let prompts = Prompts::new().expect("prompts");
        let tools = ToolSet::channel(&prompts);
        let unknown = tools.call("launch_rockets", json!({})).await;
        assert!(unknown.is_error);
        assert!(
            unknown.content.contains("reply, skip, branch"),
            "{}",
            unknown.content
        );
        assert!(
            tools
                .definitions()
                .iter()
                .all(|definition| !definition.description.is_empty())
        );
        let bad = tools.call("reply", json!({"text": 3})).await;
        assert!(bad.is_error);
        assert!(bad.content.contains("content"), "{}", bad.content);
        let encoded = tools.call("reply", json!("{\"content\": \"hi\"}")).await;
        assert_eq!(
            encoded.effect,
            Some(ToolEffect::Reply {
                content: "hi".into()
            })
        );
    }
}
