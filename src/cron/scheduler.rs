//! The task of each scheduled job: it waits for the job's persisted next slot, claims it,
//! fires the job into a fresh `cron:{job}:{execution}` conversation run by the ordinary
//! channel (branches and workers included), waits for the run to settle or time out, records
//! the execution, and delivers the outcome once to the job's target.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::schedule::{Due, due, format_duration};
use super::store::{ExecutionRecord, ExecutionState, Finish, JobRecord, Trigger};
use super::{FAILURES_BEFORE_DISABLE, RunReport};
use crate::agent::AgentRuntime;
use crate::daemon::{TaskError, supervise};
use crate::database::now_millis;
use crate::messaging::{InboundMessage, MessageLocation, new_message_id};

/// A job task re-reads its job at least this often while it waits, so wall-clock jumps and
/// daylight-saving changes are noticed.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);
/// The first restart delay of a job task that failed (a database error).
const RESTART_BACKOFF: Duration = Duration::from_secs(1);
/// Executions kept visible in a job's history.
pub const HISTORY_SHOWN: usize = 20;

/// Starts the supervised task of a job; it ends when `stop` is cancelled or the job is
/// disabled or deleted.
pub(super) fn spawn_job(
    runtime: Arc<AgentRuntime>,
    job_id: String,
    generation: u64,
    stop: CancellationToken,
) {
    let context = runtime.context();
    let tasks = context.tasks.clone();
    let agent_id = context.agent_id.clone();
    let watcher = runtime.clone();
    let watched_stop = stop.clone();
    let watched_id = job_id.clone();
    supervise(
        &tasks,
        "cron job",
        stop.clone(),
        RESTART_BACKOFF,
        move || {
            let runtime = runtime.clone();
            let job_id = job_id.clone();
            let stop = stop.clone();
            let span = tracing::info_span!("cron_job", agent_id = %agent_id, job_id = %job_id);
            async move { job_loop(&runtime, &job_id, &stop).await }.instrument(span)
        },
    );
    // Forget the job's stop switch once its task has ended for good.
    tasks.spawn(async move {
        watched_stop.cancelled().await;
        watcher.context().cron.forget(&watched_id, generation);
    });
}

/// Starts one run (a manual trigger) as its own task.
pub(super) fn spawn_run(
    runtime: Arc<AgentRuntime>,
    job: JobRecord,
    execution: ExecutionRecord,
    stop: CancellationToken,
) {
    let tasks = runtime.context().tasks.clone();
    let span = tracing::info_span!(
        "cron_run",
        agent_id = %runtime.context().agent_id,
        job_id = %job.id,
        conversation_id = %execution.conversation_id,
    );
    tasks.spawn(
        async move {
            run(&runtime, &job, &execution, &stop).await;
        }
        .instrument(span),
    );
}

