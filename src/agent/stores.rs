//! The SQLite-backed stores of one agent, all on its one database, and closing them.

use std::sync::Arc;

use sqlx::SqlitePool;

use crate::conversation::ConversationStore;
use crate::database::now_millis;
use crate::event::EventBus;
use crate::llm::UsageRecorder;
use crate::memory::{Embedder, MemoryError, MemoryStore};

/// The stores of one agent.
pub struct Stores {
    /// Conversations: transcripts, pending messages, the context each channel's model sees.
    pub conversations: ConversationStore,
    /// Long-term memories and their associations.
    pub memory: Arc<MemoryStore>,
    /// Token usage, written in batches.
    pub usage: UsageRecorder,
    /// The database all of them share; only closed here.
    pool: SqlitePool,
}

impl Stores {
    /// Opens every store on the agent's database (opened and migrated by
    /// `database::open`).
    pub async fn open(
        pool: SqlitePool,
        agent_id: &str,
        embedder: Arc<Embedder>,
        events: EventBus,
    ) -> Result<Self, MemoryError> {
        let memory =
            MemoryStore::open(agent_id.to_string(), pool.clone(), embedder, events).await?;
        Ok(Self {
            conversations: ConversationStore::new(pool.clone()),
            memory: Arc::new(memory),
            usage: UsageRecorder::new(pool.clone()),
            pool,
        })
    }

    /// A worker run starts: recorded as running.
    pub async fn record_worker_start(
        &self,
        id: &str,
        conversation_id: &str,
        task: &str,
        interactive: bool,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO worker_runs (id, conversation_id, task, interactive, state, started_at)
             VALUES (?, ?, ?, ?, 'running', ?)",
        )
        .bind(id)
        .bind(conversation_id)
        .bind(task)
        .bind(interactive)
        .bind(now_millis())
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// A worker run ends in its terminal state, with its result and transcript.
    pub async fn record_worker_end(
        &self,
        id: &str,
        state: &str,
        result: &str,
        transcript: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE worker_runs SET state = ?, result = ?, transcript = ?, ended_at = ? WHERE id = ?",
        )
        .bind(state)
        .bind(result)
        .bind(transcript)
        .bind(now_millis())
        .bind(id)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Writes what is still buffered (token usage, recall access counts) and closes the
    /// database.
    pub async fn close(&self) {
        self.usage.flush().await;
        if let Err(error) = self.memory.flush_accesses().await {
            tracing::warn!(%error, "recall access counts not saved");
        }
        self.pool.close().await;
    }
}
