//! Memory maintenance: importance decays with age (slower for often-recalled memories), weak
//! old memories are pruned (forgotten), near-duplicates are merged, and memories without an
//! embedding from the current embedder get one. Identity memories are never decayed, pruned
//! or merged. A pass runs only when memories changed since the previous one.
//!
//! The cortex calls `MemoryStore::maintain`; until it exists, `run_periodically` is started
//! per agent by the daemon.

use serde::Serialize;

use super::index::{from_blob, normalize, to_blob};
use super::{MemoryError, MemoryStore, MemoryType, Origin};

const DAY_MILLIS: f64 = 86_400_000.0;
/// Importance halves after this many days without access, for a never-recalled memory; each
/// recall stretches it (`half life * (1 + ln(1 + access_count))`).
pub const HALF_LIFE_DAYS: f64 = 30.0;
/// Below this importance, a memory not touched for `PRUNE_AFTER_DAYS` is forgotten.
pub const PRUNE_IMPORTANCE: f64 = 0.05;
pub const PRUNE_AFTER_DAYS: f64 = 30.0;
/// Memories changed since the previous pass checked for near-duplicates, at most, per pass.
const MERGE_CANDIDATES: i64 = 500;
/// Memories embedded per backfill batch.
const BACKFILL_BATCH: i64 = 32;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MaintenanceReport {
    /// False when nothing changed since the previous pass, so nothing was done.
    pub ran: bool,
    pub decayed: usize,
    pub pruned: usize,
    pub merged: usize,
}

impl MemoryStore {
    /// One maintenance pass at time `now` (Unix milliseconds). Decay is proportional to the
    /// time since the previous pass (or since the memory was last updated or recalled, if
    /// later), so how often passes run does not change how fast importance decays.
    pub async fn maintain(&self, now: i64) -> Result<MaintenanceReport, MemoryError> {
        // Decay reads access counts and times: write the pending ones first.
        self.flush_accesses().await?;
        let _writer = self.write_lock.lock().await;
        let state = sqlx::query!(
            "SELECT revision, maintained_revision, maintained_at FROM memory_revision WHERE id = 1"
        )
        .fetch_one(&self.pool)
        .await
        .map_err(MemoryError::database("reading the maintenance state"))?;
        let revision = state.revision;
        let previous_pass = state.maintained_at;
        if revision == state.maintained_revision {
            return Ok(MaintenanceReport::default());
        }
        let mut report = MaintenanceReport {
            ran: true,
            ..MaintenanceReport::default()
        };
        report.merged = self
            .merge_near_duplicates(previous_pass.unwrap_or(0))
            .await?;
        let (decayed, pruned) = self
            .decay_and_prune(now, previous_pass.unwrap_or(0))
            .await?;
        report.decayed = decayed;
        report.pruned = pruned;
        sqlx::query!(
            "UPDATE memory_revision SET maintained_revision = ?, maintained_at = ? WHERE id = 1",
            revision,
            now,
        )
        .execute(&self.pool)
        .await
        .map_err(MemoryError::database("recording the maintenance pass"))?;
        self.changed();
        tracing::info!(agent_id = %self.agent_id, decayed = report.decayed, pruned = report.pruned, merged = report.merged, "memory maintenance");
        Ok(report)
    }

    async fn decay_and_prune(
        &self,
        now: i64,
        previous_pass: i64,
    ) -> Result<(usize, usize), MemoryError> {
        let rows = sqlx::query!(
            "SELECT id, importance, updated_at, last_accessed_at, access_count FROM memories
             WHERE forgotten = 0 AND memory_type != 'identity'"
        )
        .fetch_all(&self.pool)
        .await
        .map_err(MemoryError::database("reading memories to decay"))?;
        let mut decayed = Vec::new();
        let mut pruned = Vec::new();
        for row in rows {
            let id = row.id;
            let importance = row.importance;
            let updated_at = row.updated_at;
            let last_accessed_at = row.last_accessed_at;
            let access_count = row.access_count;
            let last_touched = updated_at.max(last_accessed_at);
            let since = last_touched.max(previous_pass);
            let elapsed_days = (now - since).max(0) as f64 / DAY_MILLIS;
            let half_life = HALF_LIFE_DAYS * (1.0 + (1.0 + access_count.max(0) as f64).ln());
            let new_importance = importance * 0.5f64.powf(elapsed_days / half_life);
            let idle_days = (now - last_touched).max(0) as f64 / DAY_MILLIS;
            if new_importance < PRUNE_IMPORTANCE && idle_days >= PRUNE_AFTER_DAYS {
                pruned.push(id);
            } else if importance - new_importance > 1e-6 {
                decayed.push((id, new_importance));
            }
        }
        let mut transaction = crate::database::begin_write(&self.pool)
            .await
            .map_err(MemoryError::database("decaying memories"))?;
        for (id, importance) in &decayed {
            sqlx::query!(
                "UPDATE memories SET importance = ? WHERE id = ? AND memory_type != 'identity'",
                importance,
                id,
            )
            .execute(&mut *transaction)
            .await
            .map_err(MemoryError::database("decaying a memory"))?;
        }
        for id in &pruned {
            sqlx::query!(
                "UPDATE memories SET forgotten = 1 WHERE id = ? AND memory_type != 'identity'",
                id,
            )
            .execute(&mut *transaction)
            .await
            .map_err(MemoryError::database("pruning a memory"))?;
        }
        transaction
            .commit()
            .await
            .map_err(MemoryError::database("decaying memories"))?;
        if let Ok(mut index) = self.index.write() {
            for id in &pruned {
                index.remove(id);
            }
        }
        Ok((decayed.len(), pruned.len()))
    }

