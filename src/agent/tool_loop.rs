//! The loop every LLM process runs (`ToolLoop::run`): call the model, run the tools it asks
//! for, feed the results back, until the process's effect handler finishes it, the model
//! answers in plain text, or the turn cap is reached. Weak models are read generously:
//! thinking is removed, tool calls written as text are run (or the model is told how to
//! correct them, at most twice), and a cut-off tool call is answered with a correction.
//! `ToolLoop` is also the handle that holds what such a loop needs: the model with its
//! routing, prompts, usage and budget, redaction and events.

use std::sync::{Arc, RwLock};

use rig::OneOrMany;
use rig::message::{AssistantContent, Message, ToolResult, ToolResultContent, UserContent};
use serde_json::Value;

use crate::config::RoutingConfig;
use crate::conversation_id::ConversationId;
use crate::event::{EventBus, ProcessEvent, ProcessId};
use crate::llm::text_tools::{self, TextCall};
use crate::llm::{
    Finish, LlmError, LlmManager, LlmRequest, LlmResponse, StreamSink, TokenUsage, UsageRecorder,
};
use crate::message::Standing;
use crate::prompts::Prompts;
use crate::sandbox::Redactor;
use crate::tools::{ToolCall, ToolSet};

/// Corrections a model gets for tool calls it wrote as text and got wrong, per loop.
const MAX_CORRECTIONS: usize = 2;
/// What people read when the model declined without saying anything.
const DECLINED: &str = "The model declined to answer this request.";
/// Appended to an answer the model's output limit cut off.
const CUT_OFF: &str = "\n\n(cut off: the model reached its output limit)";

/// What a process watches while its loop runs: every call's stream, and the tokens spent.
pub trait LoopSink: StreamSink {
    fn spent(&mut self, _usage: &TokenUsage) {}
}

