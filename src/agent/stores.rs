//! The SQLite-backed stores of one agent, all on its one database, and closing them.

use std::sync::Arc;

use sqlx::SqlitePool;

use crate::conversation::{ConversationStore, WorkerRunStore};
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
    /// Each worker's task, terminal state, result and transcript.
    pub worker_runs: WorkerRunStore,
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
        let usage = UsageRecorder::new(pool.clone());
        // The daily budget counts from what was spent before a restart.
        if let Err(error) = usage.load_today().await {
            tracing::warn!(%error, agent_id, "cannot read today's token usage; the budget counts from zero");
        }
        Ok(Self {
            conversations: ConversationStore::new(pool.clone()),
            memory: Arc::new(memory),
            usage,
            worker_runs: WorkerRunStore::new(pool.clone()),
            pool,
        })
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
