//! The `worker_runs` table: one row per worker process, written when it starts and again when
//! it ends in its terminal state.

use rig::message::Message;
use sqlx::SqlitePool;

use super::StoreError;
use crate::database::now_millis;
use crate::event::WorkerState;

/// The worker runs of one agent.
#[derive(Debug, Clone)]
pub struct WorkerRunStore {
    pool: SqlitePool,
}

impl WorkerRunStore {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Records worker `id` of the channel of `conversation_id` as running `task`, from now.
    pub async fn record_start(
        &self,
        id: uuid::Uuid,
        conversation_id: &str,
        task: &str,
        interactive: bool,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        let started_at = now_millis();
        sqlx::query!(
            "INSERT INTO worker_runs (id, conversation_id, task, interactive, state, started_at)
             VALUES (?, ?, ?, ?, 'running', ?)",
            id,
            conversation_id,
            task,
            interactive,
            started_at,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records how worker `id` ended, now: its terminal state, its result and its transcript
    /// (stored as the JSON array of its LLM messages).
    pub async fn record_finish(
        &self,
        id: uuid::Uuid,
        state: WorkerState,
        result: &str,
        transcript: &[Message],
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        let state = state.as_str();
        let transcript = serde_json::to_string(transcript).unwrap_or_default();
        let ended_at = now_millis();
        sqlx::query!(
            "UPDATE worker_runs SET state = ?, result = ?, transcript = ?, ended_at = ? WHERE id = ?",
            state,
            result,
            transcript,
            ended_at,
            id,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `worker_runs` row as stored.
    #[derive(Debug)]
    struct StoredRun {
        conversation_id: String,
        task: String,
        interactive: bool,
        state: String,
        result: Option<String>,
        transcript: Option<String>,
        ended_at: Option<i64>,
    }

    async fn stored_run(pool: &SqlitePool, id: uuid::Uuid) -> StoredRun {
        let id = id.to_string();
        sqlx::query_as!(
            StoredRun,
            r#"SELECT conversation_id, task, interactive AS "interactive: bool", state, result,
                      transcript, ended_at
               FROM worker_runs WHERE id = ?"#,
            id,
        )
        .fetch_one(pool)
        .await
        .expect("the run is stored")
    }

    #[tokio::test]
    async fn a_run_is_recorded_running_and_then_closed_with_its_outcome() {
        let directory = tempfile::tempdir().expect("tempdir");
        let pool = crate::database::open(&directory.path().join("spacebot.db"))
            .await
            .expect("database");
        let store = WorkerRunStore::new(pool.clone());
        let id = uuid::Uuid::new_v4();
        store
            .record_start(id, "portal:cli", "count the files", true)
            .await
            .expect("start");
        let running = stored_run(&pool, id).await;
        assert_eq!(running.conversation_id, "portal:cli");
        assert_eq!(running.task, "count the files");
        assert!(running.interactive);
        assert_eq!(running.state, "running");
        assert_eq!(
            (running.result, running.transcript, running.ended_at),
            (None, None, None)
        );

        let transcript = vec![Message::user("count the files"), Message::assistant("3")];
        store
            .record_finish(id, WorkerState::TimedOut, "ran out of time", &transcript)
            .await
            .expect("finish");
        let finished = stored_run(&pool, id).await;
        assert_eq!(finished.state, "timed_out");
        assert_eq!(finished.result.as_deref(), Some("ran out of time"));
        assert!(finished.ended_at.is_some());
        let decoded: Vec<Message> =
            serde_json::from_str(&finished.transcript.expect("a transcript")).expect("JSON");
        assert_eq!(decoded, transcript);
    }
}
