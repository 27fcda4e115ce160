//! Recall: full-text (BM25) and vector ranks fused with reciprocal rank fusion, a shallow
//! walk over the associations of the best hits, and the access counts recalls record.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::{
    ACCESS_FLUSH_AT, CANDIDATES_PER_LIST, FULL_TEXT_BUDGET, MAXIMUM_RESULTS, MEMORY_COLUMNS,
    MINIMUM_SIMILARITY, MemoryStore, WALK_FROM,
};
use crate::database::now_millis;
use crate::memory::index::normalize;
use crate::memory::search::{
    full_text_terms, match_any, quote_term, reciprocal_rank_fusion, select_terms,
};
use crate::memory::{
    Association, AssociationHop, ListOrder, Memory, MemoryError, MemoryType, RecallMode,
    RecallQuery, RecallResult, RecalledMemory,
};

impl MemoryStore {
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
    pub(in crate::memory) async fn full_text_ranks(
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
        // as counting does not rank. Unchecked: one count per term, built at run time.
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
        let candidates = CANDIDATES_PER_LIST as i64;
        match memory_type {
            // FTS5 ranks and cuts on its own, then only the best rows are joined.
            None => {
                sqlx::query_scalar!(
                    "SELECT m.id FROM (
                         SELECT rowid, rank FROM memories_fts WHERE memories_fts MATCH ?1
                         ORDER BY rank LIMIT ?2
                     ) AS hits
                     JOIN memories m ON m.seq = hits.rowid
                     WHERE +m.forgotten = 0
                     ORDER BY hits.rank, m.seq",
                    expression,
                    candidates,
                )
                .fetch_all(&self.pool)
                .await
            }
            Some(memory_type) => {
                sqlx::query_scalar!(
                    "SELECT m.id FROM memories_fts
                     JOIN memories m ON m.seq = memories_fts.rowid
                     WHERE memories_fts MATCH ?1 AND +m.forgotten = 0 AND m.memory_type = ?2
                     ORDER BY memories_fts.rank, m.seq
                     LIMIT ?3",
                    expression,
                    memory_type,
                    candidates,
                )
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(MemoryError::database("full-text search"))
    }

    /// Ids of the most similar embeddings, most similar first.
    pub(in crate::memory) async fn vector_ranks(
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
        // Unchecked: the IN lists are built at run time.
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
            // Unchecked: the IN list is built at run time.
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
            sqlx::query!(
                "UPDATE memories SET access_count = access_count + ?,
                     last_accessed_at = max(last_accessed_at, ?)
                 WHERE id = ?",
                count,
                last,
                id,
            )
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
}
