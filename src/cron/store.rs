//! The cron tables of an agent's database: jobs with their persisted next slot, claimed in a
//! transaction before a run starts, and the history of every execution.

use serde::Serialize;
use sqlx::SqlitePool;

use super::{FAILURES_BEFORE_DISABLE, JobSpec, ScheduleSpec};

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
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
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
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
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

const JOB_COLUMNS: &str = "id, prompt, cron, every_secs, timezone, delivery_target, active_hours, \
     timeout_secs, run_once, enabled, source, consecutive_failures, disabled_reason, next_run_at, \
     created_at, updated_at";
const EXECUTION_COLUMNS: &str = "id, job_id, trigger, scheduled_for, conversation_id, state, \
     outcome, error, delivered, started_at, ended_at";

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

fn definition(spec: &JobSpec) -> String {
    serde_json::to_string(spec).unwrap_or_default()
}

fn schedule_columns(spec: &JobSpec) -> (Option<&str>, Option<i64>) {
    match &spec.schedule {
        ScheduleSpec::Cron(expression) => (Some(expression.as_str()), None),
        ScheduleSpec::Every(seconds) => (None, Some(i64::try_from(*seconds).unwrap_or(i64::MAX))),
    }
}

impl CronStore {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    pub async fn list(&self) -> Result<Vec<JobRecord>, sqlx::Error> {
        sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM cron_jobs ORDER BY id"))
            .fetch_all(&self.pool)
            .await
    }

    pub async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, sqlx::Error> {
        sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM cron_jobs WHERE id = ?"))
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await
    }