fn instant(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

async fn job_loop(
    runtime: &Arc<AgentRuntime>,
    job_id: &str,
    stop: &CancellationToken,
) -> Result<(), TaskError> {
    let context = runtime.context();
    let cron = &context.cron;
    let store = cron.store();
    loop {
        if stop.is_cancelled() {
            return Ok(());
        }
        let Some(job) = store.get(job_id).await?.filter(|job| job.enabled) else {
            tracing::debug!("job deleted or disabled; its task ends");
            stop.cancel();
            return Ok(());
        };
        let now_ms = now_millis();
        let now = instant(now_ms);
        let timing = match job.spec().timing(cron.zone()) {
            Ok(timing) => timing,
            Err(message) => {
                tracing::error!(%message, "job cannot be scheduled; disabling it");
                store.disable(job_id, &message, now_ms).await?;
                stop.cancel();
                return Ok(());
            }
        };
        let Some(slot_ms) = job.next_run_at else {
            match timing.next_slot(None, now) {
                Some(next) => {
                    tracing::info!(next_run = %next, "job scheduled");
                    store
                        .set_next_run(job_id, next.timestamp_millis(), now_ms)
                        .await?;
                }
                None => {
                    let reason = format!(
                        "{} has no slot inside its active hours",
                        timing.cadence.describe()
                    );
                    tracing::warn!(%reason, "disabling job");
                    store.disable(job_id, &reason, now_ms).await?;
                    stop.cancel();
                    return Ok(());
                }
            }
            continue;
        };
        let slot = instant(slot_ms);
        match due(slot, now, cron.settings().grace) {
            Due::Wait => {
                let wait = (slot - now).to_std().unwrap_or_default().min(LONGEST_SLEEP);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => return Ok(()),
                }
            }
            Due::Missed => {
                let next = timing.next_slot(Some(slot), now);
                let late = (now - slot).to_std().unwrap_or_default();
                let message = format!(
                    "missed by {} while the daemon was not running (grace window {}); skipped \
                     to the next slot",
                    format_duration(late),
                    format_duration(cron.settings().grace)
                );
                tracing::warn!(%slot, next_run = ?next, "{message}");
                store
                    .record_missed(
                        job_id,
                        slot_ms,
                        next.map(|next| next.timestamp_millis()),
                        &message,
                        now_ms,
                    )
                    .await?;
            }
            Due::Run => {
                let next = if job.run_once {
                    None
                } else {
                    timing.next_slot(Some(slot), now)
                };
                let claimed = store
                    .claim(
                        job_id,
                        slot_ms,
                        next.map(|next| next.timestamp_millis()),
                        now_ms,
                    )
                    .await?;
                if let Some(execution) = claimed {
                    let span = tracing::info_span!(
                        "cron_run",
                        conversation_id = %execution.conversation_id,
                    );
                    run(runtime, &job, &execution, stop).instrument(span).await;
                }
            }
        }
    }
}

/// How a run ended, before it is recorded.
enum RunEnd {
    /// The conversation settled; the last answer (or failure) of its turns, if any.
    Settled(Option<Result<String, String>>),
    TimedOut,
    Cancelled,
    Interrupted,
    NotStarted(String),
}

/// Fires a job once and records the execution. The outcome goes to the target at most once.
async fn run(
    runtime: &Arc<AgentRuntime>,
    job: &JobRecord,
    execution: &ExecutionRecord,
    stop: &CancellationToken,
) {
    let context = runtime.context();
    let cron = &context.cron;
    let conversation_id = &execution.conversation_id;
    let timeout = Duration::from_secs(u64::try_from(job.timeout_secs).unwrap_or(1).max(1));
    tracing::info!(trigger = ?execution.trigger, "cron job firing");
    let mut reports = cron.board().open(conversation_id);
    let end = match runtime.route(firing_message(runtime, job, execution)).await {
        Err(error) => RunEnd::NotStarted(error.to_string()),
        Ok(_) => tokio::select! {
            end = settle(&mut reports) => end,
            () = tokio::time::sleep(timeout) => RunEnd::TimedOut,
            () = stop.cancelled() => if context.closing.is_cancelled() {
                RunEnd::Interrupted
            } else {
                RunEnd::Cancelled
            },
        },
    };
    cron.board().close(conversation_id);
    runtime.close_conversation(conversation_id).await;

    let mut delivered = false;
    let (state, outcome, error) = match end {
        RunEnd::Settled(Some(Ok(text))) => match &job.delivery_target {
            Some(target) => match deliver(runtime, target, &text).await {
                Ok(()) => {
                    delivered = true;
                    (ExecutionState::Succeeded, Some(text), None)
                }
                Err(error) => (
                    ExecutionState::Failed,
                    Some(text),
                    Some(format!("delivery to {target} failed: {error}")),
                ),
            },
            None => (ExecutionState::Succeeded, Some(text), None),
        },
        RunEnd::Settled(Some(Err(error))) => (ExecutionState::Failed, None, Some(error)),
        RunEnd::Settled(None) => (ExecutionState::Succeeded, None, None),
        RunEnd::TimedOut => (
            ExecutionState::TimedOut,
            None,
            Some(format!(
                "no outcome within the job's timeout of {}",
                format_duration(timeout)
            )),
        ),
        RunEnd::Cancelled => (
            ExecutionState::Cancelled,
            None,
            Some("the job was deleted or disabled during the run".to_string()),
        ),
        RunEnd::Interrupted => (
            ExecutionState::Interrupted,
            None,
            Some("the daemon stopped during the run".to_string()),
        ),
        RunEnd::NotStarted(error) => (ExecutionState::Failed, None, Some(error)),
    };
    match &error {
        Some(error) => tracing::warn!(state = state.as_str(), %error, "cron run ended"),
        None => tracing::info!(state = state.as_str(), delivered, "cron run ended"),
    }
    let finish = Finish {
        state,
        outcome: outcome.as_deref(),
        error: error.as_deref(),
        delivered,
    };
    match cron.store().finish(execution, &finish, now_millis()).await {
        Ok(finished) if finished.disabled_now => {
            if let Some(job) = &finished.job {
                announce_disabled(runtime, job).await;
            }
        }
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "cannot record the cron run"),
    }
}

