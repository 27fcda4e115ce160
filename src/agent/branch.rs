//! A branch: a fork of the channel's context that thinks with its own prompt and tools, and
//! returns a conclusion that re-triggers the channel.

use std::sync::Arc;

use rig::message::Message;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::channel::{ChannelInput, ProcessReport, ProcessResult};
use super::processes::{ProcessEntry, StopReason, StopSignal};
use super::tool_loop::{CallResult, Handled, LoopEnd, LoopScope};
use super::{Agent, SpawnError, worker};
use crate::conversation_id::ConversationId;
use crate::event::{ProcessEvent, ProcessId, ProcessType};
use crate::llm::LlmRequest;
use crate::message::Standing;
use crate::tools::BranchEffect;

/// Starts a branch of `conversation` forked from `history`, working on `standing`.
pub fn spawn(
    agent: &Arc<Agent>,
    conversation: &ConversationId,
    standing: Standing,
    results: mpsc::Sender<ChannelInput>,
    history: &[Message],
    prompt: String,
) -> Result<ProcessId, SpawnError> {
    let limit = agent.config.limits.max_concurrent_branches;
    if agent
        .processes
        .count(conversation.as_str(), ProcessType::Branch)
        >= limit
    {
        return Err(SpawnError::AtLimit {
            kind: ProcessType::Branch,
            limit,
        });
    }
    let process_id = ProcessId::Branch(uuid::Uuid::new_v4());
    let stop = StopSignal::child_of(&agent.lifecycle.closing);
    agent.processes.register(ProcessEntry {
        process_id: process_id.clone(),
        conversation_id: conversation.to_string(),
        description: prompt.clone(),
        status: String::new(),
        interactive: false,
        started_at: std::time::Instant::now(),
        stop: stop.clone(),
        input: None,
        waiting: false,
    });
    agent.tool_loop.events.publish(ProcessEvent::BranchStarted {
        agent_id: agent.config.id.clone(),
        conversation_id: conversation.to_string(),
        process_id: process_id.clone(),
        prompt: prompt.clone(),
    });
    let span = tracing::info_span!(
        "branch",
        agent_id = %agent.config.id,
        conversation_id = %conversation,
        process_id = %process_id,
    );
    let task_agent = agent.clone();
    let conversation = conversation.clone();
    let history = history.to_vec();
    let returned_id = process_id.clone();
    agent.lifecycle.tasks.spawn(
        async move {
            let agent = task_agent;
            let conclusion = tokio::select! {
                conclusion = think(&agent, &process_id, &conversation, standing, &results, history, &prompt) => conclusion,
                reason = stop.stopped() => match reason {
                    StopReason::Cancelled => "the branch was cancelled before it concluded".to_string(),
                    StopReason::TimedOut(why) => format!("the branch was stopped before it concluded: {why}"),
                },
            };
            agent.tool_loop.events.publish(ProcessEvent::BranchResult {
                agent_id: agent.config.id.clone(),
                conversation_id: conversation.to_string(),
                process_id: process_id.clone(),
                conclusion: conclusion.clone(),
            });
            let report = ProcessReport {
                standing,
                result: ProcessResult::BranchConcluded {
                    process_id: process_id.clone(),
                    prompt,
                    conclusion,
                },
            };
            if results.send(ChannelInput::Result(report)).await.is_err() {
                tracing::warn!("the channel is gone; the branch conclusion is only logged");
            }
            // Unregistered only once the conclusion is queued (see `Worker::finish`).
            agent.processes.remove(&process_id);
        }
        .instrument(span),
    );
    Ok(returned_id)
}

async fn think(
    agent: &Arc<Agent>,
    process_id: &ProcessId,
    conversation: &ConversationId,
    standing: Standing,
    results: &mpsc::Sender<ChannelInput>,
    history: Vec<Message>,
    prompt: &str,
) -> String {
    let tool_loop = &agent.tool_loop;
    let branch = tool_loop.render(
        "branch",
        minijinja::context! {
            agent_name => &agent.config.display_name,
            conversation_id => conversation.as_str(),
            soul => &agent.identity.soul,
        },
    );
    let guidance = tool_loop.render("memory_guidance", minijinja::context! {});
    let skills = agent.skills_prompt(true);
    let guidance = if skills.is_empty() {
        guidance
    } else {
        format!("{guidance}\n\n{skills}")
    };
    let mut messages = history;
    messages.push(Message::user(format!("[Branch task] {prompt}")));
    let mut request = LlmRequest {
        system: format!("{branch}\n\n{guidance}"),
        messages,
        tools: agent.tools.branch.definitions(standing.authority),
    };
    let max_turns = agent.config.limits.branch_max_turns;
    let end = tool_loop
        .run::<BranchEffect, std::convert::Infallible>(
            LoopScope {
                process_id,
                conversation,
                standing,
            },
            &mut request,
            &agent.tools.branch,
            max_turns,
            &mut (),
            |effect, _, _| match effect {
                BranchEffect::SpawnWorker(request) => Handled::continue_with(
                    match worker::spawn(agent, conversation, standing, results.clone(), request) {
                        Ok(worker_id) => CallResult::success(format!(
                            "worker `{worker_id}` started; its result goes to the conversation"
                        )),
                        Err(error) => CallResult::error(error.to_string()),
                    },
                ),
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
        LoopEnd::Unreadable => {
            "the branch failed: its model kept writing tool calls that could not be read"
                .to_string()
        }
        LoopEnd::Finished { value, .. } => match value {},
    }
}
