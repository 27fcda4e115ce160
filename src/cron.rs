//! Scheduled jobs of one agent: the `CronService` that the `cron` tool, the HTTP API and the
//! CLI go through, the task of every enabled job (`scheduler`), and the board on which a
//! firing's answers come back to the run waiting for them (`runs`). Cron drives its agent
//! only through `CronHost`; job definitions are `schedule` types.

mod runs;
mod scheduler;
mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio_util::sync::CancellationToken;

use crate::config::AgentConfig;
use crate::conversation_id::ConversationId;
use crate::message::InboundMessage;
use crate::metrics::Metrics;
use crate::prompts::Prompts;
// `ScheduleSpec` is read by `store` through this module.
use crate::schedule::{
    CronSettings, InvalidJob, JobDraft, JobSpec, ScheduleSpec, Zone, format_duration,
    format_instant, shortest_gap,
};
use crate::supervision::Lifecycle;
use crate::tools::{CronJobs, JobsError};
pub use runs::{RunBoard, RunOutbox, RunReport};
pub use scheduler::HISTORY_SHOWN;
pub use store::{CronStore, ExecutionRecord, JobRecord, JobSource};

/// Failures in a row after which a job is disabled.
pub const FAILURES_BEFORE_DISABLE: i64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error(transparent)]
    Invalid(#[from] InvalidJob),
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

/// Why the agent could not do what a run asked of it.
pub type HostError = Box<dyn std::error::Error + Send + Sync>;

/// The agent a job fires into, as cron sees it.
#[async_trait::async_trait]
pub trait CronHost: Send + Sync {
    /// Stores a firing's first message and queues it on its conversation.
    async fn fire(&self, message: InboundMessage) -> Result<(), HostError>;
    /// Ends a firing's conversation: its branches and workers stop, and messages still owed
    /// an answer are closed, so a restart does not run it again.
    async fn close(&self, conversation: &ConversationId);
    /// Sends `text` to `target` outside any turn, and records it there.
    async fn announce(&self, target: &ConversationId, text: &str) -> Result<(), HostError>;
    /// Whether `target` can receive messages (its platform is configured).
    fn reaches(&self, target: &ConversationId) -> bool;
}

/// The cron jobs of one agent: the store, the task of every enabled job, and the run board.
pub struct CronService {
    agent_id: String,
    store: CronStore,
    board: RunBoard,
    settings: CronSettings,
    /// The agent's zone (agent > defaults > local); a job's own zone wins over it.
    zone: Zone,
    prompts: Arc<Prompts>,
    /// The agent's lifecycle: job tasks run among its tasks and stop with it.
    lifecycle: Lifecycle,
    /// The stop switch of each scheduled job's task, with the task's generation.
    jobs: Mutex<HashMap<String, (u64, CancellationToken)>>,
    generations: AtomicU64,
    /// Set by `start`. The host's tools hold this service, so the link back is weak.
    host: OnceLock<Weak<dyn CronHost>>,
    /// This service, for the tasks it starts.
    this: Weak<CronService>,
    /// The daemon's counters (runs by state).
    metrics: Metrics,
}

/// How a job is being changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    Enable,
    Disable,
}

