//! The memory store of one agent: its state, opening it (loading the vector index) and the
//! limits its operations check. SQLite is the truth; the vector index is a cache loaded at open.
//! Saving and forgetting are in `save`, reading and listing in `browse`, recall in `recall`.

mod browse;
mod lists;
mod portable;
mod recall;
mod save;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures::TryStreamExt;
pub use portable::{ImportReport, MemoryRecord, PAGE, RecordAssociation};
use sqlx::SqlitePool;

use super::embedder::Embedder;
use super::index::{VectorIndex, from_blob};
use super::render::MemorySnapshot;
use super::{MemoryError, MemoryType};
use crate::event::EventBus;

/// Cosine similarity at or above which a new memory updates an existing one of its type.
pub const NEAR_DUPLICATE_SIMILARITY: f32 = 0.95;
/// Vector hits below this cosine similarity are not ranked: for all-MiniLM-L6-v2, unrelated
/// sentences score around 0 to 0.15.
pub const MINIMUM_SIMILARITY: f32 = 0.2;
/// Memories a ranked full-text query may score. Common terms (those that would exceed it)
/// are left to the vector search, which keeps hybrid recall fast on large stores.
pub const FULL_TEXT_BUDGET: i64 = 1000;
/// Candidates each ranked list contributes to fusion.
const CANDIDATES_PER_LIST: usize = 50;
/// The fused hits the association walk starts from.
const WALK_FROM: usize = 3;
/// Association weight when the saver gives none.
const DEFAULT_WEIGHT: f64 = 0.5;
/// Memories with unwritten recall accesses that make a recall write them (normally the
/// periodic maintenance task and shutdown do).
const ACCESS_FLUSH_AT: usize = 10_000;
/// Longest memory accepted, in characters.
pub const MAXIMUM_CONTENT_CHARS: usize = 4000;
/// Most results one recall returns.
pub const MAXIMUM_RESULTS: usize = 100;

/// The columns of `Memory`, for the one query that cannot be a macro (`load_remembered`).
const MEMORY_COLUMNS: &str = "id, content, memory_type, importance, created_at, \
     updated_at, last_accessed_at, access_count, source, channel_id, sender, trusted";

pub struct MemoryStore {
    pub(super) agent_id: String,
    pub(super) pool: SqlitePool,
    pub(super) embedder: Arc<Embedder>,
    pub(super) events: EventBus,
    pub(super) index: Arc<RwLock<VectorIndex>>,
    /// Serialises writers, so two near-duplicates saved at once cannot both be inserted.
    pub(super) write_lock: tokio::sync::Mutex<()>,
    /// Bumped by every write (including maintenance); keys the cached prompt render.
    pub(super) generation: AtomicU64,
    /// Per audience (`None`: everything): the generation and the snapshot rendered at it.
    pub(super) render_cache: Mutex<HashMap<Option<String>, (u64, MemorySnapshot)>>,
    /// Recall accesses not yet written: id -> (count, last access).
    pub(super) accesses: Mutex<HashMap<String, (i64, i64)>>,
    /// Remembered memories in all, at a generation (for the full-text terms' weights).
    pub(super) remembered: Mutex<Option<(u64, i64)>>,
}

impl MemoryStore {
    /// Opens the store on an agent's (migrated) database and loads the vector index from the
    /// embeddings made by the current embedder.
    pub async fn open(
        agent_id: impl Into<String>,
        pool: SqlitePool,
        embedder: Arc<Embedder>,
        events: EventBus,
    ) -> Result<Self, MemoryError> {
        let store = Self {
            agent_id: agent_id.into(),
            pool,
            embedder,
            events,
            index: Arc::new(RwLock::new(VectorIndex::new())),
            write_lock: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(1),
            render_cache: Mutex::new(HashMap::new()),
            accesses: Mutex::new(HashMap::new()),
            remembered: Mutex::new(None),
        };
        store.load_index().await?;
        Ok(store)
    }

    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    /// Vectors in the index (memories searchable by similarity).
    pub fn indexed(&self) -> usize {
        self.index.read().map_or(0, |index| index.len())
    }

    /// Bytes held by the vector index.
    pub fn index_bytes(&self) -> usize {
        self.index.read().map_or(0, |index| index.memory_bytes())
    }

    async fn load_index(&self) -> Result<(), MemoryError> {
        let Some(model) = self.embedder.model_id() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        // Streamed row by row, so loading never holds all f32 vectors at once.
        let mut rows = sqlx::query!(
            r#"SELECT id, memory_type AS "memory_type: MemoryType", channel_id,
                      embedding AS "embedding!"
               FROM memories
               WHERE forgotten = 0 AND embedding IS NOT NULL AND embedding_model = ?"#,
            model,
        )
        .fetch(&self.pool);
        let mut index = VectorIndex::new();
        let mut skipped = 0usize;
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(MemoryError::database("loading embeddings"))?
        {
            let loaded = from_blob(&row.embedding)
                .map(|vector| {
                    index
                        .upsert_grouped(
                            &row.id,
                            row.memory_type.code(),
                            row.channel_id.as_deref(),
                            &vector,
                        )
                        .is_ok()
                })
                .unwrap_or(false);
            if !loaded {
                skipped += 1;
            }
        }
        drop(rows);
        index.shrink_to_fit();
        if skipped > 0 {
            tracing::warn!(agent_id = %self.agent_id, skipped, "embeddings with an unexpected size were not loaded");
        }
        tracing::debug!(agent_id = %self.agent_id, vectors = index.len(), elapsed_ms = started.elapsed().as_millis() as u64, "memory vector index loaded");
        if let Ok(mut shared) = self.index.write() {
            *shared = index;
        }
        Ok(())
    }

    /// Marks the store changed for the prompt-render cache.
    pub(super) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

fn validate_content(content: &str) -> Result<(), MemoryError> {
    if content.is_empty() {
        return Err(MemoryError::Invalid(
            "a memory's content is empty".to_string(),
        ));
    }
    let length = content.chars().count();
    if length > MAXIMUM_CONTENT_CHARS {
        return Err(MemoryError::Invalid(format!(
            "a memory holds at most {MAXIMUM_CONTENT_CHARS} characters, this one has {length}; save one short statement per memory"
        )));
    }
    Ok(())
}

fn validate_unit(name: &str, value: f64) -> Result<(), MemoryError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(MemoryError::Invalid(format!(
            "{name} must be between 0 and 1, got {value}"
        )))
    }
}
