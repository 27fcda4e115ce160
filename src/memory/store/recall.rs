//! Recall: candidates from full text (BM25) and from vectors scored on one scale (similarity
//! plus the share of the query's information the words match, with recency and importance as
//! small features; see `search.rs`), a shallow walk over the associations of the best hits,
//! the audience filter, and the access counts recalls record.

use std::collections::HashMap;

use super::lists::FullTextHits;
use super::{
    ACCESS_FLUSH_AT, MAXIMUM_RESULTS, MINIMUM_SIMILARITY, MemoryStore, NEAR_DUPLICATE_SIMILARITY,
    WALK_FROM,
};
use crate::database::now_millis;
use crate::memory::index::normalize;
use crate::memory::search::{Signals, WALK_SHARE, full_text_strength, hybrid_score};

/// The best candidates compared with each other for updates.
const SUPERSEDE_WINDOW: usize = 20;
/// Two memories at least this similar are about the same thing: the newer updates the older.
/// (Near-duplicates, 0.95 and more, are merged when saved: repeats, not updates.)
const SAME_THING_SIMILARITY: f32 = 0.5;
use crate::memory::{
    AssociationHop, ListOrder, Memory, MemoryError, RecallMode, RecallQuery, RecallResult,
    RecalledMemory,
};

/// What the two lists found of one memory.
#[derive(Default)]
struct Found {
    full_text_rank: Option<usize>,
    strength: f64,
    vector_rank: Option<usize>,
    similarity: Option<f32>,
}

/// One candidate while it is scored.
struct Candidate {
    memory: Memory,
    signals: Signals,
    full_text_rank: Option<usize>,
    vector_rank: Option<usize>,
    via: Option<AssociationHop>,
    score: f64,
}

