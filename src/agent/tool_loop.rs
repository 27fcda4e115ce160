//! The loop every LLM process runs (`ToolLoop::run`): call the model, run the tools it asks
//! for, feed the results back, until the process's effect handler finishes it, the model
//! answers in plain text, or the turn cap is reached. `ToolLoop` is also the handle that holds
//! what such a loop needs: the model with its routing, prompts, usage, redaction and events.

use std::sync::{Arc, RwLock};

use rig::OneOrMany;
use rig::message::{AssistantContent, Message, ToolResult, ToolResultContent, UserContent};

use crate::config::RoutingConfig;
use crate::conversation_id::ConversationId;
use crate::event::{EventBus, ProcessEvent, ProcessId};
use crate::llm::{LlmError, LlmManager, LlmRequest, LlmResponse, UsageRecorder};
use crate::message::Standing;
use crate::prompts::Prompts;
use crate::sandbox::Redactor;
use crate::tools::{ToolCall, ToolSet};

/// Everything an LLM process of one agent needs to think.
pub struct ToolLoop {
    pub agent_id: String,
    /// Which model each process kind uses, with fallbacks; a config reload replaces it.
    pub routing: RwLock<Arc<RoutingConfig>>,
    pub llm: Arc<LlmManager>,
    /// Where token usage is recorded.
    pub usage: UsageRecorder,
    pub prompts: Arc<Prompts>,
    /// Removes secrets from tool output before the model sees it.
    pub redactor: Redactor,
    /// Tool calls are published here.
    pub events: EventBus,
}

impl ToolLoop {
    /// The routing in force now; a call under way keeps the one it started with.
    pub fn routing(&self) -> Arc<RoutingConfig> {
        match self.routing.read() {
            Ok(routing) => routing.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Routes the next calls by `routing` (a config reload).
    pub fn replace_routing(&self, routing: RoutingConfig) {
        match self.routing.write() {
            Ok(mut current) => *current = Arc::new(routing),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(routing),
        }
    }
}

/// Which process runs a loop, in which conversation, on whose behalf.
#[derive(Debug, Clone, Copy)]
pub struct LoopScope<'a> {
    pub process_id: &'a ProcessId,
    pub conversation: &'a ConversationId,
    pub standing: Standing,
}

/// How a loop ended.
#[derive(Debug)]
pub enum LoopEnd<T> {
    /// The effect handler finished the loop with `value` when handling call `call_id`.
    Finished {
        value: T,
        call_id: String,
    },
    /// The model answered without calling a tool.
    Text(String),
    /// The model was still calling tools when the cap was reached.
    TurnLimit,
    Failed(LlmError),
}

/// The text a tool call answers the model with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResult {
    pub content: String,
    pub is_error: bool,
}

impl CallResult {
    pub fn success(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: false,
        }
    }

    pub fn error(content: impl Into<String>) -> Self {
        Self {
            content: format!("error: {}", content.into()),
            is_error: true,
        }
    }
}

/// What a process makes of a tool's effect: the result the model reads, and a value that,
/// when present, ends the loop once the current batch of tool calls is done.
pub struct Handled<T> {
    pub result: CallResult,
    pub finish: Option<T>,
}

impl<T> Handled<T> {
    pub fn continue_with(result: CallResult) -> Self {
        Self {
            result,
            finish: None,
        }
    }

    pub fn finish(result: CallResult, value: T) -> Self {
        Self {
            result,
            finish: Some(value),
        }
    }
}

impl ToolLoop {
    /// One completion for `process_id` on the model routing picks for its kind.
    pub async fn complete(
        &self,
        process_id: &ProcessId,
        request: &LlmRequest,
    ) -> Result<LlmResponse, LlmError> {
        self.llm
            .complete(&self.routing(), process_id, request, &self.usage)
            .await
    }

    /// Renders a prompt template; a template that fails is logged and yields nothing, so a
    /// process still runs (the templates are checked at startup and in tests).
    pub fn render(&self, name: &str, context: impl serde::Serialize) -> String {
        self.prompts.render(name, context).unwrap_or_else(|error| {
            tracing::error!(%error, "cannot render a prompt");
            String::new()
        })
    }

    fn redact(&self, content: &mut [AssistantContent]) {
        if self.redactor.is_empty() {
            return;
        }
        for part in content {
            match part {
                AssistantContent::Text(text) => text.text = self.redactor.redact(&text.text),
                AssistantContent::ToolCall(call) => {
                    self.redactor.redact_json(&mut call.function.arguments);
                }
                AssistantContent::Reasoning(_) | AssistantContent::Image(_) => {}
            }
        }
    }

