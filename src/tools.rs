//! Tools the LLM can call, and which process gets which. A tool error is a result the model
//! reads and can recover from, never a failed turn.

mod memory_delete;
mod memory_recall;
mod memory_save;
mod reply;
mod skip;

use std::sync::Arc;

use futures::future::BoxFuture;
use rig::completion::ToolDefinition;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::memory::MemoryStore;
use crate::prompts::{PromptError, Prompts};

/// What a tool asks of the process that called it, beyond the text result the model sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolEffect {
    /// Deliver this text to the conversation.
    Reply { content: String },
    /// End the turn without answering.
    Skip { reason: String },
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
    definitions: Vec<ToolDefinition>,
}

impl ToolSet {
    /// Tools of a channel: reply and skip.
    pub fn channel(prompts: &Prompts) -> Result<Self, PromptError> {
        Self::new(prompts, vec![Box::new(reply::Reply), Box::new(skip::Skip)])
    }

    /// Tools of a branch: the memory tools, saving on behalf of `origin`. The branch's other
    /// tools (channel_recall, spawn_worker) join here as they are built.
    pub fn branch(
        prompts: &Prompts,
        memory: Arc<MemoryStore>,
        origin: MemoryOrigin,
    ) -> Result<Self, PromptError> {
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
            ],
        )
    }

    fn new(prompts: &Prompts, tools: Vec<Box<dyn Tool>>) -> Result<Self, PromptError> {
        let definitions = tools
            .iter()
            .map(|tool| {
                Ok(ToolDefinition {
                    name: tool.name().to_string(),
                    description: prompts
                        .render(&format!("tools/{}", tool.name()), minijinja::context! {})?,
                    parameters: tool.parameters(),
                })
            })
            .collect::<Result<_, PromptError>>()?;
        Ok(Self { tools, definitions })
    }

    pub fn definitions(&self) -> &[ToolDefinition] {
        &self.definitions
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
        let tools = ToolSet::channel(&prompts).expect("tools");
        let unknown = tools.call("launch_rockets", json!({})).await;
        assert!(unknown.is_error);
        assert!(
            unknown.content.contains("reply, skip"),
            "{}",
            unknown.content
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
