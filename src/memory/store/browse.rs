//! Reading remembered memories: one by id, its associations, and pages of them newest or most
//! important first.

use super::MemoryStore;
use crate::memory::{Association, Audience, ListOrder, Memory, MemoryError, MemoryType, Relation};

impl MemoryStore {
    /// A remembered memory by id.
    pub async fn get(&self, id: &str) -> Result<Memory, MemoryError> {
        sqlx::query_as!(
            Memory,
            r#"SELECT id, content, memory_type AS "memory_type: MemoryType", importance,
                      created_at, updated_at, last_accessed_at, access_count, source, channel_id,
                      sender, trusted AS "trusted: bool"
               FROM memories WHERE id = ? AND forgotten = 0"#,
            id,
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(MemoryError::database("reading a memory"))?
        .ok_or_else(|| MemoryError::NotFound(id.to_string()))
    }

    /// Associations from or to a memory, among remembered memories.
    pub async fn associations(&self, id: &str) -> Result<Vec<Association>, MemoryError> {
        sqlx::query_as!(
            Association,
            r#"SELECT a.source_id, a.target_id, a.relation AS "relation: Relation", a.weight
               FROM associations a
               JOIN memories s ON s.id = a.source_id AND +s.forgotten = 0
               JOIN memories t ON t.id = a.target_id AND +t.forgotten = 0
               WHERE a.source_id = ?1 OR a.target_id = ?1
               ORDER BY a.weight DESC, a.source_id, a.target_id, a.relation"#,
            id,
        )
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
        self.list_for(&Audience::Everything, memory_type, order, limit, offset)
            .await
    }

    /// `list` among the memories `audience` may see.
    pub async fn list_for(
        &self,
        audience: &Audience,
        memory_type: Option<MemoryType>,
        order: ListOrder,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<Memory>, i64), MemoryError> {
        let (limit, offset) = (limit as i64, offset as i64);
        let conversation = audience.conversation();
        // One query per order: an ORDER BY cannot be a parameter.
        let memories = match order {
            ListOrder::Recent => {
                sqlx::query_as!(
                    Memory,
                    r#"SELECT id, content, memory_type AS "memory_type: MemoryType", importance,
                              created_at, updated_at, last_accessed_at, access_count, source,
                              channel_id, sender, trusted AS "trusted: bool"
                       FROM memories
                       WHERE forgotten = 0 AND (?1 IS NULL OR memory_type = ?1)
                         AND (?4 IS NULL OR channel_id = ?4)
                       ORDER BY updated_at DESC, id DESC LIMIT ?2 OFFSET ?3"#,
                    memory_type,
                    limit,
                    offset,
                    conversation,
                )
                .fetch_all(&self.pool)
                .await
            }
            ListOrder::Important => {
                sqlx::query_as!(
                    Memory,
                    r#"SELECT id, content, memory_type AS "memory_type: MemoryType", importance,
                              created_at, updated_at, last_accessed_at, access_count, source,
                              channel_id, sender, trusted AS "trusted: bool"
                       FROM memories
                       WHERE forgotten = 0 AND (?1 IS NULL OR memory_type = ?1)
                         AND (?4 IS NULL OR channel_id = ?4)
                       ORDER BY importance DESC, updated_at DESC, id DESC LIMIT ?2 OFFSET ?3"#,
                    memory_type,
                    limit,
                    offset,
                    conversation,
                )
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(MemoryError::database("listing memories"))?;
        let total = sqlx::query_scalar!(
            "SELECT count(*) FROM memories WHERE forgotten = 0 AND (?1 IS NULL OR memory_type = ?1)
             AND (?2 IS NULL OR channel_id = ?2)",
            memory_type,
            conversation,
        )
        .fetch_one(&self.pool)
        .await
        .map_err(MemoryError::database("counting memories"))?;
        Ok((memories, total))
    }

    /// How many memories of each type are remembered (for the metrics).
    pub async fn counts_by_type(&self) -> Result<Vec<(String, u64)>, MemoryError> {
        let rows = sqlx::query!(
            r#"SELECT memory_type AS "memory_type!", count(*) AS "count!: i64"
               FROM memories WHERE forgotten = 0 GROUP BY memory_type ORDER BY memory_type"#
        )
        .fetch_all(&self.pool)
        .await
        .map_err(MemoryError::database("counting memories by type"))?;
        Ok(rows
            .into_iter()
            .map(|row| (row.memory_type, u64::try_from(row.count).unwrap_or(0)))
            .collect())
    }
}
