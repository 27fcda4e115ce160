//! A worker: an independent task with shell and file tools, bounded in LLM calls and wall-clock
//! time. It ends in exactly one terminal state, recorded in `worker_runs` and delivered once to
//! its channel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rig::message::Message;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::channel::{ChannelInput, ProcessReport, ProcessResult};
use super::processes::{ProcessEntry, StopReason, StopSignal};
use super::tool_loop::{CallResult, Handled, LoopEnd, LoopScope};
use super::{Agent, SpawnError};
use crate::conversation_id::ConversationId;
use crate::event::{ProcessEvent, ProcessId, ProcessType, WorkerState};
use crate::llm::LlmRequest;
use crate::message::Standing;
use crate::tools::{WorkerEffect, WorkerOutcome, WorkerRequest};

/// Follow-ups an interactive worker can hold before `route` reports it busy.
const INPUT_CAPACITY: usize = 8;
/// Times a worker that stops without `set_status` is reminded before it is failed.
const REMINDERS: usize = 2;

/// Starts a worker on the requested task for the channel of `conversation`. Only a turn that
/// may act starts one (`spawn_worker` acts); the worker works on its standing.
pub fn spawn(
    agent: &Arc<Agent>,
    conversation: &ConversationId,
    standing: Standing,
    results: mpsc::Sender<ChannelInput>,
    request: WorkerRequest,
) -> Result<ProcessId, SpawnError> {
    let WorkerRequest { task, interactive } = request;
    let limit = agent.config.limits.max_concurrent_workers;
    if agent
        .processes
        .count(conversation.as_str(), ProcessType::Worker)
        >= limit
    {
        return Err(SpawnError::AtLimit {
            kind: ProcessType::Worker,
            limit,
        });
    }
    let agent_limit = agent.config.limits.max_agent_workers;
    if agent.processes.count_all(ProcessType::Worker) >= agent_limit {
        return Err(SpawnError::AgentAtLimit {
            kind: ProcessType::Worker,
            limit: agent_limit,
        });
    }
    let id = uuid::Uuid::new_v4();
    let process_id = ProcessId::Worker(id);
    let stop = StopSignal::child_of(&agent.lifecycle.closing);
    let (input, input_receiver) = if interactive {
        let (sender, receiver) = mpsc::channel(INPUT_CAPACITY);
        (Some(sender), Some(receiver))
    } else {
        (None, None)
    };
    agent.processes.register(ProcessEntry {
        process_id: process_id.clone(),
        conversation_id: conversation.to_string(),
        description: task.clone(),
        status: String::new(),
        interactive,
        started_at: Instant::now(),
        stop: stop.clone(),
        input,
        waiting: false,
    });
    agent.tool_loop.events.publish(ProcessEvent::WorkerStarted {
        agent_id: agent.config.id.clone(),
        conversation_id: conversation.to_string(),
        process_id: process_id.clone(),
        task: task.clone(),
        interactive,
    });
    let span = tracing::info_span!(
        "worker",
        agent_id = %agent.config.id,
        conversation_id = %conversation,
        process_id = %process_id,
    );
    let worker = Worker {
        agent: agent.clone(),
        id,
        process_id: process_id.clone(),
        conversation: conversation.clone(),
        standing,
        task,
        interactive,
        results,
        input: input_receiver,
    };
    agent.lifecycle.tasks.spawn(
        async move {
            let timeout = Duration::from_secs(worker.agent.config.limits.worker_timeout_secs);
            worker.run(stop, timeout).await;
        }
        .instrument(span),
    );
    Ok(process_id)
}

struct Worker {
    agent: Arc<Agent>,
    id: uuid::Uuid,
    process_id: ProcessId,
    conversation: ConversationId,
    standing: Standing,
    task: String,
    interactive: bool,
    results: mpsc::Sender<ChannelInput>,
    input: Option<mpsc::Receiver<String>>,
}

impl Worker {
    /// Runs the worker to its one terminal state and delivers it, once.
    async fn run(mut self, stop: StopSignal, timeout: Duration) {
        self.record_start().await;
        let mut request = LlmRequest {
            system: self.system_prompt(),
            messages: vec![Message::user(self.task.clone())],
            tools: self.agent.tools.worker.definitions(self.standing.authority),
        };
        let mut input = self.input.take();
        let (state, result) = tokio::select! {
            outcome = self.work(&mut request, input.as_mut()) => outcome,
            reason = stop.stopped() => match reason {
                StopReason::Cancelled => (WorkerState::Cancelled, "the worker was cancelled".to_string()),
                StopReason::TimedOut(why) => (WorkerState::TimedOut, why),
            },
            () = tokio::time::sleep(timeout) => (
                WorkerState::TimedOut,
                format!("the worker timed out after {}s", timeout.as_secs()),
            ),
        };
        self.finish(state, result, &request.messages).await;
    }

    fn system_prompt(&self) -> String {
        let prompt = self.agent.tool_loop.render(
            "worker",
            minijinja::context! {
                agent_name => &self.agent.config.display_name,
                workspace => crate::sandbox::SANDBOX_ROOT,
                sandboxed => self.agent.sandbox.contained(),
                shell_off => self.agent.sandbox.shell_off(),
                interactive => self.interactive,
                mcp_servers => self.agent.tools.mcp.server_names(),
            },
        );
        let skills = self.agent.skills_prompt(true);
        if skills.is_empty() {
            prompt
        } else {
            format!("{prompt}\n\n{skills}")
        }
    }

