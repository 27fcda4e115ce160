//! Scheduled jobs: their definitions and validation, the per-agent `CronService` that the
//! channel's `cron` tool, the HTTP API and the CLI go through, and the board on which a
//! firing's channel reports its answers back to the run waiting for them.

pub mod schedule;
pub mod scheduler;
pub mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::agent::AgentRuntime;
use schedule::{ActiveHours, Cadence, CronExpression, Timing, Zone};
pub use store::{CronStore, ExecutionRecord, JobRecord, JobSource};

/// Failures in a row after which a job is disabled.
pub const FAILURES_BEFORE_DISABLE: i64 = 3;

/// The platforms a job's outcome can be delivered to.
const TARGET_PLATFORMS: [&str; 4] = ["portal", "telegram", "discord", "slack"];

#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("no cron job `{0}`")]
    NotFound(String),
    #[error("a cron job `{0}` already exists")]
    Exists(String),
    #[error("cron job `{0}` comes from the config file; change or remove it there")]
    FromConfig(String),
    #[error("the agent is shutting down")]
    ShuttingDown,
    #[error("cron store: {0}")]
    Store(#[from] sqlx::Error),
}

impl CronError {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        CronError::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// The cron settings every agent inherits (`[defaults.cron]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSettings {
    /// A slot missed by up to this much (the daemon was down) still runs, once.
    pub grace: Duration,
    /// The timeout of a job that names none.
    pub timeout: Duration,
}

impl Default for CronSettings {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(300),
            timeout: Duration::from_secs(600),
        }
    }
}

/// When a job fires, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleSpec {
    /// A cron expression (5 fields, or 6 with seconds).
    Cron(String),
    /// An interval in seconds.
    Every(u64),
}

/// A validated job definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub id: String,
    pub prompt: String,
    pub schedule: ScheduleSpec,
    /// The job's own IANA zone; `None` inherits the agent's.
    pub timezone: Option<String>,
    /// The conversation the outcome is delivered to; `None` only records it.
    pub delivery_target: Option<String>,
    /// `HH:MM-HH:MM` in the job's zone.
    pub active_hours: Option<String>,
    pub timeout_secs: u64,
    pub enabled: bool,
    pub run_once: bool,
}

impl JobSpec {
    /// The schedule, read in the job's zone or else `fallback` (the agent's).
    pub fn timing(&self, fallback: Zone) -> Result<Timing, String> {
        let cadence = match &self.schedule {
            ScheduleSpec::Cron(expression) => Cadence::Cron(CronExpression::parse(expression)?),
            ScheduleSpec::Every(seconds) => Cadence::Every(Duration::from_secs(*seconds)),
        };
        let zone = match &self.timezone {
            Some(name) => Zone::parse(name)?,
            None => fallback,
        };
        let active_hours = self
            .active_hours
            .as_deref()
            .map(ActiveHours::parse)
            .transpose()?;
        Ok(Timing {
            cadence,
            zone,
            active_hours,
        })
    }
}

/// A job as a person or a model writes it (API body, tool arguments, CLI flags): strings
/// to be validated into a `JobSpec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDraft {
    /// Default: a generated `job-…` id.
    #[serde(default)]
    pub id: Option<String>,
    pub prompt: String,
    #[serde(default)]
    pub cron: Option<String>,
    /// An interval such as `30s`, `15m`, `2h`.
    #[serde(default)]
    pub every: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub delivery_target: Option<String>,
    #[serde(default)]
    pub active_hours: Option<String>,
    /// A duration such as `5m`.
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub run_once: Option<bool>,
}

