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

use super::store::{ExecutionRecord, ExecutionState, Finish, JobRecord, Trigger};
use super::{CronHost, CronService, FAILURES_BEFORE_DISABLE, HostError, RunReport};
use crate::conversation_id::ConversationId;
use crate::database::now_millis;
use crate::message::{Authority, InboundMessage};
use crate::schedule::{Due, due, format_duration};
use crate::supervision::{RestartPolicy, TaskError, supervise};

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
    service: Arc<CronService>,
    host: Arc<dyn CronHost>,
    job_id: String,
    generation: u64,
    stop: CancellationToken,
) {
    let tasks = service.tasks().clone();
    let agent_id = service.agent_id().to_string();
    let watcher = service.clone();
    let watched_stop = stop.clone();
    let watched_id = job_id.clone();
    supervise(
        &tasks,
        "cron job",
        stop.clone(),
        RestartPolicy::from(RESTART_BACKOFF),
        move || {
            let service = service.clone();
            let host = host.clone();
            let job_id = job_id.clone();
            let stop = stop.clone();
            let span = tracing::info_span!("cron_job", agent_id = %agent_id, job_id = %job_id);
            async move { job_loop(&service, host.as_ref(), &job_id, &stop).await }.instrument(span)
        },
    );
    // Forget the job's stop switch once its task has ended for good.
    tasks.spawn(async move {
        watched_stop.cancelled().await;
        watcher.forget(&watched_id, generation);
    });
}

/// Starts one run (a manual trigger) as its own task.
pub(super) fn spawn_run(
    service: Arc<CronService>,
    host: Arc<dyn CronHost>,
    job: JobRecord,
    execution: ExecutionRecord,
    stop: CancellationToken,
) {
    let span = tracing::info_span!(
        "cron_run",
        agent_id = %service.agent_id(),
        job_id = %job.id,
        conversation_id = %execution.conversation_id,
    );
    service.tasks().clone().spawn(
        async move {
            run(&service, host.as_ref(), &job, &execution, &stop).await;
        }
        .instrument(span),
    );
}

fn instant(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

async fn job_loop(
    cron: &CronService,
    host: &dyn CronHost,
    job_id: &str,
    stop: &CancellationToken,
) -> Result<(), TaskError> {
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
                store.disable(job_id, &message.to_string(), now_ms).await?;
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
                    run(cron, host, &job, &execution, stop)
                        .instrument(span)
                        .await;
                }
            }
        }
    }
}

/// How a run ended, before it is recorded.
enum RunEnd {
    /// The conversation settled; the last answer (or failure) of its turns, if any.
    Settled(Option<LastAnswer>),
    TimedOut,
    Cancelled,
    Interrupted,
    NotStarted(String),
}

/// What the last turn of a settled run came to.
enum LastAnswer {
    Text(String),
    Failed(String),
}

/// Fires a job once and records the execution. The outcome goes to the target at most once.
async fn run(
    cron: &CronService,
    host: &dyn CronHost,
    job: &JobRecord,
    execution: &ExecutionRecord,
    stop: &CancellationToken,
) {
    let timeout = Duration::from_secs(u64::try_from(job.timeout_secs).unwrap_or(1).max(1));
    tracing::info!(trigger = ?execution.trigger, "cron job firing");
    let conversation = match ConversationId::parse(&execution.conversation_id) {
        Ok(conversation) => conversation,
        Err(error) => {
            tracing::error!(%error, "the run's conversation id cannot be read");
            return;
        }
    };
    let mut reports = cron.board().open(&conversation);
    let end = match host
        .fire(firing_message(cron, job, execution, &conversation))
        .await
    {
        Err(error) => RunEnd::NotStarted(error.to_string()),
        Ok(()) => tokio::select! {
            end = settle(&mut reports) => end,
            () = tokio::time::sleep(timeout) => RunEnd::TimedOut,
            () = stop.cancelled() => if cron.closing().is_cancelled() {
                RunEnd::Interrupted
            } else {
                RunEnd::Cancelled
            },
        },
    };
    cron.board().close(&conversation);
    host.close(&conversation).await;

    let mut delivered = false;
    let (state, outcome, error) = match end {
        RunEnd::Settled(Some(LastAnswer::Text(text))) => match &job.delivery_target {
            Some(target) => match deliver(host, target, &text).await {
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
        RunEnd::Settled(Some(LastAnswer::Failed(error))) => {
            (ExecutionState::Failed, None, Some(error))
        }
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
    cron.metrics().cron_run(cron.agent_id(), state.as_str());
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
                announce_disabled(host, job).await;
            }
        }
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "cannot record the cron run"),
    }
}

/// The message a firing starts its conversation with.
fn firing_message(
    cron: &CronService,
    job: &JobRecord,
    execution: &ExecutionRecord,
    conversation: &ConversationId,
) -> InboundMessage {
    let schedule = job
        .spec()
        .timing(cron.zone())
        .map(|timing| timing.cadence.describe())
        .unwrap_or_default();
    let content = cron
        .prompts()
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
    let mut message = InboundMessage::new(conversation.clone(), "cron", content);
    message.platform_message_id = Some(execution.id.clone());
    message.mentions_bot = true;
    // Jobs come from the config, or were made by an owner (the tool is theirs alone, the API
    // and the CLI are the owner's).
    message.authority = Authority::Owner;
    message
}

/// Collects the conversation's answers until it settles.
async fn settle(reports: &mut mpsc::UnboundedReceiver<RunReport>) -> RunEnd {
    let mut last = None;
    while let Some(report) = reports.recv().await {
        match report {
            RunReport::Answer(text) => last = Some(LastAnswer::Text(text)),
            RunReport::Failed(error) => last = Some(LastAnswer::Failed(error)),
            RunReport::Skipped => {}
            RunReport::Settled => return RunEnd::Settled(last),
        }
    }
    RunEnd::Settled(last)
}

/// Sends text to a target conversation through the agent (the retried outbound path), which
/// records it there too, so that conversation knows what it was sent.
async fn deliver(host: &dyn CronHost, target: &str, text: &str) -> Result<(), HostError> {
    let target = ConversationId::parse(target)?;
    host.announce(&target, text).await
}

/// Tells the job's target that the job was disabled after failing repeatedly.
async fn announce_disabled(host: &dyn CronHost, job: &JobRecord) {
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
    if let Err(error) = deliver(host, target, &notice).await {
        tracing::error!(%error, %target, "cannot tell the target that the job was disabled");
    }
}
