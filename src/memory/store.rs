//! The memory store of one agent: saving with near-duplicate merging, soft deletion, listing,
//! and hybrid recall. SQLite is the truth; the vector index is a cache loaded at open.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures::TryStreamExt;
use sqlx::{Row, SqlitePool};

use super::embedder::Embedder;
use super::index::{VectorIndex, dot, from_blob, normalize, to_blob};
use super::render::MemorySnapshot;
use super::search::{full_text_terms, match_any, quote_term, reciprocal_rank_fusion, select_terms};
use super::{
    Association, AssociationHop, ListOrder, Memory, MemoryError, MemoryType, NewAssociation,
    NewMemory, RecallMode, RecallQuery, RecallResult, RecalledMemory, Relation, SaveOutcome,
};
use crate::database::now_millis;
use crate::event::{EventBus, ProcessEvent};

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

pub(super) const MEMORY_COLUMNS: &str = "id, content, memory_type, importance, created_at, \
     updated_at, last_accessed_at, access_count, source, channel_id";

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
    pub(super) render_cache: Mutex<Option<(u64, MemorySnapshot)>>,
    /// Recall accesses not yet written: id -> (count, last access).
    pub(super) accesses: Mutex<HashMap<String, (i64, i64)>>,
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
            render_cache: Mutex::new(None),
            accesses: Mutex::new(HashMap::new()),
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
        let mut rows = sqlx::query(
            "SELECT id, memory_type, embedding FROM memories
             WHERE forgotten = 0 AND embedding IS NOT NULL AND embedding_model = ?",
        )
        .bind(model)
        .fetch(&self.pool);
        let mut index = VectorIndex::new();
        let mut skipped = 0usize;
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(MemoryError::database("loading embeddings"))?
        {
            let id: String = row.get("id");
            let memory_type: MemoryType = row.get("memory_type");
            let blob: Vec<u8> = row.get("embedding");
            let loaded = from_blob(&blob)
                .map(|vector| index.upsert(&id, memory_type.code(), &vector).is_ok())
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

    /// Saves a memory, embedding it first when an embedder is available. A remembered memory
    /// of the same type with cosine similarity >= 0.95 (or, without embeddings, the same
    /// text) is updated instead: it takes the new wording and the higher importance.
    pub async fn save(&self, memory: NewMemory) -> Result<SaveOutcome, MemoryError> {
        let embedding = if self.embedder.is_available() {
            match self.embedder.embed_one(memory.content.trim()).await {
                Ok(vector) => Some(vector),
                Err(error) => {
                    tracing::warn!(agent_id = %self.agent_id, %error, "saving a memory without an embedding; it is found by full text until maintenance embeds it");
                    None
                }
            }
        } else {
            None
        };
        self.save_embedded(memory, embedding).await
    }

    /// `save` with the embedding already computed (`None`: save without one).
    pub async fn save_embedded(
        &self,
        memory: NewMemory,
        embedding: Option<Vec<f32>>,
    ) -> Result<SaveOutcome, MemoryError> {
        let content = memory.content.trim().to_string();
        validate_content(&content)?;
        let importance = memory
            .importance
            .unwrap_or_else(|| memory.memory_type.default_importance());
        validate_unit("importance", importance)?;
        let mut associations = Vec::with_capacity(memory.associations.len());
        for association in &memory.associations {
            let weight = association.weight.unwrap_or(DEFAULT_WEIGHT);
            validate_unit("association weight", weight)?;
            associations.push((association, weight));
        }
        let embedding = embedding.map(|mut vector| {
            normalize(&mut vector);
            vector
        });
        let model = self.embedder.model_id().map(str::to_string);
        let embedding = embedding.filter(|_| model.is_some());

        let _writer = self.write_lock.lock().await;
        let duplicate = match &embedding {
            Some(vector) => {
                self.near_duplicate(vector, memory.memory_type, None)
                    .await?
            }
            None => self.same_text(&content, memory.memory_type).await?,
        };
        let now = now_millis();
        let blob = embedding.as_deref().map(to_blob);
        let mut transaction = crate::database::begin_write(&self.pool)
            .await
            .map_err(MemoryError::database("saving a memory"))?;
        let (id, merged) = match duplicate {
            Some(existing) => {
                sqlx::query(
                    "UPDATE memories SET content = ?, importance = max(importance, ?),
                         updated_at = ?,
                         embedding = coalesce(?, embedding),
                         embedding_model = CASE WHEN ? IS NULL THEN embedding_model ELSE ? END
                     WHERE id = ?",
                )
                .bind(&content)
                .bind(importance)
                .bind(now)
                .bind(&blob)
                .bind(&blob)
                .bind(&model)
                .bind(&existing)
                .execute(&mut *transaction)
                .await
                .map_err(MemoryError::database("updating a near-duplicate memory"))?;
                (existing, true)
            }
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                sqlx::query(
                    "INSERT INTO memories (id, content, memory_type, importance, created_at,
                         updated_at, last_accessed_at, access_count, source, channel_id,
                         forgotten, embedding, embedding_model)
                     VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 0, ?, ?)",
                )
                .bind(&id)
                .bind(&content)
                .bind(memory.memory_type)
                .bind(importance)
                .bind(now)
                .bind(now)
                .bind(now)
                .bind(&memory.source)
                .bind(&memory.channel_id)
                .bind(&blob)
                .bind(blob.as_ref().and(model.as_ref()))
                .execute(&mut *transaction)
                .await
                .map_err(MemoryError::database("inserting a memory"))?;
                (id, false)
            }
        };
        for (association, weight) in associations {
            insert_association(&mut transaction, &id, association, weight, now).await?;
        }
        bump_revision(&mut transaction).await?;
        let stored = sqlx::query_as::<_, Memory>(&format!(
            "SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ?"
        ))
        .bind(&id)
        .fetch_one(&mut *transaction)
        .await
        .map_err(MemoryError::database("reading a saved memory"))?;
        transaction
            .commit()
            .await
            .map_err(MemoryError::database("saving a memory"))?;
        if let Some(vector) = &embedding
            && let Ok(mut index) = self.index.write()
            && let Err(error) = index.upsert(&id, memory.memory_type.code(), vector)
        {
            tracing::warn!(agent_id = %self.agent_id, %error, "memory saved but not indexed for similarity");
        }
        self.changed();
        self.events.publish(ProcessEvent::MemorySaved {
            agent_id: self.agent_id.clone(),
            memory_id: stored.id.clone(),
            memory_type: stored.memory_type.as_str().to_string(),
            merged,
            source: stored.source.clone(),
            conversation_id: stored.channel_id.clone(),
        });
        Ok(SaveOutcome {
            memory: stored,
            merged,
            embedded: embedding.is_some(),
        })
    }

    /// The remembered memory of `memory_type` whose embedding has cosine similarity >= 0.95
    /// with `vector` (checked exactly against the stored f32 vector), other than `except`.
    pub(super) async fn near_duplicate(
        &self,
        vector: &[f32],
        memory_type: MemoryType,
        except: Option<&str>,
    ) -> Result<Option<String>, MemoryError> {
        let index = self.index.clone();
        let query = vector.to_vec();
        let hits = tokio::task::spawn_blocking(move || {
            index
                .read()
                .map(|index| index.search(&query, 4, Some(memory_type.code())))
                .unwrap_or_default()
        })
        .await
        .map_err(|error| MemoryError::Task(error.to_string()))?;
        // The index is approximate (error < 0.01): confirm candidates on the exact vectors.
        for hit in hits {
            if hit.similarity < NEAR_DUPLICATE_SIMILARITY - 0.01 {
                break;
            }
            if except == Some(&*hit.id) {
                continue;
            }
            let blob: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT embedding FROM memories WHERE id = ? AND forgotten = 0")
                    .bind(&*hit.id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(MemoryError::database("reading an embedding"))?
                    .flatten();
            let exact = blob
                .as_deref()
                .and_then(from_blob)
                .filter(|stored| stored.len() == vector.len())
                .map(|stored| dot(&stored, vector));
            if exact.is_some_and(|similarity| similarity >= NEAR_DUPLICATE_SIMILARITY) {
                return Ok(Some(hit.id.to_string()));
            }
        }
        Ok(None)
    }

    /// Without embeddings, only the same text (ignoring case) counts as a duplicate.
    async fn same_text(
        &self,
        content: &str,
        memory_type: MemoryType,
    ) -> Result<Option<String>, MemoryError> {
        sqlx::query_scalar(
            "SELECT id FROM memories
             WHERE forgotten = 0 AND memory_type = ? AND lower(content) = lower(?)
             ORDER BY created_at LIMIT 1",
        )
        .bind(memory_type)
        .bind(content)
        .fetch_optional(&self.pool)
        .await
        .map_err(MemoryError::database("looking for a duplicate"))
    }

    /// Soft-deletes a memory: it stays in the database but is never returned again.
    pub async fn forget(&self, id: &str) -> Result<Memory, MemoryError> {
        let _writer = self.write_lock.lock().await;
        let mut transaction = crate::database::begin_write(&self.pool)
            .await
            .map_err(MemoryError::database("forgetting a memory"))?;
        let forgotten = sqlx::query_as::<_, Memory>(&format!(
            "UPDATE memories SET forgotten = 1, updated_at = ? WHERE id = ? AND forgotten = 0
             RETURNING {MEMORY_COLUMNS}"
        ))
        .bind(now_millis())
        .bind(id)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(MemoryError::database("forgetting a memory"))?
        .ok_or_else(|| MemoryError::NotFound(id.to_string()))?;
        bump_revision(&mut transaction).await?;
        transaction
            .commit()
            .await
            .map_err(MemoryError::database("forgetting a memory"))?;
        if let Ok(mut index) = self.index.write() {
            index.remove(id);
        }
        self.changed();
        Ok(forgotten)
    }

    /// A remembered memory by id.
    pub async fn get(&self, id: &str) -> Result<Memory, MemoryError> {
        sqlx::query_as::<_, Memory>(&format!(
            "SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ? AND forgotten = 0"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(MemoryError::database("reading a memory"))?
        .ok_or_else(|| MemoryError::NotFound(id.to_string()))
    }

    /// Associations from or to a memory, among remembered memories.
    pub async fn associations(&self, id: &str) -> Result<Vec<Association>, MemoryError> {
        sqlx::query_as::<_, Association>(
            "SELECT a.source_id, a.target_id, a.relation, a.weight FROM associations a
             JOIN memories s ON s.id = a.source_id AND +s.forgotten = 0
             JOIN memories t ON t.id = a.target_id AND +t.forgotten = 0
             WHERE a.source_id = ?1 OR a.target_id = ?1
             ORDER BY a.weight DESC, a.source_id, a.target_id, a.relation",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(MemoryError::database("reading associations"))
    }

    /// Remembered memories, newest or most important first, and how many there are in all.
    pub async fn list(
        &self,
        memory_type: Option<MemoryType>,
        order: ListOrder,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<Memory>, i64), MemoryError> {
        let order_by = match order {
            ListOrder::Recent => "updated_at DESC, id DESC",
            ListOrder::Important => "importance DESC, updated_at DESC, id DESC",
        };
        let memories = sqlx::query_as::<_, Memory>(&format!(
            "SELECT {MEMORY_COLUMNS} FROM memories
             WHERE forgotten = 0 AND (?1 IS NULL OR memory_type = ?1)
             ORDER BY {order_by} LIMIT ?2 OFFSET ?3"
        ))
        .bind(memory_type)
        .bind(limit as i64)
        .bind(offset as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(MemoryError::database("listing memories"))?;
        let total: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM memories WHERE forgotten = 0 AND (?1 IS NULL OR memory_type = ?1)",
        )
        .bind(memory_type)
        .fetch_one(&self.pool)
        .await
        .map_err(MemoryError::database("counting memories"))?;
        Ok((memories, total))
    }

    /// Finds memories for `query`, embedding its text when an embedder is available.
    pub async fn recall(&self, query: &RecallQuery) -> Result<RecallResult, MemoryError> {
        let wants_vector = !query.text.trim().is_empty() && self.indexed() > 0;
        let embedding = if wants_vector && self.embedder.is_available() {
            match self.embedder.embed_one(query.text.trim()).await {
                Ok(vector) => Some(vector),
                Err(error) => {
                    tracing::warn!(agent_id = %self.agent_id, %error, "recall falls back to full text");
                    None
                }
            }
        } else {
            None
        };
        self.recall_embedded(query, embedding).await
    }

    /// `recall` with the query's embedding already computed (`None`: full text only).
    pub async fn recall_embedded(
        &self,
        query: &RecallQuery,
        embedding: Option<Vec<f32>>,
    ) -> Result<RecallResult, MemoryError> {
        let limit = query.max_results.clamp(1, MAXIMUM_RESULTS);
        let text = query.text.trim();
        let full_text_only = embedding.is_none();
        if text.is_empty() {
            if query.mode == RecallMode::Hybrid {
                return Err(MemoryError::Invalid(
                    "a hybrid recall needs a query; use mode `recent` or `important` to browse"
                        .to_string(),
                ));
            }
            let order = match query.mode {
                RecallMode::Important => ListOrder::Important,
                RecallMode::Recent | RecallMode::Hybrid => ListOrder::Recent,
            };
            let (memories, _) = self.list(query.memory_type, order, limit, 0).await?;
            let memories = memories
                .into_iter()
                .map(|memory| RecalledMemory {
                    memory,
                    score: 0.0,
                    full_text_rank: None,
                    vector_rank: None,
                    via: None,
                })
                .collect();
            let result = RecallResult {
                memories,
                full_text_only,
            };
            self.touch(&result).await?;
            return Ok(result);
        }

        // The vector scan (a blocking thread) and the full-text query (SQLite's thread) run
        // at the same time.
        let must_match = embedding.is_none();
        let vector_search = async {
            match embedding {
                Some(mut vector) => {
                    normalize(&mut vector);
                    self.vector_ranks(vector, query.memory_type).await
                }
                None => Ok(Vec::new()),
            }
        };
        let (full_text, vector) = tokio::join!(
            self.full_text_ranks(text, query.memory_type, must_match),
            vector_search
        );
        let (full_text, vector) = (full_text?, vector?);
        let first = reciprocal_rank_fusion(&[full_text.clone(), vector.clone()]);
        let strong: Vec<String> = first
            .iter()
            .take(WALK_FROM)
            .map(|entry| entry.key.clone())
            .collect();
        let hops = self.walk(&strong).await?;
        let walked: Vec<String> = hops.iter().map(|(id, _)| id.clone()).collect();
        let fused = reciprocal_rank_fusion(&[full_text, vector, walked]);
        let hop_of: HashMap<&str, &AssociationHop> =
            hops.iter().map(|(id, hop)| (id.as_str(), hop)).collect();

        // Load rows for the fused candidates, best first; the walk may reach other types, so
        // the type filter is applied again here. A hybrid recall needs only the first
        // `limit` that pass; the other modes re-sort every candidate.
        let wanted = match query.mode {
            RecallMode::Hybrid => limit,
            RecallMode::Recent | RecallMode::Important => usize::MAX,
        };
        let chunk = match query.mode {
            RecallMode::Hybrid => limit + 5,
            RecallMode::Recent | RecallMode::Important => fused.len().max(1),
        };
        let mut memories: Vec<RecalledMemory> = Vec::new();
        for entries in fused.chunks(chunk) {
            let keys: Vec<String> = entries.iter().map(|entry| entry.key.clone()).collect();
            let rows = self.load_remembered(&keys).await?;
            for entry in entries {
                let Some(memory) = rows.get(&entry.key) else {
                    continue;
                };
                if query
                    .memory_type
                    .is_some_and(|wanted| memory.memory_type != wanted)
                {
                    continue;
                }
                let via = match (entry.ranks[0], entry.ranks[1]) {
                    (None, None) => hop_of.get(entry.key.as_str()).map(|hop| (*hop).clone()),
                    _ => None,
                };
                memories.push(RecalledMemory {
                    memory: memory.clone(),
                    score: entry.score,
                    full_text_rank: entry.ranks[0],
                    vector_rank: entry.ranks[1],
                    via,
                });
            }
            if memories.len() >= wanted {
                break;
            }
        }
        match query.mode {
            RecallMode::Hybrid => {}
            RecallMode::Recent => memories.sort_by(|left, right| {
                right
                    .memory
                    .updated_at
                    .cmp(&left.memory.updated_at)
                    .then_with(|| left.memory.id.cmp(&right.memory.id))
            }),
            RecallMode::Important => memories.sort_by(|left, right| {
                right
                    .memory
                    .importance
                    .total_cmp(&left.memory.importance)
                    .then_with(|| right.score.total_cmp(&left.score))
                    .then_with(|| left.memory.id.cmp(&right.memory.id))
            }),
        }
        memories.truncate(limit);
        let result = RecallResult {
            memories,
            full_text_only,
        };
        self.touch(&result).await?;
        Ok(result)
    }

    /// Ids of the best BM25 matches, best first. Terms matching so many memories that
    /// ranking them would exceed `FULL_TEXT_BUDGET` are dropped; when `must_match` (no vector
    /// list), the rarest term is searched even then.
    pub(super) async fn full_text_ranks(
        &self,
        text: &str,
        memory_type: Option<MemoryType>,
        must_match: bool,
    ) -> Result<Vec<String>, MemoryError> {
        let terms = full_text_terms(text);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        // How many memories each term matches, counting at most one past the budget: cheap,
        // as counting does not rank.
        let counts_sql = terms
            .iter()
            .enumerate()
            .map(|(number, _)| {
                format!(
                    "(SELECT count(*) FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ?{} LIMIT ?{}))",
                    number + 1,
                    terms.len() + 1
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let counts_sql = format!("SELECT {counts_sql}");
        let mut counts = sqlx::query(&counts_sql);
        for term in &terms {
            counts = counts.bind(quote_term(term));
        }
        let row = counts
            .bind(FULL_TEXT_BUDGET + 1)
            .fetch_one(&self.pool)
            .await
            .map_err(MemoryError::database("counting full-text matches"))?;
        let counted: Vec<(&str, i64)> = terms
            .iter()
            .enumerate()
            .map(|(column, term)| (term.as_str(), row.get::<i64, _>(column)))
            .collect();
        let selected = select_terms(&counted, FULL_TEXT_BUDGET, must_match);
        let Some(expression) = match_any(&selected) else {
            return Ok(Vec::new());
        };
        let statement = match memory_type {
            // FTS5 ranks and cuts on its own, then only the best rows are joined.
            None => sqlx::query_scalar(
                "SELECT m.id FROM (
                     SELECT rowid, rank FROM memories_fts WHERE memories_fts MATCH ?1
                     ORDER BY rank LIMIT ?2
                 ) AS hits
                 JOIN memories m ON m.seq = hits.rowid
                 WHERE +m.forgotten = 0
                 ORDER BY hits.rank, m.seq",
            )
            .bind(expression)
            .bind(CANDIDATES_PER_LIST as i64),
            Some(memory_type) => sqlx::query_scalar(
                "SELECT m.id FROM memories_fts
                 JOIN memories m ON m.seq = memories_fts.rowid
                 WHERE memories_fts MATCH ?1 AND +m.forgotten = 0 AND m.memory_type = ?2
                 ORDER BY memories_fts.rank, m.seq
                 LIMIT ?3",
            )
            .bind(expression)
            .bind(memory_type)
            .bind(CANDIDATES_PER_LIST as i64),
        };
        statement
            .fetch_all(&self.pool)
            .await
            .map_err(MemoryError::database("full-text search"))
    }

    /// Ids of the most similar embeddings, most similar first.
    pub(super) async fn vector_ranks(
        &self,
        vector: Vec<f32>,
        memory_type: Option<MemoryType>,
    ) -> Result<Vec<String>, MemoryError> {
        let index = self.index.clone();
        let kind = memory_type.map(MemoryType::code);
        tokio::task::spawn_blocking(move || {
            index
                .read()
                .map(|index| {
                    index
                        .search(&vector, CANDIDATES_PER_LIST, kind)
                        .into_iter()
                        .filter(|hit| hit.similarity >= MINIMUM_SIMILARITY)
                        .map(|hit| hit.id.to_string())
                        .collect()
                })
                .unwrap_or_default()
        })
        .await
        .map_err(|error| MemoryError::Task(error.to_string()))
    }

    /// One hop over associations (both directions) from `starts`, strongest edges of the
    /// best starts first; remembered memories only, starts themselves excluded.
    async fn walk(&self, starts: &[String]) -> Result<Vec<(String, AssociationHop)>, MemoryError> {
        if starts.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = vec!["?"; starts.len()].join(", ");
        // Two index lookups (by source, by target); the far end must be remembered.
        let sql = format!(
            "SELECT a.source_id, a.target_id, a.relation, a.weight FROM associations a
             WHERE a.source_id IN ({placeholders})
               AND EXISTS (SELECT 1 FROM memories t WHERE t.id = a.target_id AND +t.forgotten = 0)
             UNION ALL
             SELECT a.source_id, a.target_id, a.relation, a.weight FROM associations a
             WHERE a.target_id IN ({placeholders})
               AND EXISTS (SELECT 1 FROM memories s WHERE s.id = a.source_id AND +s.forgotten = 0)"
        );
        let mut statement = sqlx::query_as::<_, Association>(&sql);
        for _ in 0..2 {
            for start in starts {
                statement = statement.bind(start);
            }
        }
        let edges = statement
            .fetch_all(&self.pool)
            .await
            .map_err(MemoryError::database("walking associations"))?;
        let start_set: HashSet<&str> = starts.iter().map(String::as_str).collect();
        let mut reached: Vec<(usize, f64, String, AssociationHop)> = Vec::new();
        for edge in edges {
            for (from, to) in [
                (&edge.source_id, &edge.target_id),
                (&edge.target_id, &edge.source_id),
            ] {
                let Some(position) = starts.iter().position(|start| start == from) else {
                    continue;
                };
                if start_set.contains(to.as_str()) {
                    continue;
                }
                reached.push((
                    position,
                    edge.weight,
                    to.clone(),
                    AssociationHop {
                        from: from.clone(),
                        relation: edge.relation,
                        weight: edge.weight,
                    },
                ));
            }
        }
        reached.sort_by(|left, right| {
            left.0
                .cmp(&right.0)
                .then_with(|| right.1.total_cmp(&left.1))
                .then_with(|| left.2.cmp(&right.2))
        });
        let mut seen = HashSet::new();
        Ok(reached
            .into_iter()
            .filter(|(_, _, id, _)| seen.insert(id.clone()))
            .map(|(_, _, id, hop)| (id, hop))
            .collect())
    }

    async fn load_remembered(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Memory>, MemoryError> {
        let mut rows = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(200) {
            let placeholders = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT {MEMORY_COLUMNS} FROM memories WHERE id IN ({placeholders}) AND +forgotten = 0"
            );
            let mut statement = sqlx::query_as::<_, Memory>(&sql);
            for id in chunk {
                statement = statement.bind(id);
            }
            for memory in statement
                .fetch_all(&self.pool)
                .await
                .map_err(MemoryError::database("reading recalled memories"))?
            {
                rows.insert(memory.id.clone(), memory);
            }
        }
        Ok(rows)
    }

    /// Records that recalled memories were accessed (maintenance decays them more slowly).
    /// Counted in memory and written in batches, so a recall does not write to the database;
    /// `flush_accesses` writes them (maintenance and shutdown call it).
    async fn touch(&self, result: &RecallResult) -> Result<(), MemoryError> {
        if result.memories.is_empty() {
            return Ok(());
        }
        let now = now_millis();
        let pending = match self.accesses.lock() {
            Ok(mut accesses) => {
                for recalled in &result.memories {
                    let entry = accesses
                        .entry(recalled.memory.id.clone())
                        .or_insert((0, now));
                    entry.0 += 1;
                    entry.1 = now;
                }
                accesses.len()
            }
            Err(_) => 0,
        };
        if pending >= ACCESS_FLUSH_AT {
            self.flush_accesses().await?;
        }
        Ok(())
    }

    /// Writes the access counts gathered since the last flush.
    pub async fn flush_accesses(&self) -> Result<(), MemoryError> {
        let accesses = match self.accesses.lock() {
            Ok(mut accesses) => std::mem::take(&mut *accesses),
            Err(_) => return Ok(()),
        };
        if accesses.is_empty() {
            return Ok(());
        }
        let mut transaction = crate::database::begin_write(&self.pool)
            .await
            .map_err(MemoryError::database("recording recall access"))?;
        for (id, (count, last)) in &accesses {
            sqlx::query(
                "UPDATE memories SET access_count = access_count + ?,
                     last_accessed_at = max(last_accessed_at, ?)
                 WHERE id = ?",
            )
            .bind(count)
            .bind(last)
            .bind(id)
            .execute(&mut *transaction)
            .await
            .map_err(MemoryError::database("recording recall access"))?;
        }
        transaction
            .commit()
            .await
            .map_err(MemoryError::database("recording recall access"))?;
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

async fn insert_association(
    transaction: &mut sqlx::SqliteConnection,
    source_id: &str,
    association: &NewAssociation,
    weight: f64,
    now: i64,
) -> Result<(), MemoryError> {
    if association.target_id == source_id {
        return Err(MemoryError::Invalid(
            "a memory cannot be associated with itself".to_string(),
        ));
    }
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM memories WHERE id = ? AND forgotten = 0")
            .bind(&association.target_id)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(MemoryError::database("checking an association target"))?;
    if exists.is_none() {
        return Err(MemoryError::Invalid(format!(
            "cannot associate with `{}`: no such memory (it may have been forgotten)",
            association.target_id
        )));
    }
    sqlx::query(
        "INSERT INTO associations (source_id, target_id, relation, weight, created_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (source_id, target_id, relation) DO UPDATE SET weight = excluded.weight",
    )
    .bind(source_id)
    .bind(&association.target_id)
    .bind(association.relation)
    .bind(weight)
    .bind(now)
    .execute(&mut *transaction)
    .await
    .map_err(MemoryError::database("saving an association"))?;
    Ok(())
}

pub(super) async fn bump_revision(
    transaction: &mut sqlx::SqliteConnection,
) -> Result<(), MemoryError> {
    sqlx::query("UPDATE memory_revision SET revision = revision + 1 WHERE id = 1")
        .execute(&mut *transaction)
        .await
        .map_err(MemoryError::database("recording a change"))?;
    Ok(())
}

/// The relation names, for error messages and schemas.
pub fn relation_names() -> Vec<&'static str> {
    Relation::ALL
        .iter()
        .map(|relation| relation.as_str())
        .collect()
}
