//! The bounded, deterministic view of the memory store that every channel turn's prompt
//! carries: the most important memories of each type with "shown of total" counts. No LLM
//! call; cached until the store changes.

use std::sync::atomic::Ordering;

use serde::Serialize;

use super::{MemoryError, MemoryStore, MemoryType};
use crate::prompts::{PromptError, Prompts};

/// Memories shown per type.
pub const PER_TYPE: usize = 5;
/// Characters shown of one memory; longer ones are cut with an ellipsis.
pub const MAXIMUM_ITEM_CHARS: usize = 300;
/// Characters of memory content shown in all; the least important items past it are dropped.
pub const MAXIMUM_TOTAL_CHARS: usize = 4000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemorySnapshot {
    /// Types that have at least one memory, in `MemoryType::ALL` order.
    pub sections: Vec<MemorySection>,
    /// Remembered memories in all.
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemorySection {
    pub memory_type: MemoryType,
    pub shown: Vec<String>,
    pub total: i64,
}

impl MemorySnapshot {
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The prompt text (template `memories`); empty when there is nothing to show.
    pub fn render(&self, prompts: &Prompts) -> Result<String, PromptError> {
        if self.is_empty() {
            return Ok(String::new());
        }
        prompts.render(
            "memories",
            minijinja::context! { sections => &self.sections, total => self.total },
        )
    }
}

impl MemoryStore {
    /// The snapshot the prompt shows: per type, the `PER_TYPE` most important memories
    /// (ties: most recently updated, then id), within `MAXIMUM_TOTAL_CHARS`.
    pub async fn snapshot(&self) -> Result<MemorySnapshot, MemoryError> {
        let generation = self.generation.load(Ordering::Acquire);
        if let Ok(cache) = self.render_cache.lock()
            && let Some((cached, snapshot)) = cache.as_ref()
            && *cached == generation
        {
            return Ok(snapshot.clone());
        }
        let counts = sqlx::query!(
            r#"SELECT memory_type AS "memory_type: MemoryType", count(*) AS "total!: i64"
               FROM memories WHERE forgotten = 0
               GROUP BY memory_type"#
        )
        .fetch_all(&self.pool)
        .await
        .map_err(MemoryError::database("counting memories"))?;
        let mut candidates: Vec<(MemoryType, usize, String)> = Vec::new();
        let mut totals = Vec::new();
        for memory_type in MemoryType::ALL {
            let total = counts
                .iter()
                .find(|row| row.memory_type == memory_type)
                .map_or(0, |row| row.total);
            if total == 0 {
                continue;
            }
            totals.push((memory_type, total));
            let shown = PER_TYPE as i64;
            let contents = sqlx::query_scalar!(
                "SELECT content FROM memories WHERE forgotten = 0 AND memory_type = ?
                 ORDER BY importance DESC, updated_at DESC, id LIMIT ?",
                memory_type,
                shown,
            )
            .fetch_all(&self.pool)
            .await
            .map_err(MemoryError::database("reading memories to show"))?;
            for (position, content) in contents.into_iter().enumerate() {
                candidates.push((memory_type, position, shorten(&content)));
            }
        }
        // Within the character budget, earlier positions of every type go first, so each
        // type keeps its most important memories when the budget is tight.
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by_key(|&number| {
            let (memory_type, position, _) = &candidates[number];
            let type_order = MemoryType::ALL
                .iter()
                .position(|candidate| candidate == memory_type)
                .unwrap_or(usize::MAX);
            (*position, type_order)
        });
        let mut budget = MAXIMUM_TOTAL_CHARS;
        let mut keep = vec![false; candidates.len()];
        for number in order {
            let length = candidates[number].2.chars().count();
            if length <= budget {
                budget -= length;
                keep[number] = true;
            }
        }
        let sections = totals
            .into_iter()
            .map(|(memory_type, total)| MemorySection {
                memory_type,
                shown: candidates
                    .iter()
                    .zip(&keep)
                    .filter(|((candidate_type, _, _), kept)| {
                        **kept && *candidate_type == memory_type
                    })
                    .map(|((_, _, content), _)| content.clone())
                    .collect(),
                total,
            })
            .collect::<Vec<_>>();
        let snapshot = MemorySnapshot {
            total: sections.iter().map(|section| section.total).sum(),
            sections,
        };
        if let Ok(mut cache) = self.render_cache.lock() {
            *cache = Some((generation, snapshot.clone()));
        }
        Ok(snapshot)
    }

    /// The rendered memory block for a channel prompt; empty when there are no memories or
    /// the store cannot be read (logged).
    pub async fn prompt_block(&self, prompts: &Prompts) -> String {
        let rendered = match self.snapshot().await {
            Ok(snapshot) => snapshot.render(prompts).map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        rendered.unwrap_or_else(|error| {
            tracing::error!(agent_id = %self.agent_id, %error, "cannot render memories for the prompt");
            String::new()
        })
    }
}

fn shorten(content: &str) -> String {
    let flat = content.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAXIMUM_ITEM_CHARS {
        return flat;
    }
    let mut cut: String = flat.chars().take(MAXIMUM_ITEM_CHARS - 1).collect();
    cut.push('…');
    cut
}