    /// Stores a new job; `Exists` when the id is taken.
    pub async fn insert(
        &self,
        spec: &JobSpec,
        source: JobSource,
        now: i64,
    ) -> Result<JobRecord, super::CronError> {
        let (cron, every_secs) = schedule_columns(spec);
        let inserted: Option<JobRecord> = sqlx::query_as::<_, JobRecord>(&format!(
            "INSERT INTO cron_jobs (id, prompt, cron, every_secs, timezone, delivery_target,
                 active_hours, timeout_secs, run_once, enabled, source, definition, created_at,
                 updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO NOTHING
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(&spec.id)
        .bind(&spec.prompt)
        .bind(cron)
        .bind(every_secs)
        .bind(&spec.timezone)
        .bind(&spec.delivery_target)
        .bind(&spec.active_hours)
        .bind(i64::try_from(spec.timeout_secs).unwrap_or(i64::MAX))
        .bind(spec.run_once)
        .bind(spec.enabled)
        .bind(source)
        .bind(definition(spec))
        .bind(now)
        .bind(now)
        // Every row is read so the statement runs to its end: one stopped after its first row
        // never reports a failed COMMIT (a full disk).
        .fetch_all(&self.pool)
        .await?
        .pop();
        inserted.ok_or_else(|| super::CronError::Exists(spec.id.clone()))
    }

    /// Stores a job from the config. An unchanged definition keeps the job's state (disabled
    /// after failures, next slot); a changed one replaces the job and starts it afresh.
    pub async fn upsert_config(&self, spec: &JobSpec, now: i64) -> Result<(), sqlx::Error> {
        let (cron, every_secs) = schedule_columns(spec);
        sqlx::query(
            "INSERT INTO cron_jobs (id, prompt, cron, every_secs, timezone, delivery_target,
                 active_hours, timeout_secs, run_once, enabled, source, definition, created_at,
                 updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'config', ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET
                 prompt = excluded.prompt, cron = excluded.cron,
                 every_secs = excluded.every_secs, timezone = excluded.timezone,
                 delivery_target = excluded.delivery_target,
                 active_hours = excluded.active_hours, timeout_secs = excluded.timeout_secs,
                 run_once = excluded.run_once, enabled = excluded.enabled,
                 source = 'config', definition = excluded.definition,
                 consecutive_failures = 0, disabled_reason = NULL, next_run_at = NULL,
                 updated_at = excluded.updated_at
             WHERE cron_jobs.definition <> excluded.definition OR cron_jobs.source <> 'config'",
        )
        .bind(&spec.id)
        .bind(&spec.prompt)
        .bind(cron)
        .bind(every_secs)
        .bind(&spec.timezone)
        .bind(&spec.delivery_target)
        .bind(&spec.active_hours)
        .bind(i64::try_from(spec.timeout_secs).unwrap_or(i64::MAX))
        .bind(spec.run_once)
        .bind(spec.enabled)
        .bind(definition(spec))
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes config jobs that are no longer in the config; returns their ids.
    pub async fn remove_config_jobs_except(
        &self,
        keep: &[&str],
    ) -> Result<Vec<String>, sqlx::Error> {
        let configured: Vec<String> =
            sqlx::query_scalar("SELECT id FROM cron_jobs WHERE source = 'config'")
                .fetch_all(&self.pool)
                .await?;
        let mut removed = Vec::new();
        for id in configured {
            if !keep.contains(&id.as_str()) {
                self.delete(&id).await?;
                removed.push(id);
            }
        }
        Ok(removed)
    }

    pub async fn delete(&self, job_id: &str) -> Result<bool, sqlx::Error> {
        let result = sqlx::query("DELETE FROM cron_jobs WHERE id = ?")
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Enabling clears the failure count and, for a disabled job, the next slot (worked out
    /// afresh from now).
    pub async fn set_enabled(
        &self,
        job_id: &str,
        enabled: bool,
        now: i64,
    ) -> Result<Option<JobRecord>, sqlx::Error> {
        sqlx::query_as(&format!(
            "UPDATE cron_jobs SET enabled = ?1,
                 consecutive_failures = CASE WHEN ?1 THEN 0 ELSE consecutive_failures END,
                 disabled_reason = NULL,
                 next_run_at = CASE WHEN ?1 AND enabled = 0 THEN NULL ELSE next_run_at END,
                 updated_at = ?2
             WHERE id = ?3
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(enabled)
        .bind(now)
        .bind(job_id)
        // All rows, so a failed COMMIT is reported (see `insert`).
        .fetch_all(&self.pool)
        .await
        .map(|mut rows| rows.pop())
    }

    /// Disables a job the daemon cannot run, saying why.
    pub async fn disable(&self, job_id: &str, reason: &str, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE cron_jobs SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ?",
        )
        .bind(reason)
        .bind(now)
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets the first slot of a job that has none.
    pub async fn set_next_run(
        &self,
        job_id: &str,
        next_run_at: i64,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE cron_jobs SET next_run_at = ?, updated_at = ?
             WHERE id = ? AND next_run_at IS NULL",
        )
        .bind(next_run_at)
        .bind(now)
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims `slot` for a run: in one transaction the job's next slot moves on to `next` and
    /// the execution is recorded as running. Returns `None` when the slot is no longer the
    /// job's next one (claimed already, or the job changed), so no slot runs twice.
    pub async fn claim(
        &self,
        job_id: &str,
        slot: i64,
        next: Option<i64>,
        now: i64,
    ) -> Result<Option<ExecutionRecord>, sqlx::Error> {
        let mut transaction = crate::database::begin_write(&self.pool).await?;
        let moved = sqlx::query(
            "UPDATE cron_jobs SET next_run_at = ?, updated_at = ?
             WHERE id = ? AND next_run_at = ? AND enabled = 1",
        )
        .bind(next)
        .bind(now)
        .bind(job_id)
        .bind(slot)
        .execute(&mut *transaction)
        .await?;
        if moved.rows_affected() != 1 {
            return Ok(None);
        }
        let execution = insert_execution(
            &mut transaction,
            job_id,
            Trigger::Schedule,
            slot,
            ExecutionState::Running,
            None,
            now,
        )
        .await?;
        if execution.is_some() {
            transaction.commit().await?;
        }
        Ok(execution)
    }

    /// Records a slot that passed beyond the grace window and moves the job on to `next`.
    pub async fn record_missed(
        &self,
        job_id: &str,
        slot: i64,
        next: Option<i64>,
        error: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut transaction = crate::database::begin_write(&self.pool).await?;
        let moved = sqlx::query(
            "UPDATE cron_jobs SET next_run_at = ?, updated_at = ? WHERE id = ? AND next_run_at = ?",
        )
        .bind(next)
        .bind(now)
        .bind(job_id)
        .bind(slot)
        .execute(&mut *transaction)
        .await?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        insert_execution(
            &mut transaction,
            job_id,
            Trigger::Schedule,
            slot,
            ExecutionState::Missed,
            Some(error),
            now,
        )
        .await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Records a run asked for now (API, CLI), outside the schedule.
    pub async fn start_manual(
        &self,
        job_id: &str,
        now: i64,
    ) -> Result<ExecutionRecord, sqlx::Error> {
        let mut transaction = crate::database::begin_write(&self.pool).await?;
        let execution = insert_execution(
            &mut transaction,
            job_id,
            Trigger::Manual,
            now,
            ExecutionState::Running,
            None,
            now,
        )
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
        transaction.commit().await?;
        Ok(execution)
    }

    /// Records how a run ended and updates the job: failures in a row are counted and the
    /// job is disabled at the limit; a run-once job is disabled after its scheduled run.
    pub async fn finish(
        &self,
        execution: &ExecutionRecord,
        finish: &Finish<'_>,
        now: i64,
    ) -> Result<Finished, sqlx::Error> {
        let mut transaction = crate::database::begin_write(&self.pool).await?;
        let enabled_before: Option<bool> =
            sqlx::query_scalar("SELECT enabled FROM cron_jobs WHERE id = ?")
                .bind(&execution.job_id)
                .fetch_optional(&mut *transaction)
                .await?;
        sqlx::query(
            "UPDATE cron_executions SET state = ?, outcome = ?, error = ?, delivered = ?,
                 ended_at = ?
             WHERE id = ?",
        )
        .bind(finish.state)
        .bind(finish.outcome)
        .bind(finish.error)
        .bind(finish.delivered)
        .bind(now)
        .bind(&execution.id)
        .execute(&mut *transaction)
        .await?;
        if finish.state == ExecutionState::Succeeded {
            sqlx::query("UPDATE cron_jobs SET consecutive_failures = 0 WHERE id = ?")
                .bind(&execution.job_id)
                .execute(&mut *transaction)
                .await?;
        } else if finish.state.is_failure() {
            let reason = format!(
                "failed {FAILURES_BEFORE_DISABLE} times in a row; last error: {}",
                finish.error.unwrap_or("unknown")
            );
            sqlx::query(
                "UPDATE cron_jobs SET consecutive_failures = consecutive_failures + 1,
                     enabled = CASE WHEN consecutive_failures + 1 >= ?1 THEN 0 ELSE enabled END,
                     disabled_reason = CASE WHEN consecutive_failures + 1 >= ?1 AND enabled = 1
                         THEN ?2 ELSE disabled_reason END,
                     updated_at = ?3
                 WHERE id = ?4",
            )
            .bind(FAILURES_BEFORE_DISABLE)
            .bind(reason)
            .bind(now)
            .bind(&execution.job_id)
            .execute(&mut *transaction)
            .await?;
        }
        if execution.trigger == Trigger::Schedule && finish.state != ExecutionState::Interrupted {
            sqlx::query(
                "UPDATE cron_jobs SET enabled = 0, disabled_reason = 'ran once', updated_at = ?
                 WHERE id = ? AND run_once = 1 AND enabled = 1",
            )
            .bind(now)
            .bind(&execution.job_id)
            .execute(&mut *transaction)
            .await?;
        }
        let job: Option<JobRecord> =
            sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM cron_jobs WHERE id = ?"))
                .bind(&execution.job_id)
                .fetch_optional(&mut *transaction)
                .await?;
        transaction.commit().await?;
        let disabled_now = enabled_before == Some(true)
            && finish.state.is_failure()
            && job.as_ref().is_some_and(|job| {
                !job.enabled && job.consecutive_failures >= FAILURES_BEFORE_DISABLE
            });
        Ok(Finished { job, disabled_now })
    }

    /// Marks executions left running by an unclean stop as interrupted and returns them.
    pub async fn interrupt_running(&self, now: i64) -> Result<Vec<ExecutionRecord>, sqlx::Error> {
        sqlx::query_as(&format!(
            "UPDATE cron_executions SET state = 'interrupted', ended_at = ?,
                 error = 'the daemon stopped during the run'
             WHERE state = 'running'
             RETURNING {EXECUTION_COLUMNS}"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await
    }

    /// The latest executions of a job, newest first.
    pub async fn executions(
        &self,
        job_id: &str,
        limit: usize,
    ) -> Result<Vec<ExecutionRecord>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {EXECUTION_COLUMNS} FROM cron_executions WHERE job_id = ?
             ORDER BY started_at DESC, id DESC LIMIT ?"
        ))
        .bind(job_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
    }
}

async fn insert_execution(
    transaction: &mut crate::database::WriteTransaction,
    job_id: &str,
    trigger: Trigger,
    scheduled_for: i64,
    state: ExecutionState,
    error: Option<&str>,
    now: i64,
) -> Result<Option<ExecutionRecord>, sqlx::Error> {
    let id = uuid::Uuid::now_v7().to_string();
    let ended_at = (state != ExecutionState::Running).then_some(now);
    sqlx::query_as(&format!(
        "INSERT INTO cron_executions (id, job_id, trigger, scheduled_for, conversation_id, state,
             error, started_at, ended_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING
         RETURNING {EXECUTION_COLUMNS}"
    ))
    .bind(&id)
    .bind(job_id)
    .bind(trigger)
    .bind(scheduled_for)
    .bind(conversation_for(job_id, &id))
    .bind(state)
    .bind(error)
    .bind(now)
    .bind(ended_at)
    .fetch_optional(&mut **transaction)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, CronStore) {
        let directory = tempfile::tempdir().expect("tempdir");
        let pool = crate::database::open(&directory.path().join("spacebot.db"))
            .await
            .expect("database");
        (directory, CronStore::new(pool))
    }

    fn spec(id: &str) -> JobSpec {
        JobSpec {
            id: id.to_string(),
            prompt: "say hello".to_string(),
            schedule: ScheduleSpec::Every(60),
            timezone: None,
            delivery_target: Some("telegram:42".to_string()),
            active_hours: None,
            timeout_secs: 60,
            enabled: true,
            run_once: false,
        }
    }

    fn failed<'a>(error: &'a str) -> Finish<'a> {
        Finish {
            state: ExecutionState::Failed,
            outcome: None,
            error: Some(error),
            delivered: false,
        }
    }

    #[tokio::test]
    async fn a_claimed_slot_is_never_claimed_again_even_after_reopening() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("spacebot.db");
        let pool = crate::database::open(&path).await.expect("database");
        let store = CronStore::new(pool.clone());
        store
            .insert(&spec("tick"), JobSource::Api, 0)
            .await
            .expect("insert");
        store
            .set_next_run("tick", 1000, 0)
            .await
            .expect("first slot");
        let execution = store
            .claim("tick", 1000, Some(61_000), 1000)
            .await
            .expect("claim")
            .expect("the slot is free");
        assert_eq!(
            execution.conversation_id,
            format!("cron:tick:{}", execution.id)
        );
        // The daemon dies here, between the claim and the run, and starts again.
        pool.close().await;
        let store = CronStore::new(crate::database::open(&path).await.expect("reopen"));
        assert!(
            store
                .claim("tick", 1000, Some(61_000), 2000)
                .await
                .expect("claim")
                .is_none()
        );
        let interrupted = store.interrupt_running(3000).await.expect("recover");
        assert_eq!(interrupted.len(), 1);
        let job = store.get("tick").await.expect("get").expect("job");
        assert_eq!(job.next_run_at, Some(61_000));
        let history = store.executions("tick", 10).await.expect("history");
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].state, ExecutionState::Interrupted);
        assert_eq!(
            job.consecutive_failures, 0,
            "an interruption is not a failure"
        );
    }

    #[tokio::test]
    async fn three_failures_in_a_row_disable_a_job_and_a_success_resets_the_count() {
        let (_directory, store) = store().await;
        store
            .insert(&spec("flaky"), JobSource::Tool, 0)
            .await
            .expect("insert");
        let run = |at: i64| {
            let store = store.clone();
            async move { store.start_manual("flaky", at).await.expect("start") }
        };
        let execution = run(1).await;
        store
            .finish(&execution, &failed("boom 1"), 2)
            .await
            .expect("finish");
        let execution = run(3).await;
        let success = Finish {
            state: ExecutionState::Succeeded,
            outcome: Some("fine"),
            error: None,
            delivered: true,
        };
        store.finish(&execution, &success, 4).await.expect("finish");
        for attempt in 0..2 {
            let execution = run(10 + attempt).await;
            let finished = store
                .finish(&execution, &failed("boom"), 20 + attempt)
                .await
                .expect("finish");
            assert!(!finished.disabled_now);
            assert!(
                finished.job.expect("job").enabled,
                "two failures in a row are tolerated"
            );
        }
        let execution = run(30).await;
        let finished = store
            .finish(&execution, &failed("boom 3"), 31)
            .await
            .expect("finish");
        assert!(finished.disabled_now);
        let job = finished.job.expect("job");
        assert!(!job.enabled);
        assert_eq!(job.consecutive_failures, 3);
        assert_eq!(
            job.disabled_reason.as_deref(),
            Some("failed 3 times in a row; last error: boom 3")
        );
        let enabled = store
            .set_enabled("flaky", true, 40)
            .await
            .expect("enable")
            .expect("job");
        assert!(enabled.enabled && enabled.consecutive_failures == 0);
        assert!(enabled.disabled_reason.is_none());
    }

    #[tokio::test]
    async fn config_jobs_keep_their_state_until_their_definition_changes() {
        let (_directory, store) = store().await;
        let original = spec("digest");
        store.upsert_config(&original, 0).await.expect("upsert");
        store
            .disable("digest", "failed 3 times in a row", 1)
            .await
            .expect("disable");
        store
            .upsert_config(&original, 2)
            .await
            .expect("upsert again");
        let job = store.get("digest").await.expect("get").expect("job");
        assert!(!job.enabled, "a restart does not undo a disable");
        let changed = JobSpec {
            prompt: "say goodbye".into(),
            ..original
        };
        store
            .upsert_config(&changed, 3)
            .await
            .expect("upsert changed");
        let job = store.get("digest").await.expect("get").expect("job");
        assert!(job.enabled && job.prompt == "say goodbye");
        assert_eq!(job.source, JobSource::Config);
        store
            .insert(&spec("manual"), JobSource::Api, 4)
            .await
            .expect("insert");
        let removed = store.remove_config_jobs_except(&[]).await.expect("remove");
        assert_eq!(removed, vec!["digest".to_string()]);
        assert!(store.get("manual").await.expect("get").is_some());
    }

    #[tokio::test]
    async fn a_missed_slot_is_recorded_and_the_job_moves_on() {
        let (_directory, store) = store().await;
        store
            .insert(&spec("late"), JobSource::Api, 0)
            .await
            .expect("insert");
        store.set_next_run("late", 1000, 0).await.expect("slot");
        assert!(
            store
                .record_missed("late", 1000, Some(5000), "missed", 4000)
                .await
                .expect("missed")
        );
        assert!(
            store
                .claim("late", 1000, Some(9000), 4001)
                .await
                .expect("claim")
                .is_none()
        );
        let job = store.get("late").await.expect("get").expect("job");
        assert_eq!(job.next_run_at, Some(5000));
        let history = store.executions("late", 10).await.expect("history");
        assert_eq!(history[0].state, ExecutionState::Missed);
    }

    #[tokio::test]
    async fn a_run_once_job_is_disabled_after_its_scheduled_run() {
        let (_directory, store) = store().await;
        let once = JobSpec {
            run_once: true,
            ..spec("once")
        };
        store
            .insert(&once, JobSource::Tool, 0)
            .await
            .expect("insert");
        store.set_next_run("once", 100, 0).await.expect("slot");
        let execution = store
            .claim("once", 100, None, 100)
            .await
            .expect("claim")
            .expect("free");
        let done = Finish {
            state: ExecutionState::Succeeded,
            outcome: Some("hello"),
            error: None,
            delivered: true,
        };
        let job = store
            .finish(&execution, &done, 200)
            .await
            .expect("finish")
            .job
            .expect("job");
        assert!(!job.enabled);
        assert_eq!(job.disabled_reason.as_deref(), Some("ran once"));
    }
}