impl CronService {
    pub fn new(
        config: &AgentConfig,
        store: CronStore,
        prompts: Arc<Prompts>,
        lifecycle: Lifecycle,
        metrics: Metrics,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            agent_id: config.id.clone(),
            store,
            board: RunBoard::default(),
            settings: config.cron_settings.clone(),
            zone: config.timezone,
            prompts,
            lifecycle,
            jobs: Mutex::new(HashMap::new()),
            generations: AtomicU64::new(0),
            host: OnceLock::new(),
            this: this.clone(),
            metrics,
        })
    }

    pub fn agent_id(&self) -> &str {
        &self.agent_id
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

    pub fn prompts(&self) -> &Prompts {
        &self.prompts
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The agent's shutdown, seen from cron.
    pub fn closing(&self) -> &CancellationToken {
        &self.lifecycle.closing
    }

    /// Recovers from an unclean stop, upserts the config's jobs (removing config jobs no
    /// longer listed) and starts a task for every enabled job. Call before answering
    /// pending messages, so an interrupted firing is closed rather than run again.
    pub async fn start(
        &self,
        host: Weak<dyn CronHost>,
        configured: &[JobSpec],
    ) -> Result<(), CronError> {
        if self.host.set(host).is_err() {
            tracing::warn!(agent_id = %self.agent_id, "cron service started twice; keeping the first host");
        }
        let host = self.host()?;
        let now = crate::database::now_millis();
        for execution in self.store.interrupt_running(now).await? {
            tracing::warn!(agent_id = %self.agent_id, job_id = %execution.job_id, conversation_id = %execution.conversation_id, "a cron run was interrupted by the last stop; it is not run again");
            match ConversationId::parse(&execution.conversation_id) {
                Ok(conversation) => host.close(&conversation).await,
                Err(error) => {
                    tracing::error!(%error, "an interrupted run has no readable conversation")
                }
            }
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
                self.schedule(&job.id);
            }
        }
        Ok(())
    }

    /// Applies the config's jobs of a reloaded config while the agent runs: new jobs and
    /// jobs whose definition changed are (re)scheduled from now, jobs no longer listed stop
    /// and are removed, and unchanged jobs keep their task, their state and any run in
    /// progress. Returns the ids of the jobs added, changed or removed.
    pub async fn sync_config(&self, configured: &[JobSpec]) -> Result<Vec<String>, CronError> {
        let now = crate::database::now_millis();
        let mut touched = Vec::new();
        for spec in configured {
            if self.store.upsert_config(spec, now).await? {
                touched.push(spec.id.clone());
            }
        }
        let ids: Vec<&str> = configured.iter().map(|spec| spec.id.as_str()).collect();
        for removed in self.store.remove_config_jobs_except(&ids).await? {
            tracing::info!(agent_id = %self.agent_id, job_id = %removed, "cron job no longer in the config; removed");
            self.unschedule(&removed);
            touched.push(removed);
        }
        for spec in configured.iter().filter(|spec| touched.contains(&spec.id)) {
            self.unschedule(&spec.id);
            let Some(job) = self.store.get(&spec.id).await? else {
                continue;
            };
            tracing::info!(agent_id = %self.agent_id, job_id = %job.id, enabled = job.enabled, "cron job from the config (re)loaded");
            if job.enabled {
                if job.next_run_at.is_none() {
                    self.set_first_slot(&job.spec(), now).await?;
                }
                self.schedule(&job.id);
            }
        }
        Ok(touched)
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

    fn host(&self) -> Result<Arc<dyn CronHost>, CronError> {
        self.host
            .get()
            .and_then(Weak::upgrade)
            .ok_or(CronError::ShuttingDown)
    }

    /// (Re)starts the task of a job.
    fn schedule(&self, job_id: &str) {
        let (Ok(host), Some(this)) = (self.host(), self.this.upgrade()) else {
            return;
        };
        if self.lifecycle.closing.is_cancelled() {
            return;
        }
        let stop = self.lifecycle.closing.child_token();
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut jobs) = self.jobs.lock()
            && let Some((_, previous)) = jobs.insert(job_id.to_string(), (generation, stop.clone()))
        {
            previous.cancel();
        }
        scheduler::spawn_job(this, host, job_id.to_string(), generation, stop);
    }

    /// The tasks of this agent, for the job tasks and runs.
    fn tasks(&self) -> &tokio_util::task::TaskTracker {
        &self.lifecycle.tasks
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
        default_target: Option<&ConversationId>,
    ) -> Result<JobRecord, CronError> {
        if draft.delivery_target.is_none() {
            draft.delivery_target = default_target.map(ToString::to_string);
        }
        let spec = draft.validate(&self.settings, self.zone)?;
        if source == JobSource::Tool && !spec.run_once {
            let gap = shortest_gap(&spec, self.zone)
                .map_err(|error| InvalidJob::new("schedule", error))?;
            let minimum = self.settings.min_interval;
            if let Some(gap) = gap.filter(|gap| *gap < minimum) {
                return Err(CronError::Invalid(InvalidJob::new(
                    "schedule",
                    format!(
                        "it would run every {}; a job made from a chat runs at most every {} \
                         ([defaults.cron] min_interval)",
                        format_duration(gap),
                        format_duration(minimum)
                    ),
                )));
            }
        }
        let host = self.host()?;
        if let Some(target) = &spec.delivery_target {
            let reachable = ConversationId::parse(target).is_ok_and(|target| host.reaches(&target));
            if !reachable {
                return Err(CronError::Invalid(InvalidJob::new(
                    "delivery_target",
                    format!("no chat platform is configured for `{target}`"),
                )));
            }
        }
        let now = crate::database::now_millis();
        let mut job = self.store.insert(&spec, source, now).await?;
        if job.enabled {
            job.next_run_at = self.set_first_slot(&spec, now).await?;
        }
        tracing::info!(agent_id = %self.agent_id, job_id = %job.id, source = source.as_str(), "cron job created");
        if job.enabled {
            self.schedule(&job.id);
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
            Switch::Enable if !before.enabled => self.schedule(job_id),
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
        let host = self.host()?;
        let this = self.this.upgrade().ok_or(CronError::ShuttingDown)?;
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
            .unwrap_or_else(|| self.lifecycle.closing.child_token());
        scheduler::spawn_run(this, host, job, execution.clone(), stop);
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

    /// One line about a job, for the model.
    fn describe(&self, job: &JobRecord) -> String {
        let spec = job.spec();
        let timing = spec.timing(self.zone);
        let zone = timing
            .as_ref()
            .map(|timing| timing.zone)
            .unwrap_or(self.zone);
        let schedule = timing
            .as_ref()
            .map(|timing| timing.cadence.describe())
            .unwrap_or_else(|error| error.to_string());
        let mut line = format!("job `{}` ({schedule}, zone {}", job.id, zone.name());
        if let Some(hours) = &job.active_hours {
            line.push_str(&format!(", active {hours}"));
        }
        line.push(')');
        match &job.delivery_target {
            Some(target) => line.push_str(&format!(", delivers to {target}")),
            None => line.push_str(", delivers nowhere"),
        }
        if job.enabled {
            if let Some(next) = job.next_run_at {
                line.push_str(&format!(", next run {}", format_instant(next, zone)));
            }
        } else {
            line.push_str(&format!(
                ", disabled{}",
                job.disabled_reason
                    .as_deref()
                    .map(|reason| format!(": {reason}"))
                    .unwrap_or_default()
            ));
        }
        if job.run_once {
            line.push_str(", runs once");
        }
        line.push_str(&format!(": {}", job.prompt));
        line
    }
}

/// Whether a job belongs to `scope` (every job does when there is none).
fn delivers_to(job: &JobRecord, scope: Option<&ConversationId>) -> bool {
    scope.is_none_or(|scope| job.delivery_target.as_deref() == Some(scope.as_str()))
}

/// The `cron` tool's view of the jobs.
#[async_trait::async_trait]
impl CronJobs for CronService {
    async fn create(
        &self,
        draft: JobDraft,
        target: Option<&ConversationId>,
    ) -> Result<String, JobsError> {
        let job = CronService::create(self, draft, JobSource::Tool, target).await?;
        Ok(self.describe(&job))
    }

    async fn list(&self, scope: Option<&ConversationId>) -> Result<Vec<String>, JobsError> {
        let jobs = CronService::list(self).await?;
        Ok(jobs
            .iter()
            .filter(|job| delivers_to(job, scope))
            .map(|job| self.describe(job))
            .collect())
    }

    async fn delete(&self, id: &str, scope: Option<&ConversationId>) -> Result<(), JobsError> {
        let job = self.get(id).await?;
        if !delivers_to(&job, scope) {
            return Err(CronError::NotFound(id.to_string()).into());
        }
        Ok(CronService::delete(self, id).await?)
    }
}