impl JobDraft {
    pub fn validate(self, settings: &CronSettings, fallback: Zone) -> Result<JobSpec, CronError> {
        let id = match self.id.map(|id| id.trim().to_string()) {
            Some(id) => {
                validate_id(&id).map_err(|message| CronError::invalid("id", message))?;
                id
            }
            None => format!("job-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        };
        let prompt = validate_prompt(&self.prompt)
            .map_err(|message| CronError::invalid("prompt", message))?;
        let schedule = parse_schedule(self.cron.as_deref(), self.every.as_deref())
            .map_err(|(field, message)| CronError::invalid(field, message))?;
        let timezone = self
            .timezone
            .map(|name| Zone::parse(&name).map(|zone| zone.name()))
            .transpose()
            .map_err(|message| CronError::invalid("timezone", message))?;
        let delivery_target = self
            .delivery_target
            .map(|target| validate_target(&target).map(|()| target.trim().to_string()))
            .transpose()
            .map_err(|message| CronError::invalid("delivery_target", message))?;
        let active_hours = self
            .active_hours
            .map(|text| ActiveHours::parse(&text).map(|hours| hours.to_string()))
            .transpose()
            .map_err(|message| CronError::invalid("active_hours", message))?;
        let timeout = match self.timeout {
            Some(text) => schedule::parse_duration(&text)
                .map_err(|message| CronError::invalid("timeout", message))?,
            None => settings.timeout,
        };
        let spec = JobSpec {
            id,
            prompt,
            schedule,
            timezone,
            delivery_target,
            active_hours,
            timeout_secs: timeout.as_secs(),
            enabled: self.enabled.unwrap_or(true),
            run_once: self.run_once.unwrap_or(false),
        };
        check_fires(&spec, fallback).map_err(|message| CronError::invalid("schedule", message))?;
        Ok(spec)
    }
}

/// Job ids are `[a-z0-9_-]{1,64}`: they name conversations (`cron:{id}:…`) and URLs.
pub fn validate_id(id: &str) -> Result<(), String> {
    let valid = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(format!("job id `{id}` must match [a-z0-9_-]{{1,64}}"))
    }
}

pub fn validate_prompt(prompt: &str) -> Result<String, String> {
    let prompt = prompt.trim();
    if prompt.is_empty() {
        Err("the prompt is empty".to_string())
    } else {
        Ok(prompt.to_string())
    }
}

/// Exactly one of a cron expression and an interval. The error names the field at fault.
pub fn parse_schedule(
    cron: Option<&str>,
    every: Option<&str>,
) -> Result<ScheduleSpec, (&'static str, String)> {
    match (cron, every) {
        (Some(expression), None) => CronExpression::parse(expression)
            .map(|parsed| ScheduleSpec::Cron(parsed.source))
            .map_err(|message| ("cron", message)),
        (None, Some(interval)) => schedule::parse_duration(interval)
            .map(|interval| ScheduleSpec::Every(interval.as_secs()))
            .map_err(|message| ("every", message)),
        (Some(_), Some(_)) => Err(("every", "give either `cron` or `every`, not both".into())),
        (None, None) => Err((
            "cron",
            "give a schedule: `cron` (an expression such as \"0 9 * * 1-5\") or `every` (an \
             interval such as \"30m\")"
                .into(),
        )),
    }
}

/// A conversation id on a platform that can receive messages: `telegram:…`, `discord:…`,
/// `slack:…` or `portal:…`.
pub fn validate_target(target: &str) -> Result<(), String> {
    let target = target.trim();
    match target.split_once(':') {
        Some((platform, rest)) if TARGET_PLATFORMS.contains(&platform) && !rest.is_empty() => {
            Ok(())
        }
        _ => Err(format!(
            "`{target}` is not a conversation to deliver to; expected one of {} followed by \
             `:` and the chat, e.g. telegram:12345",
            TARGET_PLATFORMS.join(", ")
        )),
    }
}

/// Refuses a schedule that never fires (e.g. a cron slot that is never inside its active
/// hours).
pub fn check_fires(spec: &JobSpec, fallback: Zone) -> Result<(), String> {
    let timing = spec.timing(fallback)?;
    match timing.next_slot(None, chrono::Utc::now()) {
        Some(_) => Ok(()),
        None => Err(format!(
            "{} never falls inside the active hours {}",
            timing.cadence.describe(),
            spec.active_hours.as_deref().unwrap_or("(none)")
        )),
    }
}

/// An instant (Unix milliseconds) as RFC 3339 in `zone`, e.g. `2026-03-09T09:00:00+01:00`.
pub fn format_instant(millis: i64, zone: Zone) -> String {
    let instant = chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default();
    match zone {
        Zone::Named(zone) => instant.with_timezone(&zone).to_rfc3339(),
        Zone::Local => instant.with_timezone(&chrono::Local).to_rfc3339(),
    }
}

/// Whether a conversation is a cron firing (`cron:{job}:{execution}`).
pub fn is_cron_conversation(conversation_id: &str) -> bool {
    conversation_id.starts_with("cron:")
}

/// What a firing's channel tells the run waiting on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunReport {
    /// A turn answered with this text.
    Answer(String),
    /// A turn chose not to answer.
    Skipped,
    /// A turn failed (the LLM could not be reached).
    Failed(String),
    /// Nothing is left to do: no turn owed, no branch or worker running.
    Settled,
}

/// Runs waiting for the answers of their conversations.
#[derive(Default)]
pub struct RunBoard {
    runs: Mutex<HashMap<String, mpsc::UnboundedSender<RunReport>>>,
}

impl RunBoard {
    pub fn open(&self, conversation_id: &str) -> mpsc::UnboundedReceiver<RunReport> {
        let (sender, receiver) = mpsc::unbounded_channel();
        if let Ok(mut runs) = self.runs.lock() {
            runs.insert(conversation_id.to_string(), sender);
        }
        receiver
    }