/// The message a firing starts its conversation with.
fn firing_message(
    runtime: &AgentRuntime,
    job: &JobRecord,
    execution: &ExecutionRecord,
) -> InboundMessage {
    let context = runtime.context();
    let schedule = job
        .spec()
        .timing(context.cron.zone())
        .map(|timing| timing.cadence.describe())
        .unwrap_or_default();
    let content = context
        .prompts
        .render(
            "cron",
            minijinja::context! {
                job_id => &job.id,
                prompt => &job.prompt,
                delivery_target => &job.delivery_target,
                schedule,
                manual => execution.trigger == Trigger::Manual,
            },
        )
        .unwrap_or_else(|error| {
            tracing::error!(%error, "cannot render the cron prompt; sending the job's prompt alone");
            job.prompt.clone()
        });
    InboundMessage {
        id: new_message_id(),
        conversation_id: execution.conversation_id.clone(),
        sender: "cron".to_string(),
        content,
        platform_message_id: Some(execution.id.clone()),
        mentions_bot: true,
        is_direct: true,
        location: MessageLocation::default(),
    }
}

/// Collects the conversation's answers until it settles.
async fn settle(reports: &mut mpsc::UnboundedReceiver<RunReport>) -> RunEnd {
    let mut last = None;
    while let Some(report) = reports.recv().await {
        match report {
            RunReport::Answer(text) => last = Some(Ok(text)),
            RunReport::Failed(error) => last = Some(Err(error)),
            RunReport::Skipped => {}
            RunReport::Settled => return RunEnd::Settled(last),
        }
    }
    RunEnd::Settled(last)
}

/// Sends text to a target conversation through the retried outbound path, then records it
/// there (transcript, context, event), so that conversation knows what it was sent.
async fn deliver(runtime: &AgentRuntime, target: &str, text: &str) -> Result<(), String> {
    let context = runtime.context();
    context
        .messaging
        .send_to(target, text)
        .await
        .map_err(|error| error.to_string())?;
    if let Err(error) = runtime.announce(target, text).await {
        tracing::error!(%error, %target, "delivered, but not recorded in the target conversation");
    }
    Ok(())
}

/// Tells the job's target that the job was disabled after failing repeatedly.
async fn announce_disabled(runtime: &AgentRuntime, job: &JobRecord) {
    let reason = job
        .disabled_reason
        .as_deref()
        .unwrap_or("it failed repeatedly");
    tracing::error!(job_id = %job.id, %reason, "cron job disabled after {FAILURES_BEFORE_DISABLE} failures in a row");
    let Some(target) = &job.delivery_target else {
        return;
    };
    let notice = format!(
        "Scheduled job `{}` is now disabled: it {reason}. Enable it again with `spacebot cron \
         enable {}` once the cause is fixed.",
        job.id, job.id
    );
    if let Err(error) = deliver(runtime, target, &notice).await {
        tracing::error!(%error, %target, "cannot tell the target that the job was disabled");
    }
}
