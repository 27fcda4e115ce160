//! The cron tables of an agent's database: the records and the `CronStore` that owns them.
//! Jobs keep their persisted next slot (`jobs`), which is claimed in a transaction before a run
//! starts, and every execution is recorded (`executions`).

mod executions;
mod jobs;
#[cfg(test)]
mod tests;

use serde::Serialize;
use sqlx::SqlitePool;

use super::{JobSpec, ScheduleSpec};

/// Where a job was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum JobSource {
    Config,
    Tool,
    Api,
}

impl JobSource {
    pub fn as_str(self) -> &'static str {
        match self {
            JobSource::Config => "config",
            JobSource::Tool => "tool",
            JobSource::Api => "api",
        }
    }
}

/// A stored job with its run-time state.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    pub id: String,
    pub prompt: String,
    pub cron: Option<String>,
    pub every_secs: Option<i64>,
    pub timezone: Option<String>,
    pub delivery_target: Option<String>,
    pub active_hours: Option<String>,
    pub timeout_secs: i64,
    pub run_once: bool,
    pub enabled: bool,
    pub source: JobSource,
    pub consecutive_failures: i64,
    /// Why the job is disabled, when the daemon disabled it (failures, ran once).
    pub disabled_reason: Option<String>,
    /// Unix milliseconds of the next slot.
    pub next_run_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl JobRecord {
    pub fn spec(&self) -> JobSpec {
        let schedule = match (&self.cron, self.every_secs) {
            (Some(expression), _) => ScheduleSpec::Cron(expression.clone()),
            (None, seconds) => {
                ScheduleSpec::Every(seconds.and_then(|s| u64::try_from(s).ok()).unwrap_or(1))
            }
        };
        JobSpec {
            id: self.id.clone(),
            prompt: self.prompt.clone(),
            schedule,
            timezone: self.timezone.clone(),
            delivery_target: self.delivery_target.clone(),
            active_hours: self.active_hours.clone(),
            timeout_secs: u64::try_from(self.timeout_secs).unwrap_or(1),
            enabled: self.enabled,
            run_once: self.run_once,
        }
    }
}

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ExecutionState {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    /// The job was deleted or disabled during the run.
    Cancelled,
    /// The daemon stopped during the run; it is not run again.
    Interrupted,
    /// The slot passed while the daemon was down, beyond the grace window.
    Missed,
}

impl ExecutionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionState::Running => "running",
            ExecutionState::Succeeded => "succeeded",
            ExecutionState::Failed => "failed",
            ExecutionState::TimedOut => "timed_out",
            ExecutionState::Cancelled => "cancelled",
            ExecutionState::Interrupted => "interrupted",
            ExecutionState::Missed => "missed",
        }
    }

    /// Failures count towards disabling the job; cancellations and interruptions do not.
    fn is_failure(self) -> bool {
        match self {
            ExecutionState::Failed | ExecutionState::TimedOut => true,
            ExecutionState::Running
            | ExecutionState::Succeeded
            | ExecutionState::Cancelled
            | ExecutionState::Interrupted
            | ExecutionState::Missed => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Schedule,
    Manual,
}

/// One execution of a job.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionRecord {
    pub id: String,
    pub job_id: String,
    pub trigger: Trigger,
    pub scheduled_for: i64,
    pub conversation_id: String,
    pub state: ExecutionState,
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub delivered: bool,
    pub started_at: i64,
    pub ended_at: Option<i64>,
}

/// What a finished run records.
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    pub state: ExecutionState,
    pub outcome: Option<&'a str>,
    pub error: Option<&'a str>,
    pub delivered: bool,
}

/// The cron tables of one agent.
#[derive(Debug, Clone)]
pub struct CronStore {
    pool: SqlitePool,
}

/// A recorded finish: the job afterwards (`None` if it was deleted meanwhile), and whether
/// this failure is the one that disabled it.
#[derive(Debug, Clone)]
pub struct Finished {
    pub job: Option<JobRecord>,
    pub disabled_now: bool,
}

/// The conversation a firing runs in.
pub fn conversation_for(job_id: &str, execution_id: &str) -> String {
    format!("cron:{job_id}:{execution_id}")
}

impl CronStore {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}