/// Nobody watches (branches, workers).
impl LoopSink for () {}

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
    /// Tokens the agent may spend per UTC day; `None`: no limit.
    pub daily_token_budget: Option<u64>,
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
    /// The model kept writing tool calls that could not be read, after its corrections.
    Unreadable,
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
    /// One completion for `process_id` on the model routing picks for its kind, unless the
    /// agent's daily token budget is spent.
    pub async fn complete(
        &self,
        process_id: &ProcessId,
        request: &LlmRequest,
        sink: &mut dyn StreamSink,
    ) -> Result<LlmResponse, LlmError> {
        if let Some(error) = self.budget_spent() {
            return Err(error);
        }
        self.llm
            .complete(&self.routing(), process_id, request, &self.usage, sink)
            .await
    }

    /// The error every call gets once today's budget is spent.
    pub fn budget_spent(&self) -> Option<LlmError> {
        let budget = self.daily_token_budget?;
        let spent = self.usage.spent_today();
        (spent >= budget).then_some(LlmError::BudgetSpent { budget, spent })
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
    #[allow(clippy::too_many_arguments)]
    pub async fn run<Effect: Send + 'static, T>(
        &self,
        loop_scope: LoopScope<'_>,
        request: &mut LlmRequest,
        tools: &ToolSet<Effect>,
        max_turns: usize,
        sink: &mut dyn LoopSink,
        mut handle: impl FnMut(Effect, CallResult, &[Message]) -> Handled<T>,
    ) -> LoopEnd<T> {
        let LoopScope {
            process_id,
            conversation,
            standing,
        } = loop_scope;
        let scope = ToolCall {
            agent_id: &self.agent_id,
            conversation,
            process_id,
            standing,
        };
        let mut corrections = 0;
        let mut text_calls = 0;
        for _ in 0..max_turns {
            if tools.changes() {
                // An MCP server's tool list may have changed since the last call.
                request.tools = tools.definitions(standing.authority);
            }
            let mut response = match self.complete(process_id, request, &mut *sink).await {
                Ok(response) => response,
                Err(error) => return LoopEnd::Failed(error),
            };
            // What the model says never carries a configured secret further: not into a
            // reply, a command, a transcript or an event.
            self.redact(&mut response.content);
            sink.spent(&response.usage);
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
                let parsed = text_tools::parse(&text);
                let known: Vec<String> = tools
                    .definitions(standing.authority)
                    .iter()
                    .map(|tool| tool.name.clone())
                    .collect();
                let problems = text_call_problems(&parsed, &known);
                if !parsed.calls.is_empty() || parsed.malformed {
                    if !problems.is_empty() && corrections < MAX_CORRECTIONS {
                        corrections += 1;
                        tracing::info!(
                            ?problems,
                            corrections,
                            "the model wrote a tool call as text that cannot be run; telling it how to correct it"
                        );
                        let correction = self.render(
                            "tool_call_correction",
                            minijinja::context! { problems => &problems, tools => &known },
                        );
                        request.messages.push(Message::assistant(text.trim()));
                        request.messages.push(Message::user(correction));
                        continue;
                    }
                    if problems.is_empty() {
                        request.messages.push(Message::assistant(text.trim()));
                        let mut results = Vec::new();
                        let mut finish = None;
                        for call in parsed.calls {
                            text_calls += 1;
                            let id = format!("text_call_{text_calls}");
                            let arguments = call.arguments.unwrap_or_default();
                            let result = self
                                .call_tool(
                                    &scope,
                                    tools,
                                    &call.name,
                                    arguments,
                                    request,
                                    &mut handle,
                                    &id,
                                    &mut finish,
                                )
                                .await;
                            results.push(minijinja::context! { name => call.name, result => result.content, is_error => result.is_error });
                        }
                        let results = self.render(
                            "text_tool_results",
                            minijinja::context! { results => results },
                        );
                        request.messages.push(Message::user(results));
                        if let Some((value, call_id)) = finish {
                            return LoopEnd::Finished { value, call_id };
                        }
                        continue;
                    }
                    if parsed.text.is_empty() {
                        return LoopEnd::Unreadable;
                    }
                }
                let mut answer = parsed.text;
                if answer.is_empty() && response.finish == Finish::Refused {
                    answer = DECLINED.to_string();
                }
                if !answer.is_empty() && response.finish == Finish::Length {
                    answer.push_str(CUT_OFF);
                }
                if !answer.is_empty() {
                    request.messages.push(Message::assistant(answer.clone()));
                }
                return LoopEnd::Text(answer);
            }
            let mut results = Vec::with_capacity(calls.len());
            let mut finish = None;
            for call in calls {
                let cut_off = response.finish == Finish::Length
                    && matches!(call.function.arguments, Value::String(_));
                let result = if cut_off {
                    CallResult::error(
                        "this tool call was cut off at your output limit, so its arguments are \
                         incomplete; call it again with shorter arguments",
                    )
                } else {
                    self.call_tool(
                        &scope,
                        tools,
                        &call.function.name,
                        call.function.arguments.clone(),
                        request,
                        &mut handle,
                        &call.id,
                        &mut finish,
                    )
                    .await
                };
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

    /// Runs one tool call with its events, hands an effect to the process, and notes the
    /// first finishing value.
    #[allow(clippy::too_many_arguments)]
    async fn call_tool<Effect: Send + 'static, T>(
        &self,
        scope: &ToolCall<'_>,
        tools: &ToolSet<Effect>,
        name: &str,
        arguments: Value,
        request: &LlmRequest,
        handle: &mut impl FnMut(Effect, CallResult, &[Message]) -> Handled<T>,
        call_id: &str,
        finish: &mut Option<(T, String)>,
    ) -> CallResult {
        self.events.publish(ProcessEvent::ToolStarted {
            agent_id: self.agent_id.clone(),
            conversation_id: scope.conversation.to_string(),
            process_id: scope.process_id.clone(),
            tool: name.to_string(),
        });
        let output = tools.call(scope, name, arguments).await;
        let mut result = CallResult {
            content: output.content,
            is_error: output.is_error,
        };
        if let Some(effect) = output.effect {
            let handled = handle(effect, result, &request.messages);
            result = handled.result;
            if finish.is_none() {
                *finish = handled.finish.map(|value| (value, call_id.to_string()));
            }
        }
        tracing::debug!(tool = %name, is_error = result.is_error, "tool call");
        self.events.publish(ProcessEvent::ToolCompleted {
            agent_id: self.agent_id.clone(),
            conversation_id: scope.conversation.to_string(),
            process_id: scope.process_id.clone(),
            tool: name.to_string(),
            is_error: result.is_error,
        });
        result
    }
}

/// What is wrong with the tool calls a model wrote as text, one line each; empty when they
/// can all be run.
fn text_call_problems(parsed: &text_tools::ParsedText, known: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    if parsed.malformed {
        problems
            .push("a tool call could not be read: it has no tool name or is not JSON".to_string());
    }
    for TextCall { name, arguments } in &parsed.calls {
        if !known.contains(name) {
            problems.push(format!("there is no tool named `{name}`"));
        } else {
            match arguments {
                Ok(Value::Object(_)) => {}
                Ok(_) => problems.push(format!("the arguments of `{name}` must be a JSON object")),
                Err(raw) => problems.push(format!(
                    "the arguments of `{name}` are not valid JSON: {raw}"
                )),
            }
        }
    }
    problems
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
