//! The loop every LLM process runs: call the model, run the tools it asks for, feed the results
//! back, until the process's effect handler finishes it, the model answers in plain text, or
//! the turn cap is reached.

use futures::future::BoxFuture;
use rig::OneOrMany;
use rig::message::{AssistantContent, Message, ToolResult, ToolResultContent, UserContent};

use super::AgentContext;
use crate::event::{ProcessEvent, ProcessId};
use crate::llm::{LlmError, LlmRequest};
use crate::tools::{ToolEffect, ToolOutput, ToolSet};

/// How a loop ended.
#[derive(Debug)]
pub enum LoopEnd<T> {
    /// The effect handler finished the loop with this value.
    Finished(T),
    /// The model answered without calling a tool.
    Text(String),
    /// The model was still calling tools when the cap was reached.
    TurnLimit,
    Failed(LlmError),
}

/// What a process makes of a tool's effect: the result the model reads (now, or from work
/// the loop awaits, such as a database write), and a value that, when present, ends the loop
/// once the current batch of tool calls is done.
pub struct Handled<T> {
    pub output: ToolOutput,
    pub later: Option<BoxFuture<'static, ToolOutput>>,
    pub finish: Option<T>,
}

impl<T> Handled<T> {
    pub fn continue_with(output: ToolOutput) -> Self {
        Self {
            output,
            later: None,
            finish: None,
        }
    }

    /// The result is what `work` produces; the loop awaits it before the next call.
    pub fn later(work: BoxFuture<'static, ToolOutput>) -> Self {
        Self {
            output: ToolOutput::success(String::new()),
            later: Some(work),
            finish: None,
        }
    }

    pub fn finish(output: ToolOutput, value: T) -> Self {
        Self {
            output,
            later: None,
            finish: Some(value),
        }
    }
}

/// Runs the loop. Everything the model says and every tool result is appended to
/// `request.messages`, so the caller can persist the whole exchange.
pub async fn run<T>(
    context: &AgentContext,
    process_id: &ProcessId,
    conversation_id: &str,
    request: &mut LlmRequest,
    tools: &ToolSet,
    max_turns: usize,
    mut handle: impl FnMut(ToolEffect, ToolOutput, &[Message]) -> Handled<T>,
) -> LoopEnd<T> {
    for _ in 0..max_turns {
        let response = match context
            .llm
            .complete(&context.config.routing, process_id, request, &context.usage)
            .await
        {
            Ok(response) => response,
            Err(error) => return LoopEnd::Failed(error),
        };
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
            context.events.publish(ProcessEvent::ToolStarted {
                agent_id: context.agent_id.clone(),
                conversation_id: conversation_id.to_string(),
                process_id: process_id.clone(),
                tool: name.clone(),
            });
            let mut output = tools.call(&name, call.function.arguments.clone()).await;
            if let Some(effect) = output.effect.take() {
                let handled = handle(effect, output, &request.messages);
                output = match handled.later {
                    Some(work) => work.await,
                    None => handled.output,
                };
                if finish.is_none() {
                    finish = handled.finish;
                }
            }
            tracing::debug!(tool = %name, is_error = output.is_error, "tool call");
            context.events.publish(ProcessEvent::ToolCompleted {
                agent_id: context.agent_id.clone(),
                conversation_id: conversation_id.to_string(),
                process_id: process_id.clone(),
                tool: name,
                is_error: output.is_error,
            });
            results.push(UserContent::ToolResult(ToolResult {
                id: call.id.clone(),
                call_id: call.call_id.clone(),
                content: OneOrMany::one(ToolResultContent::text(
                    context.redactor.redact(&output.content),
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
        if let Some(value) = finish {
            return LoopEnd::Finished(value);
        }
    }
    LoopEnd::TurnLimit
}
