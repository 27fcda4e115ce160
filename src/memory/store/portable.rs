//! Moving memories between stores: export as records (one JSON line each, with origin,
//! associations, and the embedding with its model's id), and import them back, keeping ids
//! and times, re-embedding those whose embedding came from another model.

use std::collections::HashSet;

use super::{MemoryStore, validate_content, validate_unit};
use crate::memory::base64;
use crate::memory::index::{from_blob, normalize, to_blob};
use crate::memory::{MemoryError, MemoryType, Origin, Relation};

/// Memories per page of an export and per batch of an import.
pub const PAGE: usize = 500;

/// One memory as exported: a JSON Lines record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MemoryRecord {
    pub id: String,
    pub content: String,
    #[serde(rename = "type")]
    pub memory_type: MemoryType,
    pub importance: f64,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub last_accessed_at: i64,
    #[serde(default)]
    pub access_count: i64,
    pub source: String,
    pub origin: Origin,
    /// The model that made `embedding`; an import into a store with another model
    /// re-embeds the content.
    #[serde(default)]
    pub embedding_model: Option<String>,
    /// Little-endian f32 values, base64.
    #[serde(default)]
    pub embedding: Option<String>,
    /// Associations from this memory.
    #[serde(default)]
    pub associations: Vec<RecordAssociation>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordAssociation {
    pub target_id: String,
    pub relation: Relation,
    pub weight: f64,
    #[serde(default)]
    pub created_at: i64,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ImportReport {
    pub imported: usize,
    /// Already in the store (by id): left as they are.
    pub skipped: usize,
    /// Embedded again because their embedding came from another model (or had none).
    pub reembedded: usize,
    /// Imported without an embedding (no embedder available); maintenance embeds them later.
    pub unembedded: usize,
    pub associations: usize,
}

impl ImportReport {
    pub fn add(&mut self, other: &ImportReport) {
        self.imported += other.imported;
        self.skipped += other.skipped;
        self.reembedded += other.reembedded;
        self.unembedded += other.unembedded;
        self.associations += other.associations;
    }
}

impl MemoryStore {
    /// One page of remembered memories as records, oldest first, after position `after` (0
    /// for the first page); returns the position to pass for the next page, `None` at the
    /// end.
    pub async fn export_page(
        &self,
        after: i64,
    ) -> Result<(Vec<MemoryRecord>, Option<i64>), MemoryError> {
        let page = PAGE as i64;
        let rows = sqlx::query!(
            r#"SELECT seq AS "seq!", id, content, memory_type AS "memory_type: MemoryType",
                      importance, created_at, updated_at, last_accessed_at, access_count, source,
                      channel_id, sender, trusted AS "trusted: bool", embedding, embedding_model
               FROM memories WHERE forgotten = 0 AND seq > ? ORDER BY seq LIMIT ?"#,
            after,
            page,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(MemoryError::database("exporting memories"))?;
        let next = (rows.len() == PAGE)
            .then(|| rows.last().map(|row| row.seq))
            .flatten();
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let associations = sqlx::query!(
                r#"SELECT a.target_id, a.relation AS "relation: Relation", a.weight, a.created_at
                   FROM associations a
                   JOIN memories t ON t.id = a.target_id AND +t.forgotten = 0
                   WHERE a.source_id = ?
                   ORDER BY a.target_id, a.relation"#,
                row.id,
            )
            .fetch_all(&self.pool)
            .await
            .map_err(MemoryError::database("exporting associations"))?
            .into_iter()
            .map(|association| RecordAssociation {
                target_id: association.target_id,
                relation: association.relation,
                weight: association.weight,
                created_at: association.created_at,
            })
            .collect();
            let embedding = row.embedding.as_deref().map(base64::encode);
            records.push(MemoryRecord {
                id: row.id,
                content: row.content,
                memory_type: row.memory_type,
                importance: row.importance,
                created_at: row.created_at,
                updated_at: row.updated_at,
                last_accessed_at: row.last_accessed_at,
                access_count: row.access_count,
                source: row.source,
                origin: Origin {
                    conversation_id: row.channel_id,
                    sender: row.sender,
                    trusted: row.trusted,
                },
                embedding_model: embedding.as_ref().and(row.embedding_model),
                embedding,
                associations,
            });
        }
        Ok((records, next))
    }

    /// Adds associations between memories already in the store (an import in several
    /// calls adds those between calls at the end); returns how many were new.
    pub async fn import_associations(
        &self,
        edges: &[(String, RecordAssociation)],
    ) -> Result<usize, MemoryError> {
        let _writer = self.write_lock.lock().await;
        let mut transaction = crate::database::begin_write(&self.pool)
            .await
            .map_err(MemoryError::database("importing associations"))?;
        let edges: Vec<(&str, &RecordAssociation)> = edges
            .iter()
            .map(|(source, association)| (source.as_str(), association))
            .collect();
        let added = insert_associations(&mut transaction, &edges).await?;
        transaction
            .commit()
            .await
            .map_err(MemoryError::database("importing associations"))?;
        Ok(added)
    }

    /// Imports records: memories keep their ids, times and origin; ids already in the store
    /// are skipped. An embedding made by this store's model is kept, any other is made
    /// again, in batches. Associations are added once both ends are in the store, so a
    /// record may point at one imported later in the same call.
    pub async fn import(&self, records: Vec<MemoryRecord>) -> Result<ImportReport, MemoryError> {
        let mut report = ImportReport::default();
        for record in &records {
            validate_content(record.content.trim())?;
            validate_unit("importance", record.importance)?;
            for association in &record.associations {
                validate_unit("association weight", association.weight)?;
            }
        }
        let model = self.embedder.model_id().map(str::to_string);
        // Which records keep their vector, and which need the model again.
        let mut vectors: Vec<Option<Vec<f32>>> = records
            .iter()
            .map(|record| {
                let same_model =
                    model.is_some() && record.embedding_model.as_deref() == model.as_deref();
                same_model
                    .then_some(record.embedding.as_deref())
                    .flatten()
                    .and_then(base64::decode)
                    .and_then(|bytes| from_blob(&bytes))
                    .filter(|vector| !vector.is_empty())
            })
            .collect();
        let missing: Vec<usize> = (0..records.len())
            .filter(|&number| vectors[number].is_none())
            .collect();
        if !missing.is_empty() && model.is_some() && self.embedder.is_available() {
            let texts = missing
                .iter()
                .map(|&number| records[number].content.trim().to_string())
                .collect();
            match self.embedder.embed(texts).await {
                Ok(embedded) => {
                    for (number, vector) in missing.iter().zip(embedded) {
                        vectors[*number] = Some(vector);
                        report.reembedded += 1;
                    }
                }
                Err(error) => {
                    tracing::warn!(agent_id = %self.agent_id, %error, "importing memories without embeddings; maintenance embeds them later");
                }
            }
        }

        let _writer = self.write_lock.lock().await;
        let mut transaction = crate::database::begin_write(&self.pool)
            .await
            .map_err(MemoryError::database("importing memories"))?;
        let mut inserted: Vec<(usize, Vec<f32>)> = Vec::new();
        let mut imported_ids = HashSet::new();
        for (number, record) in records.iter().enumerate() {
            let vector = vectors[number].take().map(|mut vector| {
                normalize(&mut vector);
                vector
            });
            let blob = vector.as_deref().map(to_blob);
            let embedding_model = blob.as_ref().and(model.as_ref());
            let content = record.content.trim();
            let done = sqlx::query!(
                "INSERT INTO memories (id, content, memory_type, importance, created_at,
                     updated_at, last_accessed_at, access_count, source, channel_id, sender,
                     trusted, forgotten, embedding, embedding_model)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
                 ON CONFLICT (id) DO NOTHING",
                record.id,
                content,
                record.memory_type,
                record.importance,
                record.created_at,
                record.updated_at,
                record.last_accessed_at,
                record.access_count,
                record.source,
                record.origin.conversation_id,
                record.origin.sender,
                record.origin.trusted,
                blob,
                embedding_model,
            )
            .execute(&mut *transaction)
            .await
            .map_err(MemoryError::database("importing a memory"))?;
            if done.rows_affected() == 0 {
                report.skipped += 1;
                continue;
            }
            report.imported += 1;
            imported_ids.insert(record.id.as_str());
            match vector {
                Some(vector) => inserted.push((number, vector)),
                None => report.unembedded += 1,
            }
        }
        let edges: Vec<(&str, &RecordAssociation)> = records
            .iter()
            .filter(|record| imported_ids.contains(record.id.as_str()))
            .flat_map(|record| {
                record
                    .associations
                    .iter()
                    .map(|association| (record.id.as_str(), association))
            })
            .collect();
        report.associations = insert_associations(&mut transaction, &edges).await?;
        sqlx::query!("UPDATE memory_revision SET revision = revision + 1 WHERE id = 1")
            .execute(&mut *transaction)
            .await
            .map_err(MemoryError::database("recording a change"))?;
        transaction
            .commit()
            .await
            .map_err(MemoryError::database("importing memories"))?;
        if let Ok(mut index) = self.index.write() {
            for (number, vector) in &inserted {
                let record = &records[*number];
                if let Err(error) = index.upsert_grouped(
                    &record.id,
                    record.memory_type.code(),
                    record.origin.conversation_id.as_deref(),
                    vector,
                ) {
                    tracing::warn!(agent_id = %self.agent_id, %error, "imported memory not indexed for similarity");
                }
            }
        }
        self.changed();
        tracing::info!(agent_id = %self.agent_id, imported = report.imported, skipped = report.skipped, reembedded = report.reembedded, "memories imported");
        Ok(report)
    }
}

/// Inserts associations whose both ends are remembered memories; returns how many were new.
async fn insert_associations(
    transaction: &mut sqlx::SqliteConnection,
    edges: &[(&str, &RecordAssociation)],
) -> Result<usize, MemoryError> {
    let mut added = 0;
    for (source, association) in edges {
        let done = sqlx::query!(
            "INSERT OR IGNORE INTO associations
                 (source_id, target_id, relation, weight, created_at)
             SELECT ?1, ?2, ?3, ?4, ?5
             WHERE ?1 != ?2
               AND EXISTS (SELECT 1 FROM memories WHERE id = ?1 AND forgotten = 0)
               AND EXISTS (SELECT 1 FROM memories WHERE id = ?2 AND forgotten = 0)",
            source,
            association.target_id,
            association.relation,
            association.weight,
            association.created_at,
        )
        .execute(&mut *transaction)
        .await
        .map_err(MemoryError::database("importing an association"))?;
        added += done.rows_affected() as usize;
    }
    Ok(added)
}
