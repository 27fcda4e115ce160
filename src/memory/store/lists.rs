//! The lists recall draws candidates from: the full-text (BM25) hits with their scores, the
//! nearest vectors, one hop over associations, and loading the candidates' rows.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use sqlx::Row;

use super::{CANDIDATES_PER_LIST, FULL_TEXT_BUDGET, MEMORY_COLUMNS, MemoryStore};
use crate::memory::index::{Filter, Group};
use crate::memory::search::{
    full_text_terms, inverse_document_frequency, match_any, quote_term, select_terms,
};
use crate::memory::{Association, AssociationHop, Audience, Memory, MemoryError, MemoryType};

/// BM25 hits (id, score: higher is better), best first, and the sum of the idf of every
/// query term (what a memory matching all of them once would score).
#[derive(Debug, Default)]
pub(in crate::memory) struct FullTextHits {
    pub hits: Vec<(String, f64)>,
    pub information: f64,
}

impl MemoryStore {
    /// The best BM25 matches with their scores, best first, and the query's information.
    /// Terms matching so many memories that ranking them would exceed `FULL_TEXT_BUDGET` are
    /// dropped; when `must_match` (no vector list), the rarest term is searched even then.
    pub(in crate::memory) async fn full_text_hits(
        &self,
        text: &str,
        memory_type: Option<MemoryType>,
        audience: &Audience,
        must_match: bool,
    ) -> Result<FullTextHits, MemoryError> {
        let terms = full_text_terms(text);
        if terms.is_empty() {
            return Ok(FullTextHits::default());
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
        // Every term weighs by how informative it is, those no memory contains at full
        // weight: a hit on a generic word of the query is a small share of it.
        let total = self.remembered_total().await?;
        let information = counted
            .iter()
            .map(|(_, matches)| inverse_document_frequency(total, *matches))
            .sum();
        let selected = select_terms(&counted, FULL_TEXT_BUDGET, must_match);
        let Some(expression) = match_any(&selected) else {
            return Ok(FullTextHits {
                hits: Vec::new(),
                information,
            });
        };
        let candidates = CANDIDATES_PER_LIST as i64;
        let conversation = audience.conversation();
        let rows = if memory_type.is_none() && conversation.is_none() {
            // FTS5 ranks and cuts on its own, then only the best rows are joined.
            sqlx::query!(
                r#"SELECT m.id, hits.rank AS "rank!: f64" FROM (
                     SELECT rowid, rank FROM memories_fts WHERE memories_fts MATCH ?1
                     ORDER BY rank LIMIT ?2
                 ) AS hits
                 JOIN memories m ON m.seq = hits.rowid
                 WHERE +m.forgotten = 0
                 ORDER BY hits.rank, m.seq"#,
                expression,
                candidates,
            )
            .fetch_all(&self.pool)
            .await
            .map(|rows| rows.into_iter().map(|row| (row.id, -row.rank)).collect())
        } else {
            sqlx::query!(
                r#"SELECT m.id, memories_fts.rank AS "rank!: f64" FROM memories_fts
                 JOIN memories m ON m.seq = memories_fts.rowid
                 WHERE memories_fts MATCH ?1 AND +m.forgotten = 0
                   AND (?2 IS NULL OR m.memory_type = ?2)
                   AND (?3 IS NULL OR m.channel_id = ?3)
                 ORDER BY memories_fts.rank, m.seq
                 LIMIT ?4"#,
                expression,
                memory_type,
                conversation,
                candidates,
            )
            .fetch_all(&self.pool)
            .await
            .map(|rows| rows.into_iter().map(|row| (row.id, -row.rank)).collect())
        }
        .map_err(MemoryError::database("full-text search"))?;
        Ok(FullTextHits {
            hits: rows,
            information,
        })
    }

    /// Remembered memories in all (for the terms' idf), counted once per store revision.
    async fn remembered_total(&self) -> Result<i64, MemoryError> {
        let generation = self.generation.load(Ordering::Acquire);
        if let Ok(cached) = self.remembered.lock()
            && let Some((at, total)) = *cached
            && at == generation
        {
            return Ok(total);
        }
        let total = sqlx::query_scalar!("SELECT count(*) FROM memories WHERE forgotten = 0")
            .fetch_one(&self.pool)
            .await
            .map_err(MemoryError::database("counting memories"))?;
        if let Ok(mut cached) = self.remembered.lock() {
            *cached = Some((generation, total));
        }
        Ok(total)
    }

    /// The most similar embeddings the audience may see, most similar first, with their
    /// similarity.
    pub(in crate::memory) async fn vector_hits(
        &self,
        vector: Vec<f32>,
        memory_type: Option<MemoryType>,
        audience: &Audience,
    ) -> Result<Vec<(String, f32)>, MemoryError> {
        let index = self.index.clone();
        let kind = memory_type.map(MemoryType::code);
        let conversation = audience.conversation().map(str::to_string);
        tokio::task::spawn_blocking(move || {
            let filter = Filter {
                kind,
                group: conversation.as_deref().map_or(Group::Any, Group::Named),
            };
            index
                .read()
                .map(|index| {
                    index
                        .search_filtered(&vector, CANDIDATES_PER_LIST, filter)
                        .into_iter()
                        .map(|hit| (hit.id.to_string(), hit.similarity))
                        .collect()
                })
                .unwrap_or_default()
        })
        .await
        .map_err(|error| MemoryError::Task(error.to_string()))
    }

    /// One hop over associations (both directions) from `starts`, strongest edges of the
    /// best starts first; remembered memories only, starts themselves excluded.
    pub(super) async fn walk(
        &self,
        starts: &[String],
    ) -> Result<Vec<(String, AssociationHop)>, MemoryError> {
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

    pub(super) async fn load_remembered(
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
}
