//! The `cron_jobs` table: storing jobs from the config, the tool and the API, enabling and
//! disabling them, and setting their first slot.

use super::{CronStore, JobRecord, JobSource};
use crate::cron::{CronError, JobSpec, ScheduleSpec};

fn definition(spec: &JobSpec) -> String {
    serde_json::to_string(spec).unwrap_or_default()
}

fn schedule_columns(spec: &JobSpec) -> (Option<&str>, Option<i64>) {
    match &spec.schedule {
        ScheduleSpec::Cron(expression) => (Some(expression.as_str()), None),
        ScheduleSpec::Every(seconds) => (None, Some(i64::try_from(*seconds).unwrap_or(i64::MAX))),
    }
}

// `id` is a TEXT PRIMARY KEY, which SQLite lets be NULL; no insert leaves it so. The flags are
// INTEGER 0/1 columns read as `bool`.
impl CronStore {
    pub async fn list(&self) -> Result<Vec<JobRecord>, sqlx::Error> {
        sqlx::query_as!(
            JobRecord,
            r#"SELECT id AS "id!", prompt, cron, every_secs, timezone, delivery_target,
                      active_hours, timeout_secs, run_once AS "run_once: bool",
                      enabled AS "enabled: bool", source AS "source: JobSource",
                      consecutive_failures, disabled_reason, next_run_at, created_at, updated_at
               FROM cron_jobs ORDER BY id"#
        )
        .fetch_all(&self.pool)
        .await
    }

    pub async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, sqlx::Error> {
        sqlx::query_as!(
            JobRecord,
            r#"SELECT id AS "id!", prompt, cron, every_secs, timezone, delivery_target,
                      active_hours, timeout_secs, run_once AS "run_once: bool",
                      enabled AS "enabled: bool", source AS "source: JobSource",
                      consecutive_failures, disabled_reason, next_run_at, created_at, updated_at
               FROM cron_jobs WHERE id = ?"#,
            job_id,
        )
        .fetch_optional(&self.pool)
        .await
    }

    /// Stores a new job; `Exists` when the id is taken.
    pub async fn insert(
        &self,
        spec: &JobSpec,
        source: JobSource,
        now: i64,
    ) -> Result<JobRecord, CronError> {
        let (cron, every_secs) = schedule_columns(spec);
        let timeout_secs = i64::try_from(spec.timeout_secs).unwrap_or(i64::MAX);
        let definition = definition(spec);
        let inserted: Option<JobRecord> = sqlx::query_as!(
            JobRecord,
            r#"INSERT INTO cron_jobs (id, prompt, cron, every_secs, timezone, delivery_target,
                   active_hours, timeout_secs, run_once, enabled, source, definition, created_at,
                   updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (id) DO NOTHING
               RETURNING id AS "id!", prompt, cron, every_secs, timezone, delivery_target,
                   active_hours, timeout_secs, run_once AS "run_once: bool",
                   enabled AS "enabled: bool", source AS "source: JobSource",
                   consecutive_failures, disabled_reason, next_run_at, created_at, updated_at"#,
            spec.id,
            spec.prompt,
            cron,
            every_secs,
            spec.timezone,
            spec.delivery_target,
            spec.active_hours,
            timeout_secs,
            spec.run_once,
            spec.enabled,
            source,
            definition,
            now,
            now,
        )
        // Every row is read so the statement runs to its end: one stopped after its first row
        // never reports a failed COMMIT (a full disk).
        .fetch_all(&self.pool)
        .await?
        .pop();
        inserted.ok_or_else(|| CronError::Exists(spec.id.clone()))
    }

    /// Stores a job from the config. An unchanged definition keeps the job's state (disabled
    /// after failures, next slot); a changed one replaces the job and starts it afresh.
    /// Stores a job from the config; returns whether anything was written (a new job, or a
    /// changed definition, which starts afresh: no failures, no stored next slot).
    pub async fn upsert_config(&self, spec: &JobSpec, now: i64) -> Result<bool, sqlx::Error> {
        let (cron, every_secs) = schedule_columns(spec);
        let timeout_secs = i64::try_from(spec.timeout_secs).unwrap_or(i64::MAX);
        let definition = definition(spec);
        let written = sqlx::query!(
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
            spec.id,
            spec.prompt,
            cron,
            every_secs,
            spec.timezone,
            spec.delivery_target,
            spec.active_hours,
            timeout_secs,
            spec.run_once,
            spec.enabled,
            definition,
            now,
            now,
        )
        .execute(&self.pool)
        .await?;
        Ok(written.rows_affected() > 0)
    }

    /// Deletes config jobs that are no longer in the config; returns their ids.
    pub async fn remove_config_jobs_except(
        &self,
        keep: &[&str],
    ) -> Result<Vec<String>, sqlx::Error> {
        let configured =
            sqlx::query_scalar!(r#"SELECT id AS "id!" FROM cron_jobs WHERE source = 'config'"#)
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
        let result = sqlx::query!("DELETE FROM cron_jobs WHERE id = ?", job_id)
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
        sqlx::query_as!(
            JobRecord,
            r#"UPDATE cron_jobs SET enabled = ?1,
                   consecutive_failures = CASE WHEN ?1 THEN 0 ELSE consecutive_failures END,
                   disabled_reason = NULL,
                   next_run_at = CASE WHEN ?1 AND enabled = 0 THEN NULL ELSE next_run_at END,
                   updated_at = ?2
               WHERE id = ?3
               RETURNING id AS "id!", prompt, cron, every_secs, timezone, delivery_target,
                   active_hours, timeout_secs, run_once AS "run_once: bool",
                   enabled AS "enabled: bool", source AS "source: JobSource",
                   consecutive_failures, disabled_reason, next_run_at, created_at, updated_at"#,
            enabled,
            now,
            job_id,
        )
        // All rows, so a failed COMMIT is reported (see `insert`).
        .fetch_all(&self.pool)
        .await
        .map(|mut rows| rows.pop())
    }

    /// Disables a job the daemon cannot run, saying why.
    pub async fn disable(&self, job_id: &str, reason: &str, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "UPDATE cron_jobs SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ?",
            reason,
            now,
            job_id,
        )
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
        sqlx::query!(
            "UPDATE cron_jobs SET next_run_at = ?, updated_at = ?
             WHERE id = ? AND next_run_at IS NULL",
            next_run_at,
            now,
            job_id,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