    /// Hands a report to the run of the conversation; false when no run waits for it.
    pub fn report(&self, conversation_id: &str, report: RunReport) -> bool {
        let sender = self
            .runs
            .lock()
            .ok()
            .and_then(|runs| runs.get(conversation_id).cloned());
        sender.is_some_and(|sender| sender.send(report).is_ok())
    }

    pub fn close(&self, conversation_id: &str) {
        if let Ok(mut runs) = self.runs.lock() {
            runs.remove(conversation_id);
        }
    }
}

/// The cron jobs of one agent: the store, the task of every enabled job, and the run board.
pub struct CronService {
    agent_id: String,
    store: CronStore,
    board: RunBoard,
    settings: CronSettings,
    /// The agent's zone (agent > defaults > local); a job's own zone wins over it.
    zone: Zone,
    /// The stop switch of each scheduled job's task, with the task's generation.
    jobs: Mutex<HashMap<String, (u64, CancellationToken)>>,
    generations: AtomicU64,
    /// Set by `start`; the runtime owns this service, so the link back is weak.
    runtime: OnceLock<Weak<AgentRuntime>>,
}

/// How a job is being changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    Enable,
    Disable,
}

impl CronService {
    pub fn new(agent_id: &str, store: CronStore, settings: CronSettings, zone: Zone) -> Self {
        Self {
            agent_id: agent_id.to_string(),
            store,
            board: RunBoard::default(),
            settings,
            zone,
            jobs: Mutex::new(HashMap::new()),
            generations: AtomicU64::new(0),
            runtime: OnceLock::new(),
        }
    }

    pub fn board(&self) -> &RunBoard {
        &self.board
    }

    pub fn store(&self) -> &CronStore {
        &self.store
    }

    pub fn settings(&self) -> &CronSettings {
        &self.settings
    }

    pub fn zone(&self) -> Zone {
        self.zone
    }

    /// Hands a report from a firing's channel to its run; false when none waits.
    pub fn report(&self, conversation_id: &str, report: RunReport) -> bool {
        self.board.report(conversation_id, report)
    }

    /// Recovers from an unclean stop, upserts the config's jobs (removing config jobs no
    /// longer listed) and starts a task for every enabled job. Call before answering
    /// pending messages, so an interrupted firing is closed rather than run again.
    pub async fn start(
        &self,
        runtime: &Arc<AgentRuntime>,
        configured: &[JobSpec],
    ) -> Result<(), CronError> {
        if self.runtime.set(Arc::downgrade(runtime)).is_err() {
            tracing::warn!(agent_id = %self.agent_id, "cron service started twice; keeping the first runtime");
        }
        let now = crate::database::now_millis();
        for execution in self.store.interrupt_running(now).await? {
            tracing::warn!(agent_id = %self.agent_id, job_id = %execution.job_id, conversation_id = %execution.conversation_id, "a cron run was interrupted by the last stop; it is not run again");
            runtime.close_conversation(&execution.conversation_id).await;
        }
        for spec in configured {
            self.store.upsert_config(spec, now).await?;
        }
        let ids: Vec<&str> = configured.iter().map(|spec| spec.id.as_str()).collect();
        for removed in self.store.remove_config_jobs_except(&ids).await? {
            tracing::info!(agent_id = %self.agent_id, job_id = %removed, "cron job no longer in the config; removed");
        }
        for job in self.store.list().await? {
            if job.enabled {
                if job.next_run_at.is_none() {
                    self.set_first_slot(&job.spec(), now).await?;
                }
                self.schedule(runtime, &job.id);
            }
        }
        Ok(())
    }

    /// Stores the first slot of a job that has none, so it shows before its task starts.
    async fn set_first_slot(&self, spec: &JobSpec, now: i64) -> Result<Option<i64>, CronError> {
        let first = spec
            .timing(self.zone)
            .ok()
            .and_then(|timing| timing.next_slot(None, chrono::Utc::now()))
            .map(|first| first.timestamp_millis());
        if let Some(first) = first {
            self.store.set_next_run(&spec.id, first, now).await?;
        }
        Ok(first)
    }

    fn runtime(&self) -> Result<Arc<AgentRuntime>, CronError> {
        self.runtime
            .get()
            .and_then(Weak::upgrade)
            .ok_or(CronError::ShuttingDown)
    }