    /// Merges each memory changed since `since` into a near-duplicate of its type: the older
    /// memory survives with the newer wording, the higher importance and both access counts;
    /// the newer one's associations move to it and the newer one is forgotten.
    async fn merge_near_duplicates(&self, since: i64) -> Result<usize, MemoryError> {
        let Some(model) = self.embedder.model_id().map(str::to_string) else {
            return Ok(0);
        };
        let candidates = sqlx::query!(
            r#"SELECT id, memory_type AS "memory_type: MemoryType", embedding AS "embedding!",
                      channel_id, sender, trusted AS "trusted: bool"
               FROM memories
               WHERE forgotten = 0 AND memory_type != 'identity' AND updated_at >= ?
                 AND embedding IS NOT NULL AND embedding_model = ?
               ORDER BY updated_at DESC LIMIT ?"#,
            since,
            model,
            MERGE_CANDIDATES,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(MemoryError::database("reading memories to merge"))?;
        let mut merged = 0;
        for row in candidates {
            let id = row.id;
            let memory_type = row.memory_type;
            let Some(mut vector) = from_blob(&row.embedding) else {
                continue;
            };
            normalize(&mut vector);
            // Merged away by an earlier candidate of this pass?
            if !self.index.read().is_ok_and(|index| index.contains(&id)) {
                continue;
            }
            // Only memories of the same origin merge (see `save`).
            let origin = Origin {
                conversation_id: row.channel_id,
                sender: row.sender,
                trusted: row.trusted,
            };
            let Some(other) = self
                .near_duplicate(&vector, memory_type, &origin, Some(&id))
                .await?
            else {
                continue;
            };
            self.merge_pair(&id, &other).await?;
            merged += 1;
        }
        Ok(merged)
    }

    async fn merge_pair(&self, first: &str, second: &str) -> Result<(), MemoryError> {
        let rows = sqlx::query!(
            "SELECT id, content, importance, created_at, updated_at, last_accessed_at,
                    access_count, embedding, embedding_model
             FROM memories WHERE id IN (?, ?) AND forgotten = 0
             ORDER BY created_at, id",
            first,
            second,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(MemoryError::database("reading memories to merge"))?;
        let [older, newer] = rows.as_slice() else {
            return Ok(());
        };
        let survivor = older.id.clone();
        let absorbed = newer.id.clone();
        // The most recently updated wording (and its embedding) wins.
        let latest = if newer.updated_at >= older.updated_at {
            newer
        } else {
            older
        };
        let content = &latest.content;
        let embedding = &latest.embedding;
        let embedding_model = &latest.embedding_model;
        let importance = older.importance.max(newer.importance);
        let access_count = older.access_count + newer.access_count;
        let last_accessed_at = older.last_accessed_at.max(newer.last_accessed_at);
        let updated_at = older.updated_at.max(newer.updated_at);
        let survivor_row = sqlx::query!(
            r#"SELECT memory_type AS "memory_type: MemoryType", channel_id FROM memories
               WHERE id = ?"#,
            survivor,
        )
        .fetch_one(&self.pool)
        .await
        .map_err(MemoryError::database("reading a memory type"))?;
        let memory_type = survivor_row.memory_type;

        let mut transaction = crate::database::begin_write(&self.pool)
            .await
            .map_err(MemoryError::database("merging memories"))?;
        sqlx::query!(
            "UPDATE memories SET content = ?, importance = ?, access_count = ?,
                 last_accessed_at = ?, updated_at = ?, embedding = ?, embedding_model = ?
             WHERE id = ?",
            content,
            importance,
            access_count,
            last_accessed_at,
            updated_at,
            embedding,
            embedding_model,
            survivor,
        )
        .execute(&mut *transaction)
        .await
        .map_err(MemoryError::database("merging memories"))?;
        // The absorbed memory's associations move to the survivor (but not onto itself).
        sqlx::query!(
            "INSERT OR IGNORE INTO associations (source_id, target_id, relation, weight, created_at)
             SELECT ?1, target_id, relation, weight, created_at FROM associations
             WHERE source_id = ?2 AND target_id != ?1",
            survivor,
            absorbed,
        )
        .execute(&mut *transaction)
        .await
        .map_err(MemoryError::database("merging memories"))?;
        sqlx::query!(
            "INSERT OR IGNORE INTO associations (source_id, target_id, relation, weight, created_at)
             SELECT source_id, ?1, relation, weight, created_at FROM associations
             WHERE target_id = ?2 AND source_id != ?1",
            survivor,
            absorbed,
        )
        .execute(&mut *transaction)
        .await
        .map_err(MemoryError::database("merging memories"))?;
        sqlx::query!(
            "DELETE FROM associations WHERE source_id = ?1 OR target_id = ?1",
            absorbed,
        )
        .execute(&mut *transaction)
        .await
        .map_err(MemoryError::database("merging memories"))?;
        sqlx::query!("UPDATE memories SET forgotten = 1 WHERE id = ?", absorbed)
            .execute(&mut *transaction)
            .await
            .map_err(MemoryError::database("merging memories"))?;
        transaction
            .commit()
            .await
            .map_err(MemoryError::database("merging memories"))?;
        if let Ok(mut index) = self.index.write() {
            index.remove(&absorbed);
            if let Some(mut vector) = embedding.as_deref().and_then(from_blob) {
                normalize(&mut vector);
                if let Err(error) = index.upsert_grouped(
                    &survivor,
                    memory_type.code(),
                    survivor_row.channel_id.as_deref(),
                    &vector,
                ) {
                    tracing::warn!(agent_id = %self.agent_id, %error, "merged memory not indexed for similarity");
                }
            }
        }
        tracing::debug!(agent_id = %self.agent_id, %survivor, %absorbed, "merged near-duplicate memories");
        Ok(())
    }

    /// Embeds remembered memories that have no embedding from the current embedder (saved
    /// while it was unavailable, or by another embedder). Returns how many were embedded;
    /// stops at the first embedding failure.
    pub async fn backfill_embeddings(&self) -> Result<usize, MemoryError> {
        let Some(model) = self.embedder.model_id().map(str::to_string) else {
            return Ok(0);
        };
        if !self.embedder.is_available() {
            return Ok(0);
        }
        let mut embedded = 0;
        loop {
            let rows = sqlx::query!(
                r#"SELECT id, content, memory_type AS "memory_type: MemoryType", channel_id
                   FROM memories
                   WHERE forgotten = 0 AND (embedding IS NULL OR embedding_model IS NOT ?)
                   ORDER BY seq LIMIT ?"#,
                model,
                BACKFILL_BATCH,
            )
            .fetch_all(&self.pool)
            .await
            .map_err(MemoryError::database("reading memories to embed"))?;
            if rows.is_empty() {
                return Ok(embedded);
            }
            let texts: Vec<String> = rows.iter().map(|row| row.content.clone()).collect();
            let vectors = match self.embedder.embed(texts).await {
                Ok(vectors) => vectors,
                Err(error) => {
                    tracing::warn!(agent_id = %self.agent_id, %error, "cannot embed memories now; will retry");
                    return Ok(embedded);
                }
            };
            let _writer = self.write_lock.lock().await;
            for (row, mut vector) in rows.iter().zip(vectors) {
                normalize(&mut vector);
                let blob = to_blob(&vector);
                // Only if the content is unchanged since it was read.
                let updated = sqlx::query!(
                    "UPDATE memories SET embedding = ?, embedding_model = ?
                     WHERE id = ? AND content = ? AND forgotten = 0",
                    blob,
                    model,
                    row.id,
                    row.content,
                )
                .execute(&self.pool)
                .await
                .map_err(MemoryError::database("storing an embedding"))?;
                if updated.rows_affected() == 1
                    && let Ok(mut index) = self.index.write()
                {
                    match index.upsert_grouped(
                        &row.id,
                        row.memory_type.code(),
                        row.channel_id.as_deref(),
                        &vector,
                    ) {
                        Ok(()) => embedded += 1,
                        Err(error) => {
                            tracing::warn!(agent_id = %self.agent_id, %error, "embedded memory not indexed for similarity");
                        }
                    }
                }
            }
        }
    }
}
