//! The `cron_executions` table: claiming a slot before its run, recording missed slots and
//! manual runs, finishing a run (with what it does to its job), and reading the history.

use super::{
    CronStore, ExecutionRecord, ExecutionState, Finish, Finished, JobRecord, JobSource, Trigger,
    conversation_for,
};
use crate::cron::FAILURES_BEFORE_DISABLE;
use crate::database::WriteTransaction;

// `id` is a TEXT PRIMARY KEY, which SQLite lets be NULL; no insert leaves it so. The flags are
// INTEGER 0/1 columns read as `bool`.
impl CronStore {
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
        let moved = sqlx::query!(
            "UPDATE cron_jobs SET next_run_at = ?, updated_at = ?
             WHERE id = ? AND next_run_at = ? AND enabled = 1",
            next,
            now,
            job_id,
            slot,
        )
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
        let moved = sqlx::query!(
            "UPDATE cron_jobs SET next_run_at = ?, updated_at = ? WHERE id = ? AND next_run_at = ?",
            next,
            now,
            job_id,
            slot,
        )
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
        let enabled_before = sqlx::query_scalar!(
            r#"SELECT enabled AS "enabled: bool" FROM cron_jobs WHERE id = ?"#,
            execution.job_id,
        )
        .fetch_optional(&mut *transaction)
        .await?;
        sqlx::query!(
            "UPDATE cron_executions SET state = ?, outcome = ?, error = ?, delivered = ?,
                 ended_at = ?
             WHERE id = ?",
            finish.state,
            finish.outcome,
            finish.error,
            finish.delivered,
            now,
            execution.id,
        )
        .execute(&mut *transaction)
        .await?;
        if finish.state == ExecutionState::Succeeded {
            sqlx::query!(
                "UPDATE cron_jobs SET consecutive_failures = 0 WHERE id = ?",
                execution.job_id,
            )
            .execute(&mut *transaction)
            .await?;
        } else if finish.state.is_failure() {
            let reason = format!(
                "failed {FAILURES_BEFORE_DISABLE} times in a row; last error: {}",
                finish.error.unwrap_or("unknown")
            );
            sqlx::query!(
                "UPDATE cron_jobs SET consecutive_failures = consecutive_failures + 1,
                     enabled = CASE WHEN consecutive_failures + 1 >= ?1 THEN 0 ELSE enabled END,
                     disabled_reason = CASE WHEN consecutive_failures + 1 >= ?1 AND enabled = 1
                         THEN ?2 ELSE disabled_reason END,
                     updated_at = ?3
                 WHERE id = ?4",
                FAILURES_BEFORE_DISABLE,
                reason,
                now,
                execution.job_id,
            )
            .execute(&mut *transaction)
            .await?;
        }
        if execution.trigger == Trigger::Schedule && finish.state != ExecutionState::Interrupted {
            sqlx::query!(
                "UPDATE cron_jobs SET enabled = 0, disabled_reason = 'ran once', updated_at = ?
                 WHERE id = ? AND run_once = 1 AND enabled = 1",
                now,
                execution.job_id,
            )
            .execute(&mut *transaction)
            .await?;
        }
        let job = sqlx::query_as!(
            JobRecord,
            r#"SELECT id AS "id!", prompt, cron, every_secs, timezone, delivery_target,
                      active_hours, timeout_secs, run_once AS "run_once: bool",
                      enabled AS "enabled: bool", source AS "source: JobSource",
                      consecutive_failures, disabled_reason, next_run_at, created_at, updated_at
               FROM cron_jobs WHERE id = ?"#,
            execution.job_id,
        )
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
        sqlx::query_as!(
            ExecutionRecord,
            r#"UPDATE cron_executions SET state = 'interrupted', ended_at = ?,
                   error = 'the daemon stopped during the run'
               WHERE state = 'running'
               RETURNING id AS "id!", job_id, trigger AS "trigger: Trigger", scheduled_for,
                   conversation_id, state AS "state: ExecutionState", outcome, error,
                   delivered AS "delivered: bool", started_at, ended_at"#,
            now,
        )
        .fetch_all(&self.pool)
        .await
    }

    /// The latest executions of a job, newest first.
    pub async fn executions(
        &self,
        job_id: &str,
        limit: usize,
    ) -> Result<Vec<ExecutionRecord>, sqlx::Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        sqlx::query_as!(
            ExecutionRecord,
            r#"SELECT id AS "id!", job_id, trigger AS "trigger: Trigger", scheduled_for,
                      conversation_id, state AS "state: ExecutionState", outcome, error,
                      delivered AS "delivered: bool", started_at, ended_at
               FROM cron_executions WHERE job_id = ?
               ORDER BY started_at DESC, id DESC LIMIT ?"#,
            job_id,
            limit,
        )
        .fetch_all(&self.pool)
        .await
    }
}

async fn insert_execution(
    transaction: &mut WriteTransaction,
    job_id: &str,
    trigger: Trigger,
    scheduled_for: i64,
    state: ExecutionState,
    error: Option<&str>,
    now: i64,
) -> Result<Option<ExecutionRecord>, sqlx::Error> {
    let id = uuid::Uuid::now_v7().to_string();
    let conversation_id = conversation_for(job_id, &id);
    let ended_at = (state != ExecutionState::Running).then_some(now);
    sqlx::query_as!(
        ExecutionRecord,
        r#"INSERT INTO cron_executions (id, job_id, trigger, scheduled_for, conversation_id,
               state, error, started_at, ended_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT DO NOTHING
           RETURNING id AS "id!", job_id, trigger AS "trigger: Trigger", scheduled_for,
               conversation_id, state AS "state: ExecutionState", outcome, error,
               delivered AS "delivered: bool", started_at, ended_at"#,
        id,
        job_id,
        trigger,
        scheduled_for,
        conversation_id,
        state,
        error,
        now,
        ended_at,
    )
    .fetch_optional(&mut **transaction)
    .await
}
