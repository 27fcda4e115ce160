//! A worker: an independent task with shell and file tools, bounded in LLM calls and wall-clock
//! time. It ends in exactly one terminal state, recorded in `worker_runs` and delivered once to
//! its channel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rig::message::Message;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::AgentContext;
use super::channel::{ChannelInput, ProcessResult};
use super::processes::{ProcessEntry, StopReason, StopSignal};
use super::turn::{self, Handled, LoopEnd};
use crate::database::now_millis;
use crate::event::{ProcessEvent, ProcessId, ProcessType, WorkerState};
use crate::llm::LlmRequest;
use crate::sandbox::sandbox_available;
use crate::tools::{ProcessScope, ToolEffect, ToolOutput, ToolSet, WorkerOutcome};

/// Follow-ups an interactive worker can hold before `route` reports it busy.
const INPUT_CAPACITY: usize = 8;
/// Times a worker that stops without `set_status` is reminded before it is failed.
const REMINDERS: usize = 2;

/// Starts a worker on `task` for the channel of `conversation_id`. The error is for the model.
pub fn spawn(
    context: &Arc<AgentContext>,
    conversation_id: &str,
    results: mpsc::Sender<ChannelInput>,
    task: String,
    interactive: bool,
) -> Result<ProcessId, String> {
    let limit = context.config.limits.max_concurrent_workers;
    if context
        .processes
        .count(conversation_id, ProcessType::Worker)
        >= limit
    {
        return Err(format!(
            "{limit} workers are already running in this conversation (the limit); wait for \
             one to finish or cancel one"
        ));
    }
    let id = uuid::Uuid::new_v4();
    let process_id = ProcessId::Worker(id);
    let stop = StopSignal::child_of(&context.closing);
    let (input, input_receiver) = if interactive {
        let (sender, receiver) = mpsc::channel(INPUT_CAPACITY);
        (Some(sender), Some(receiver))
    } else {
        (None, None)
    };
    context.processes.register(ProcessEntry {
        process_id: process_id.clone(),
        conversation_id: conversation_id.to_string(),
        description: task.clone(),
        status: String::new(),
        interactive,
        started_at: Instant::now(),
        stop: stop.clone(),
        input,
        waiting: false,
    });
    context.events.publish(ProcessEvent::WorkerStarted {
        agent_id: context.agent_id.clone(),
        conversation_id: conversation_id.to_string(),
        process_id: process_id.clone(),
        task: task.clone(),
        interactive,
    });
    let span = tracing::info_span!(
        "worker",
        agent_id = %context.agent_id,
        conversation_id = %conversation_id,
        process_id = %process_id,
    );
    let worker = Worker {
        context: context.clone(),
        id,
        process_id: process_id.clone(),
        conversation_id: conversation_id.to_string(),
        task,
        interactive,
        results,
        input: input_receiver,
    };
    context.tasks.spawn(
        async move {
            let timeout = Duration::from_secs(worker.context.config.limits.worker_timeout_secs);
            worker.run(stop, timeout).await;
        }
        .instrument(span),
    );
    Ok(process_id)
}

struct Worker {
    context: Arc<AgentContext>,
    id: uuid::Uuid,
    process_id: ProcessId,
    conversation_id: String,
    task: String,
    interactive: bool,
    results: mpsc::Sender<ChannelInput>,
    input: Option<mpsc::Receiver<String>>,
}