    async fn work(
        &self,
        request: &mut LlmRequest,
        mut input: Option<&mut mpsc::Receiver<String>>,
    ) -> (WorkerState, String) {
        let max_turns = self.agent.config.limits.worker_max_turns;
        let mut reminders = 0;
        loop {
            let used = request
                .messages
                .iter()
                .filter(|message| matches!(message, Message::Assistant { .. }))
                .count();
            let remaining = max_turns.saturating_sub(used);
            if remaining == 0 {
                return (
                    WorkerState::Failed,
                    format!("the worker did not finish within {max_turns} steps"),
                );
            }
            let end = self
                .agent
                .tool_loop
                .run(
                    LoopScope {
                        process_id: &self.process_id,
                        conversation: &self.conversation,
                        standing: self.standing,
                    },
                    request,
                    &self.agent.tools.worker,
                    remaining,
                    &mut (),
                    |effect, result, _| self.handle(effect, result),
                )
                .await;
            match end {
                LoopEnd::Finished {
                    value: (WorkerOutcome::Succeeded, message),
                    ..
                } => {
                    return (WorkerState::Succeeded, message);
                }
                LoopEnd::Finished {
                    value: (WorkerOutcome::Failed, message),
                    ..
                } => {
                    return (WorkerState::Failed, message);
                }
                LoopEnd::Failed(error) => {
                    return (WorkerState::Failed, format!("LLM error: {error}"));
                }
                LoopEnd::Unreadable => {
                    return (
                        WorkerState::Failed,
                        "the model kept writing tool calls that could not be read".to_string(),
                    );
                }
                LoopEnd::TurnLimit => {
                    return (
                        WorkerState::Failed,
                        format!("the worker did not finish within {max_turns} steps"),
                    );
                }
                LoopEnd::Text(text) => match input.as_deref_mut() {
                    Some(input) => {
                        // Interactive: pass the message on and wait for the follow-up.
                        let waiting = ProcessReport {
                            standing: self.standing,
                            result: ProcessResult::WorkerWaiting {
                                process_id: self.process_id.clone(),
                                task: self.task.clone(),
                                message: text,
                            },
                        };
                        if self
                            .results
                            .send(ChannelInput::Result(waiting))
                            .await
                            .is_err()
                        {
                            return (WorkerState::Cancelled, "the channel is gone".to_string());
                        }
                        let processes = &self.agent.processes;
                        processes.set_waiting(&self.process_id, true);
                        let follow_up = input.recv().await;
                        processes.set_waiting(&self.process_id, false);
                        match follow_up {
                            Some(message) => request.messages.push(Message::user(message)),
                            None => {
                                return (WorkerState::Cancelled, "input closed".to_string());
                            }
                        }
                    }
                    None if reminders < REMINDERS => {
                        reminders += 1;
                        request.messages.push(Message::user(
                            "You have not finished: call set_status with state \"done\" and \
                             the result, or \"failed\" and what went wrong.",
                        ));
                    }
                    None => {
                        return (
                            WorkerState::Failed,
                            format!("the worker stopped without reporting an outcome: {text}"),
                        );
                    }
                },
            }
        }
    }

    fn handle(&self, effect: WorkerEffect, result: CallResult) -> Handled<(WorkerOutcome, String)> {
        match effect {
            WorkerEffect::Status { message, outcome } => {
                self.agent.processes.set_status(&self.process_id, &message);
                self.agent
                    .tool_loop
                    .events
                    .publish(ProcessEvent::WorkerStatus {
                        agent_id: self.agent.config.id.clone(),
                        conversation_id: self.conversation.to_string(),
                        process_id: self.process_id.clone(),
                        status: message.clone(),
                    });
                match outcome {
                    Some(outcome) => Handled::finish(result, (outcome, message)),
                    None => Handled::continue_with(result),
                }
            }
        }
    }

    async fn record_start(&self) {
        let recorded = self
            .agent
            .stores
            .worker_runs
            .record_start(
                self.id,
                self.conversation.as_str(),
                &self.task,
                self.interactive,
            )
            .await;
        if let Err(error) = recorded {
            tracing::error!(%error, "cannot record the worker run");
        }
    }

    /// The one place a worker ends: record, publish, deliver, unregister. The result is in
    /// the channel's inbox before the worker leaves the registry, so a channel that finds no
    /// process running has every result queued.
    async fn finish(&self, state: WorkerState, result: String, transcript: &[Message]) {
        let agent = &self.agent;
        tracing::info!(state = state.as_str(), "worker finished");
        let recorded = agent
            .stores
            .worker_runs
            .record_finish(self.id, state, &result, transcript)
            .await;
        if let Err(error) = recorded {
            tracing::error!(%error, "cannot record the worker outcome");
        }
        agent
            .tool_loop
            .events
            .publish(ProcessEvent::WorkerComplete {
                agent_id: agent.config.id.clone(),
                conversation_id: self.conversation.to_string(),
                process_id: self.process_id.clone(),
                state,
                result: result.clone(),
            });
        let finished = ProcessReport {
            standing: self.standing,
            result: ProcessResult::WorkerFinished {
                process_id: self.process_id.clone(),
                task: self.task.clone(),
                state,
                result,
            },
        };
        if self
            .results
            .send(ChannelInput::Result(finished))
            .await
            .is_err()
        {
            tracing::warn!("the channel is gone; the worker outcome is only recorded");
        }
        agent.processes.remove(&self.process_id);
    }
}
