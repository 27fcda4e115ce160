//! A branch: a fork of the channel's context that thinks with its own prompt and tools, and
//! returns a conclusion that re-triggers the channel.

use std::convert::Infallible;
use std::sync::Arc;

use rig::message::Message;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::channel::{ChannelInput, ProcessResult};
use super::processes::{ProcessEntry, StopReason, StopSignal};
use super::turn::{self, Handled, LoopEnd};
use super::{AgentContext, worker};
use crate::event::{ProcessEvent, ProcessId, ProcessType};
use crate::llm::LlmRequest;
use crate::tools::{MemoryOrigin, ToolEffect, ToolOutput, ToolSet};

/// Starts a branch of `conversation_id` forked from `history`. The error is for the model.
pub fn spawn(
    context: &Arc<AgentContext>,
    conversation_id: &str,
    results: mpsc::Sender<ChannelInput>,
    history: &[Message],
    prompt: String,
) -> Result<ProcessId, String> {
    let limit = context.config.limits.max_concurrent_branches;
    if context
        .processes
        .count(conversation_id, ProcessType::Branch)
        >= limit
    {
        return Err(format!(
            "{limit} branches are already running in this conversation (the limit); wait for \
             one to conclude or cancel one"
        ));
    }
    let process_id = ProcessId::Branch(uuid::Uuid::new_v4());
    let stop = StopSignal::child_of(&context.closing);
    context.processes.register(ProcessEntry {
        process_id: process_id.clone(),
        conversation_id: conversation_id.to_string(),
        description: prompt.clone(),
        status: String::new(),
        interactive: false,
        started_at: std::time::Instant::now(),
        stop: stop.clone(),
        input: None,
        waiting: false,
    });
    context.events.publish(ProcessEvent::BranchStarted {
        agent_id: context.agent_id.clone(),
        conversation_id: conversation_id.to_string(),
        process_id: process_id.clone(),
        prompt: prompt.clone(),
    });
    let span = tracing::info_span!(
        "branch",
        agent_id = %context.agent_id,
        conversation_id = %conversation_id,
        process_id = %process_id,
    );
    let task_context = context.clone();
    let conversation_id = conversation_id.to_string();
    let history = history.to_vec();
    let returned_id = process_id.clone();
    context.tasks.spawn(
        async move {
            let context = task_context;
            let conclusion = tokio::select! {
                conclusion = think(&context, &process_id, &conversation_id, &results, history, &prompt) => conclusion,
                reason = stop.stopped() => match reason {
                    StopReason::Cancelled => "the branch was cancelled before it concluded".to_string(),
                    StopReason::TimedOut(why) => format!("the branch was stopped before it concluded: {why}"),
                },
            };
            context.events.publish(ProcessEvent::BranchResult {
                agent_id: context.agent_id.clone(),
                conversation_id: conversation_id.clone(),
                process_id: process_id.clone(),
                conclusion: conclusion.clone(),
            });
            let result = ProcessResult::BranchConcluded {
                process_id: process_id.clone(),
                prompt,
                conclusion,
            };
            if results.send(ChannelInput::Result(result)).await.is_err() {
                tracing::warn!("the channel is gone; the branch conclusion is only logged");
            }
            // Unregistered only once the conclusion is queued (see `Worker::finish`).
            context.processes.remove(&process_id);
        }
        .instrument(span),
    );
    Ok(returned_id)
}

async fn think(
    context: &Arc<AgentContext>,
    process_id: &ProcessId,
    conversation_id: &str,
    results: &mpsc::Sender<ChannelInput>,
    history: Vec<Message>,
    prompt: &str,
) -> String {
    let system = context
        .prompts
        .render(
            "branch",
            minijinja::context! {
                agent_name => &context.config.display_name,
                conversation_id,
                soul => &context.identity.soul,
            },
        )
        .and_then(|branch| {
            let guidance = context
                .prompts
                .render("memory_guidance", minijinja::context! {})?;
            Ok(format!("{branch}\n\n{guidance}"))
        })
        .unwrap_or_else(|error| {
            tracing::error!(%error, "cannot render the branch prompt");
            String::new()
        });
    let tools = ToolSet::branch(
        &context.prompts,
        context.store.clone(),
        conversation_id.to_string(),
        context.memory.clone(),
        MemoryOrigin {
            source: process_id.to_string(),
            channel_id: Some(conversation_id.to_string()),
        },
    );
    let mut messages = history;
    messages.push(Message::user(format!("[Branch task] {prompt}")));
    let mut request = LlmRequest {
        system,
        messages,
        tools: tools.definitions(),
    };
    let max_turns = context.config.limits.branch_max_turns;
    let end = turn::run::<Infallible>(
        context,
        process_id,
        conversation_id,
        &mut request,
        &tools,
        max_turns,
        |effect, _, _| match effect {
            ToolEffect::SpawnWorker { task, interactive } => {
                match worker::spawn(context, conversation_id, results.clone(), task, interactive) {
                    Ok(worker_id) => Handled::continue_with(ToolOutput::success(format!(
                        "worker `{worker_id}` started; its result goes to the conversation"
                    ))),
                    Err(error) => Handled::continue_with(ToolOutput::error(error)),
                }
            }
            ToolEffect::Reply { .. }
            | ToolEffect::Skip { .. }
            | ToolEffect::Branch { .. }
            | ToolEffect::Route { .. }
            | ToolEffect::Cancel { .. }
            | ToolEffect::Status { .. }
            | ToolEffect::Cron(_) => {
                Handled::continue_with(ToolOutput::error("that tool is not available to a branch"))
            }
        },
    )
    .await;
    match end {
        LoopEnd::Text(text) if !text.is_empty() => text,
        LoopEnd::Text(_) => "the branch ended without a conclusion".to_string(),
        LoopEnd::TurnLimit => {
            format!("the branch reached its limit of {max_turns} steps without a conclusion")
        }
        LoopEnd::Failed(error) => format!("the branch failed: {error}"),
        LoopEnd::Finished(never) => match never {},
    }
}