impl Worker {
    /// Runs the worker to its one terminal state and delivers it, once.
    async fn run(mut self, stop: StopSignal, timeout: Duration) {
        self.record_start().await;
        let tools = ToolSet::worker(
            &self.context.prompts,
            self.context.workspace.clone(),
            ProcessScope {
                agent_id: self.context.agent_id.clone(),
                conversation_id: self.conversation_id.clone(),
                process_id: self.process_id.clone(),
                events: self.context.events.clone(),
            },
        );
        let mut request = LlmRequest {
            system: self.system_prompt(),
            messages: vec![Message::user(self.task.clone())],
            tools: tools.definitions(),
        };
        let mut input = self.input.take();
        let (state, result) = tokio::select! {
            outcome = self.work(&mut request, &tools, input.as_mut()) => outcome,
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
        self.context
            .prompts
            .render(
                "worker",
                minijinja::context! {
                    agent_name => &self.context.config.display_name,
                    workspace => self.context.workspace.root().display().to_string(),
                    sandboxed => sandbox_available(),
                    interactive => self.interactive,
                },
            )
            .unwrap_or_else(|error| {
                tracing::error!(%error, "cannot render the worker prompt");
                String::new()
            })
    }

    async fn work(
        &self,
        request: &mut LlmRequest,
        tools: &ToolSet,
        mut input: Option<&mut mpsc::Receiver<String>>,
    ) -> (WorkerState, String) {
        let max_turns = self.context.config.limits.worker_max_turns;
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
            let end = turn::run(
                &self.context,
                &self.process_id,
                &self.conversation_id,
                request,
                tools,
                remaining,
                |effect, output, _| self.handle(effect, output),
            )
            .await;
            match end {
                LoopEnd::Finished((WorkerOutcome::Succeeded, message)) => {
                    return (WorkerState::Succeeded, message);
                }
                LoopEnd::Finished((WorkerOutcome::Failed, message)) => {
                    return (WorkerState::Failed, message);
                }
                LoopEnd::Failed(error) => {
                    return (WorkerState::Failed, format!("LLM error: {error}"));
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
                        let waiting = ProcessResult::WorkerWaiting {
                            process_id: self.process_id.clone(),
                            task: self.task.clone(),
                            message: text,
                        };
                        if self
                            .results
                            .send(ChannelInput::Result(waiting))
                            .await
                            .is_err()
                        {
                            return (WorkerState::Cancelled, "the channel is gone".to_string());
                        }
                        let processes = &self.context.processes;
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

    fn handle(&self, effect: ToolEffect, output: ToolOutput) -> Handled<(WorkerOutcome, String)> {
        match effect {
            ToolEffect::Status { message, outcome } => {
                self.context
                    .processes
                    .set_status(&self.process_id, &message);
                self.context.events.publish(ProcessEvent::WorkerStatus {
                    agent_id: self.context.agent_id.clone(),
                    conversation_id: self.conversation_id.clone(),
                    process_id: self.process_id.clone(),
                    status: message.clone(),
                });
                match outcome {
                    Some(outcome) => Handled::finish(output, (outcome, message)),
                    None => Handled::continue_with(output),
                }
            }
            ToolEffect::Reply { .. }
            | ToolEffect::Skip { .. }
            | ToolEffect::Branch { .. }
            | ToolEffect::SpawnWorker { .. }
            | ToolEffect::Route { .. }
            | ToolEffect::Cancel { .. }
            | ToolEffect::Cron(_) => {
                Handled::continue_with(ToolOutput::error("that tool is not available to a worker"))
            }
        }
    }

    async fn record_start(&self) {
        let result = sqlx::query(
            "INSERT INTO worker_runs (id, conversation_id, task, interactive, state, started_at)
             VALUES (?, ?, ?, ?, 'running', ?)",
        )
        .bind(self.id.to_string())
        .bind(&self.conversation_id)
        .bind(&self.task)
        .bind(self.interactive)
        .bind(now_millis())
        .execute(&self.context.pool)
        .await;
        if let Err(error) = result {
            tracing::error!(%error, "cannot record the worker run");
        }
    }

    /// The one place a worker ends: record, publish, deliver, unregister. The result is in
    /// the channel's inbox before the worker leaves the registry, so a channel that finds no
    /// process running has every result queued.
    async fn finish(&self, state: WorkerState, result: String, transcript: &[Message]) {
        let context = &self.context;
        tracing::info!(state = state.as_str(), "worker finished");
        let transcript = serde_json::to_string(transcript).unwrap_or_default();
        let recorded = sqlx::query(
            "UPDATE worker_runs SET state = ?, result = ?, transcript = ?, ended_at = ? WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(&result)
        .bind(transcript)
        .bind(now_millis())
        .bind(self.id.to_string())
        .execute(&context.pool)
        .await;
        if let Err(error) = recorded {
            tracing::error!(%error, "cannot record the worker outcome");
        }
        context.events.publish(ProcessEvent::WorkerComplete {
            agent_id: context.agent_id.clone(),
            conversation_id: self.conversation_id.clone(),
            process_id: self.process_id.clone(),
            state,
            result: result.clone(),
        });
        let finished = ProcessResult::WorkerFinished {
            process_id: self.process_id.clone(),
            task: self.task.clone(),
            state,
            result,
        };
        if self
            .results
            .send(ChannelInput::Result(finished))
            .await
            .is_err()
        {
            tracing::warn!("the channel is gone; the worker outcome is only recorded");
        }
        context.processes.remove(&self.process_id);
    }
}