impl MemoryStore {
    /// Finds memories for `query`, embedding its text when an embedder is available (a
    /// repeated query's embedding comes from the embedder's cache).
    pub async fn recall(&self, query: &RecallQuery) -> Result<RecallResult, MemoryError> {
        let wants_vector = !query.text.trim().is_empty() && self.indexed() > 0;
        let embedding = if wants_vector && self.embedder.is_available() {
            match self.embedder.embed_query(query.text.trim()).await {
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
            let (memories, _) = self
                .list_for(&query.audience, query.memory_type, order, limit, 0)
                .await?;
            let memories = memories
                .into_iter()
                .map(|memory| RecalledMemory {
                    memory,
                    score: 0.0,
                    similarity: None,
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
        // A hybrid recall scores in full only as many candidates as it may return, plus those
        // it compares for updates; the other modes re-sort every match.
        let keep = match query.mode {
            RecallMode::Hybrid => limit + SUPERSEDE_WINDOW + 10,
            RecallMode::Recent | RecallMode::Important => usize::MAX,
        };
        let must_match = embedding.is_none();
        let embedding = embedding.map(|mut vector| {
            normalize(&mut vector);
            vector
        });
        let vector_search = async {
            match &embedding {
                Some(vector) => {
                    self.vector_hits(vector.clone(), query.memory_type, &query.audience)
                        .await
                }
                None => Ok(Vec::new()),
            }
        };
        let (full_text, vector) = tokio::join!(
            self.full_text_hits(text, query.memory_type, &query.audience, must_match),
            vector_search
        );
        let (full_text, vector) = (full_text?, vector?);
        let mut candidates = self
            .candidates(query, &full_text, &vector, embedding.as_deref(), keep)
            .await?;

        // One hop over the associations of the best few.
        let strong: Vec<String> = candidates
            .iter()
            .take(WALK_FROM)
            .map(|candidate| candidate.memory.id.clone())
            .collect();
        let start_scores: HashMap<String, f64> = candidates
            .iter()
            .take(WALK_FROM)
            .map(|candidate| (candidate.memory.id.clone(), candidate.score))
            .collect();
        let hops: Vec<(String, AssociationHop)> = self
            .walk(&strong)
            .await?
            .into_iter()
            .filter(|(id, _)| {
                !candidates
                    .iter()
                    .any(|candidate| &candidate.memory.id == id)
            })
            .collect();
        if !hops.is_empty() {
            let ids: Vec<String> = hops.iter().map(|(id, _)| id.clone()).collect();
            let mut rows = self.load_remembered(&ids).await?;
            for (id, hop) in hops {
                let Some(memory) = rows.remove(&id) else {
                    continue;
                };
                if !admitted(query, &memory) {
                    continue;
                }
                let start = start_scores.get(&hop.from).copied().unwrap_or(0.0);
                candidates.push(Candidate {
                    memory,
                    signals: Signals::default(),
                    full_text_rank: None,
                    vector_rank: None,
                    score: start * WALK_SHARE * hop.weight,
                    via: Some(hop),
                });
            }
            sort_by_score(&mut candidates);
        }

        match query.mode {
            RecallMode::Hybrid => {}
            RecallMode::Recent => candidates.sort_by(|left, right| {
                right
                    .memory
                    .updated_at
                    .cmp(&left.memory.updated_at)
                    .then_with(|| left.memory.id.cmp(&right.memory.id))
            }),
            RecallMode::Important => candidates.sort_by(|left, right| {
                right
                    .memory
                    .importance
                    .total_cmp(&left.memory.importance)
                    .then_with(|| right.score.total_cmp(&left.score))
                    .then_with(|| left.memory.id.cmp(&right.memory.id))
            }),
        }
        candidates.truncate(limit);
        let result = RecallResult {
            memories: candidates
                .into_iter()
                .map(|candidate| RecalledMemory {
                    memory: candidate.memory,
                    score: candidate.score,
                    similarity: candidate.signals.similarity,
                    full_text_rank: candidate.full_text_rank,
                    vector_rank: candidate.vector_rank,
                    via: candidate.via,
                })
                .collect(),
            full_text_only,
        };
        self.touch(&result).await?;
        Ok(result)
    }

    /// The full-text and vector hits as scored candidates that the query admits, best first.
    async fn candidates(
        &self,
        query: &RecallQuery,
        full_text: &FullTextHits,
        vector: &[(String, f32)],
        embedding: Option<&[f32]>,
        keep: usize,
    ) -> Result<Vec<Candidate>, MemoryError> {
        let mut found: HashMap<&str, Found> = HashMap::new();
        for (position, (id, bm25)) in full_text.hits.iter().enumerate() {
            let entry = found.entry(id).or_default();
            entry.full_text_rank = Some(position + 1);
            entry.strength = full_text_strength(*bm25, full_text.information);
        }
        for (position, (id, similarity)) in vector.iter().enumerate() {
            let entry = found.entry(id).or_default();
            entry.vector_rank = Some(position + 1);
            entry.similarity = Some(*similarity);
        }
        // Full-text hits the vector list did not reach still have a similarity.
        if let Some(embedding) = embedding
            && let Ok(index) = self.index.read()
        {
            for (id, entry) in found.iter_mut() {
                if entry.similarity.is_none() {
                    entry.similarity = index.similarity(id, embedding);
                }
            }
        }
        // A hit by meaning alone below the floor is noise. Of the rest, only the best `keep`
        // by similarity and words are read from the database: importance and recency only
        // separate near-ties, and loading rows is most of a recall's time on a large store.
        let mut found: Vec<(&str, Found)> = found
            .into_iter()
            .filter(|(_, entry)| {
                entry.full_text_rank.is_some()
                    || entry
                        .similarity
                        .is_some_and(|similarity| similarity >= MINIMUM_SIMILARITY)
            })
            .collect();
        let preliminary = |entry: &Found| {
            hybrid_score(&Signals {
                similarity: entry.similarity,
                full_text: entry.strength,
                importance: 0.5,
                ..Signals::default()
            })
        };
        found.sort_by(|left, right| {
            preliminary(&right.1)
                .total_cmp(&preliminary(&left.1))
                .then_with(|| left.0.cmp(right.0))
        });
        found.truncate(keep);
        let ids: Vec<String> = found.iter().map(|(id, _)| id.to_string()).collect();
        let mut rows = self.load_remembered(&ids).await?;
        let mut candidates: Vec<Candidate> = Vec::with_capacity(found.len());
        for (id, entry) in found {
            let Found {
                full_text_rank,
                strength,
                vector_rank,
                similarity,
            } = entry;
            let Some(memory) = rows.remove(id) else {
                continue;
            };
            if !admitted(query, &memory) {
                continue;
            }
            candidates.push(Candidate {
                memory,
                signals: Signals {
                    similarity,
                    full_text: strength,
                    recency: 0.0,
                    importance: 0.0,
                },
                full_text_rank,
                // Only hits above the floor count as found by meaning.
                vector_rank: vector_rank.filter(|_| {
                    similarity.is_some_and(|similarity| similarity >= MINIMUM_SIMILARITY)
                }),
                via: None,
                score: 0.0,
            });
        }
        for candidate in candidates.iter_mut() {
            candidate.signals.importance = candidate.memory.importance;
            candidate.score = hybrid_score(&candidate.signals);
        }
        sort_by_score(&mut candidates);
        // Among the best, a memory newer than one about the same thing (an update of it)
        // gets the recency term; the rest of the timeline does not reorder anything.
        if let Ok(index) = self.index.read() {
            let window = candidates.len().min(SUPERSEDE_WINDOW);
            for newer in 0..window {
                let updates = (0..window).any(|older| {
                    older != newer
                        && candidates[older].memory.updated_at < candidates[newer].memory.updated_at
                        && index
                            .pair_similarity(
                                &candidates[older].memory.id,
                                &candidates[newer].memory.id,
                            )
                            .is_some_and(|similarity| {
                                (SAME_THING_SIMILARITY..NEAR_DUPLICATE_SIMILARITY)
                                    .contains(&similarity)
                            })
                });
                if updates {
                    candidates[newer].signals.recency = 1.0;
                    candidates[newer].score = hybrid_score(&candidates[newer].signals);
                }
            }
        }
        sort_by_score(&mut candidates);
        Ok(candidates)
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

/// Whether a loaded memory passes the query's type filter and audience.
fn admitted(query: &RecallQuery, memory: &Memory) -> bool {
    query
        .memory_type
        .is_none_or(|wanted| memory.memory_type == wanted)
        && query.audience.admits(memory.channel_id.as_deref())
}

/// Best first; ties go to meaning (the higher similarity), then to the id.
fn sort_by_score(candidates: &mut [Candidate]) {
    candidates.sort_by(|left, right| {
        right
            .score
            .total_cmp(&left.score)
            .then_with(|| {
                let similarity =
                    |candidate: &Candidate| candidate.signals.similarity.unwrap_or(-1.0);
                similarity(right).total_cmp(&similarity(left))
            })
            .then_with(|| left.memory.id.cmp(&right.memory.id))
    });
}