    /// (Re)starts the task of a job.
    fn schedule(&self, runtime: &Arc<AgentRuntime>, job_id: &str) {
        let context = runtime.context();
        if context.closing.is_cancelled() {
            return;
        }
        let stop = context.closing.child_token();
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut jobs) = self.jobs.lock()
            && let Some((_, previous)) = jobs.insert(job_id.to_string(), (generation, stop.clone()))
        {
            previous.cancel();
        }
        scheduler::spawn_job(runtime.clone(), job_id.to_string(), generation, stop);
    }

    /// Stops the task of a job (a run in progress is cancelled).
    fn unschedule(&self, job_id: &str) {
        if let Ok(mut jobs) = self.jobs.lock()
            && let Some((_, stop)) = jobs.remove(job_id)
        {
            stop.cancel();
        }
    }

    /// Forgets a job task that ended on its own, unless it was replaced meanwhile.
    fn forget(&self, job_id: &str, generation: u64) {
        if let Ok(mut jobs) = self.jobs.lock()
            && jobs
                .get(job_id)
                .is_some_and(|(current, _)| *current == generation)
        {
            jobs.remove(job_id);
        }
    }

    /// Validates and stores a new job, and schedules it. A draft without a delivery target
    /// gets `default_target` (the conversation that asked, for the `cron` tool).
    pub async fn create(
        &self,
        mut draft: JobDraft,
        source: JobSource,
        default_target: Option<&str>,
    ) -> Result<JobRecord, CronError> {
        if draft.delivery_target.is_none() {
            draft.delivery_target = default_target.map(str::to_string);
        }
        let spec = draft.validate(&self.settings, self.zone)?;
        let runtime = self.runtime()?;
        if let Some(target) = &spec.delivery_target
            && !runtime.context().messaging.can_send_to(target)
        {
            return Err(CronError::invalid(
                "delivery_target",
                format!("no chat platform is configured for `{target}`"),
            ));
        }
        let now = crate::database::now_millis();
        let mut job = self.store.insert(&spec, source, now).await?;
        if job.enabled {
            job.next_run_at = self.set_first_slot(&spec, now).await?;
        }
        tracing::info!(agent_id = %self.agent_id, job_id = %job.id, source = source.as_str(), "cron job created");
        if job.enabled {
            self.schedule(&runtime, &job.id);
        }
        Ok(job)
    }

    /// Deletes a job and stops it at once. Config jobs are deleted only from the config.
    pub async fn delete(&self, job_id: &str) -> Result<(), CronError> {
        let job = self
            .store
            .get(job_id)
            .await?
            .ok_or_else(|| CronError::NotFound(job_id.to_string()))?;
        if job.source == JobSource::Config {
            return Err(CronError::FromConfig(job_id.to_string()));
        }
        self.unschedule(job_id);
        self.store.delete(job_id).await?;
        tracing::info!(agent_id = %self.agent_id, %job_id, "cron job deleted");
        Ok(())
    }

    /// Enables (clearing its failures) or disables a job.
    pub async fn switch(&self, job_id: &str, switch: Switch) -> Result<JobRecord, CronError> {
        let before = self.get(job_id).await?;
        let enabled = switch == Switch::Enable;
        let job = self
            .store
            .set_enabled(job_id, enabled, crate::database::now_millis())
            .await?
            .ok_or_else(|| CronError::NotFound(job_id.to_string()))?;
        match switch {
            // A disabled job's task has ended or is ending; an enabled one keeps its task
            // (and any run in progress).
            Switch::Enable if !before.enabled => self.schedule(&self.runtime()?, job_id),
            Switch::Enable => {}
            Switch::Disable => self.unschedule(job_id),
        }
        Ok(job)
    }

    /// Runs a job now, beside its schedule; returns the execution it started.
    pub async fn trigger(&self, job_id: &str) -> Result<ExecutionRecord, CronError> {
        let job = self
            .store
            .get(job_id)
            .await?
            .ok_or_else(|| CronError::NotFound(job_id.to_string()))?;
        let runtime = self.runtime()?;
        let execution = self
            .store
            .start_manual(&job.id, crate::database::now_millis())
            .await?;
        // Deleting or disabling the job also stops a manual run of it.
        let stop = self
            .jobs
            .lock()
            .ok()
            .and_then(|jobs| jobs.get(job_id).map(|(_, stop)| stop.child_token()))
            .unwrap_or_else(|| runtime.context().closing.child_token());
        scheduler::spawn_run(runtime, job, execution.clone(), stop);
        Ok(execution)
    }

    pub async fn list(&self) -> Result<Vec<JobRecord>, CronError> {
        Ok(self.store.list().await?)
    }

    pub async fn get(&self, job_id: &str) -> Result<JobRecord, CronError> {
        self.store
            .get(job_id)
            .await?
            .ok_or_else(|| CronError::NotFound(job_id.to_string()))
    }
}
