//! Writing memories: saving (merging near-duplicates of the same type), associating a saved
//! memory with others, setting its importance, forgetting (soft deletion), and the revision
//! counter writes bump.

use super::{
    DEFAULT_WEIGHT, MemoryStore, NEAR_DUPLICATE_SIMILARITY, validate_content, validate_unit,
};
use crate::database::now_millis;
use crate::event::ProcessEvent;
use crate::memory::index::{Filter, Group, dot, from_blob, normalize, to_blob};
use crate::memory::{
    Memory, MemoryError, MemoryType, NewAssociation, NewMemory, Origin, SaveOutcome,
};

impl MemoryStore {
    /// Saves a memory, embedding it first when an embedder is available. A remembered memory
    /// of the same type and origin (conversation and trust) with cosine similarity >= 0.95
    /// (or, without embeddings, the same text) is updated instead: it takes the new wording
    /// and the higher importance. Memories of different origins never merge, so what a
    /// non-owner says cannot reword an owner's memory or move it to another audience.
    pub async fn save(&self, memory: NewMemory) -> Result<SaveOutcome, MemoryError> {
        let embedding = if self.embedder.is_available() {
            // Saves that arrive together are embedded in one batch.
            match self.embedder.embed_batched(memory.content.trim()).await {
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
        let origin = &memory.origin;
        let duplicate = match &embedding {
            Some(vector) => {
                self.near_duplicate(vector, memory.memory_type, origin, None)
                    .await?
            }
            None => self.same_text(&content, memory.memory_type, origin).await?,
        };
        let now = now_millis();
        let blob = embedding.as_deref().map(to_blob);
        let mut transaction = crate::database::begin_write(&self.pool)
            .await
            .map_err(MemoryError::database("saving a memory"))?;
        let (id, merged) = match duplicate {
            Some(existing) => {
                sqlx::query!(
                    "UPDATE memories SET content = ?, importance = max(importance, ?),
                         updated_at = ?,
                         embedding = coalesce(?, embedding),
                         embedding_model = CASE WHEN ? IS NULL THEN embedding_model ELSE ? END
                     WHERE id = ?",
                    content,
                    importance,
                    now,
                    blob,
                    blob,
                    model,
                    existing,
                )
                .execute(&mut *transaction)
                .await
                .map_err(MemoryError::database("updating a near-duplicate memory"))?;
                (existing, true)
            }
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                let embedding_model = blob.as_ref().and(model.as_ref());
                sqlx::query!(
                    "INSERT INTO memories (id, content, memory_type, importance, created_at,
                         updated_at, last_accessed_at, access_count, source, channel_id,
                         sender, trusted, forgotten, embedding, embedding_model)
                     VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, 0, ?, ?)",
                    id,
                    content,
                    memory.memory_type,
                    importance,
                    now,
                    now,
                    now,
                    memory.source,
                    origin.conversation_id,
                    origin.sender,
                    origin.trusted,
                    blob,
                    embedding_model,
                )
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
        let stored = sqlx::query_as!(
            Memory,
            r#"SELECT id, content, memory_type AS "memory_type: MemoryType", importance,
                      created_at, updated_at, last_accessed_at, access_count, source, channel_id,
                      sender, trusted AS "trusted: bool"
               FROM memories WHERE id = ?"#,
            id,
        )
        .fetch_one(&mut *transaction)
        .await
        .map_err(MemoryError::database("reading a saved memory"))?;
        transaction
            .commit()
            .await
            .map_err(MemoryError::database("saving a memory"))?;
        if let Some(vector) = &embedding
            && let Ok(mut index) = self.index.write()
            && let Err(error) = index.upsert_grouped(
                &id,
                memory.memory_type.code(),
                stored.channel_id.as_deref(),
                vector,
            )
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

    /// The remembered memory of `memory_type` and of the same origin (conversation and
    /// trust) whose embedding has cosine similarity >= 0.95 with `vector` (checked exactly
    /// against the stored f32 vector), other than `except`.
    pub(in crate::memory) async fn near_duplicate(
        &self,
        vector: &[f32],
        memory_type: MemoryType,
        origin: &Origin,
        except: Option<&str>,
    ) -> Result<Option<String>, MemoryError> {
        let index = self.index.clone();
        let query = vector.to_vec();
        let conversation = origin.conversation_id.clone();
        let hits = tokio::task::spawn_blocking(move || {
            let filter = Filter {
                kind: Some(memory_type.code()),
                group: match &conversation {
                    Some(conversation) => Group::Named(conversation),
                    None => Group::Ungrouped,
                },
            };
            index
                .read()
                .map(|index| index.search_filtered(&query, 4, filter))
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
            let candidate: &str = &hit.id;
            let blob = sqlx::query_scalar!(
                "SELECT embedding FROM memories WHERE id = ? AND forgotten = 0 AND trusted = ?",
                candidate,
                origin.trusted,
            )
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

    /// Without embeddings, only the same text (ignoring case) of the same origin counts as
    /// a duplicate.
    async fn same_text(
        &self,
        content: &str,
        memory_type: MemoryType,
        origin: &Origin,
    ) -> Result<Option<String>, MemoryError> {
        sqlx::query_scalar!(
            "SELECT id FROM memories
             WHERE forgotten = 0 AND memory_type = ? AND lower(content) = lower(?)
               AND channel_id IS ? AND trusted = ?
             ORDER BY created_at LIMIT 1",
            memory_type,
            content,
            origin.conversation_id,
            origin.trusted,
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(MemoryError::database("looking for a duplicate"))
    }

    /// Sets how important a remembered memory is (0 to 1), as its owner judges it.
    pub async fn set_importance(&self, id: &str, importance: f64) -> Result<Memory, MemoryError> {
        validate_unit("importance", importance)?;
        let _writer = self.write_lock.lock().await;
        let mut transaction = crate::database::begin_write(&self.pool)
            .await
            .map_err(MemoryError::database("setting a memory's importance"))?;
        let now = now_millis();
        // Inside a transaction, whose COMMIT reports a failure: one row is enough.
        let updated = sqlx::query_as!(
            Memory,
            r#"UPDATE memories SET importance = ?, updated_at = ? WHERE id = ? AND forgotten = 0
               RETURNING id, content, memory_type AS "memory_type: MemoryType", importance,
                   created_at, updated_at, last_accessed_at, access_count, source, channel_id,
                   sender, trusted AS "trusted: bool""#,
            importance,
            now,
            id,
        )
        .fetch_optional(&mut *transaction)
        .await
        .map_err(MemoryError::database("setting a memory's importance"))?
        .ok_or_else(|| MemoryError::NotFound(id.to_string()))?;
        bump_revision(&mut transaction).await?;
        transaction
            .commit()
            .await
            .map_err(MemoryError::database("setting a memory's importance"))?;
        self.changed();
        Ok(updated)
    }

    /// Soft-deletes a memory: it stays in the database but is never returned again.
    pub async fn forget(&self, id: &str) -> Result<Memory, MemoryError> {
        let _writer = self.write_lock.lock().await;
        let mut transaction = crate::database::begin_write(&self.pool)
            .await
            .map_err(MemoryError::database("forgetting a memory"))?;
        let now = now_millis();
        // Inside a transaction, whose COMMIT reports a failure: one row is enough.
        let forgotten = sqlx::query_as!(
            Memory,
            r#"UPDATE memories SET forgotten = 1, updated_at = ? WHERE id = ? AND forgotten = 0
               RETURNING id, content, memory_type AS "memory_type: MemoryType", importance,
                   created_at, updated_at, last_accessed_at, access_count, source, channel_id,
                   sender, trusted AS "trusted: bool""#,
            now,
            id,
        )
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
    let exists = sqlx::query_scalar!(
        r#"SELECT 1 AS "present!: i64" FROM memories WHERE id = ? AND forgotten = 0"#,
        association.target_id,
    )
    .fetch_optional(&mut *transaction)
    .await
    .map_err(MemoryError::database("checking an association target"))?;
    if exists.is_none() {
        return Err(MemoryError::Invalid(format!(
            "cannot associate with `{}`: no such memory (it may have been forgotten)",
            association.target_id
        )));
    }
    sqlx::query!(
        "INSERT INTO associations (source_id, target_id, relation, weight, created_at)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (source_id, target_id, relation) DO UPDATE SET weight = excluded.weight",
        source_id,
        association.target_id,
        association.relation,
        weight,
        now,
    )
    .execute(&mut *transaction)
    .await
    .map_err(MemoryError::database("saving an association"))?;
    Ok(())
}

async fn bump_revision(transaction: &mut sqlx::SqliteConnection) -> Result<(), MemoryError> {
    sqlx::query!("UPDATE memory_revision SET revision = revision + 1 WHERE id = 1")
        .execute(&mut *transaction)
        .await
        .map_err(MemoryError::database("recording a change"))?;
    Ok(())
}