    /// Runs the loop. Everything the model says and every tool result is appended to
    /// `request.messages`, so the caller can persist the whole exchange.
    pub async fn run<Effect: Send + 'static, T>(
        &self,
        scope: LoopScope<'_>,
        request: &mut LlmRequest,
        tools: &ToolSet<Effect>,
        max_turns: usize,
        mut handle: impl FnMut(Effect, CallResult, &[Message]) -> Handled<T>,
    ) -> LoopEnd<T> {
        let LoopScope {
            process_id,
            conversation,
            standing,
        } = scope;
        let call_scope = ToolCall {
            agent_id: &self.agent_id,
            conversation,
            process_id,
            standing,
        };
        for _ in 0..max_turns {
            let mut response = match self.complete(process_id, request).await {
                Ok(response) => response,
                Err(error) => return LoopEnd::Failed(error),
            };
            // What the model says never carries a configured secret further: not into a
            // reply, a command, a transcript or an event.
            self.redact(&mut response.content);
            let mut text = String::new();
            let mut calls = Vec::new();
            for content in &response.content {
                match content {
                    AssistantContent::Text(part) => text.push_str(&part.text),
                    AssistantContent::ToolCall(call) => calls.push(call.clone()),
                    AssistantContent::Reasoning(_) | AssistantContent::Image(_) => {}
                }
            }
            if calls.is_empty() {
                let text = text.trim().to_string();
                if !text.is_empty() {
                    request.messages.push(Message::assistant(text.clone()));
                }
                return LoopEnd::Text(text);
            }
            let mut results = Vec::with_capacity(calls.len());
            let mut finish = None;
            for call in calls {
                let name = call.function.name.clone();
                self.events.publish(ProcessEvent::ToolStarted {
                    agent_id: self.agent_id.clone(),
                    conversation_id: conversation.to_string(),
                    process_id: process_id.clone(),
                    tool: name.clone(),
                });
                let output = tools
                    .call(&call_scope, &name, call.function.arguments.clone())
                    .await;
                let mut result = CallResult {
                    content: output.content,
                    is_error: output.is_error,
                };
                if let Some(effect) = output.effect {
                    let handled = handle(effect, result, &request.messages);
                    result = handled.result;
                    if finish.is_none() {
                        finish = handled.finish.map(|value| (value, call.id.clone()));
                    }
                }
                tracing::debug!(tool = %name, is_error = result.is_error, "tool call");
                self.events.publish(ProcessEvent::ToolCompleted {
                    agent_id: self.agent_id.clone(),
                    conversation_id: conversation.to_string(),
                    process_id: process_id.clone(),
                    tool: name,
                    is_error: result.is_error,
                });
                results.push(UserContent::ToolResult(ToolResult {
                    id: call.id.clone(),
                    call_id: call.call_id.clone(),
                    content: OneOrMany::one(ToolResultContent::text(
                        self.redactor.redact(&result.content),
                    )),
                }));
            }
            if let Ok(content) = OneOrMany::many(response.content) {
                request
                    .messages
                    .push(Message::Assistant { id: None, content });
            }
            if let Ok(content) = OneOrMany::many(results) {
                request.messages.push(Message::User { content });
            }
            if let Some((value, call_id)) = finish {
                return LoopEnd::Finished { value, call_id };
            }
        }
        LoopEnd::TurnLimit
    }
}

/// Replaces the text of the tool result answering call `call_id` (a result the process only
/// knows later, such as whether a reply reached the conversation).
pub fn set_tool_result(messages: &mut [Message], call_id: &str, text: &str) {
    for message in messages.iter_mut().rev() {
        let Message::User { content } = message else {
            continue;
        };
        for part in content.iter_mut() {
            if let UserContent::ToolResult(result) = part
                && result.id == call_id
            {
                result.content = OneOrMany::one(ToolResultContent::text(text.to_string()));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_tool_result_replaces_the_placeholder() {
        let result = |id: &str, text: &str| Message::User {
            content: OneOrMany::one(UserContent::ToolResult(ToolResult {
                id: id.to_string(),
                call_id: None,
                content: OneOrMany::one(ToolResultContent::text(text.to_string())),
            })),
        };
        let mut messages = vec![
            Message::user("hi"),
            result("call-1", "pending"),
            result("call-2", "pending"),
        ];
        set_tool_result(&mut messages, "call-2", "delivered");
        assert_eq!(messages[1], result("call-1", "pending"));
        assert_eq!(messages[2], result("call-2", "delivered"));
    }
}
