//! The bounded, deterministic view of the memory store that every channel turn's prompt
//! carries: the most important memories of each type that the conversation's audience may
//! see, with "shown of total" counts; what non-owners said is quoted as data. No LLM call;
//! cached per audience until the store changes.

use std::sync::atomic::Ordering;

use serde::Serialize;

use super::{Audience, MemoryError, MemoryStore, MemoryType};
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
    /// What owners said (or saved), shown as memory.
    pub shown: Vec<String>,
    /// What non-owners said, shown quoted: data, never instructions.
    pub quoted: Vec<QuotedMemory>,
    pub total: i64,
}

/// A memory from a non-owner's input, as the prompt quotes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotedMemory {
    pub sender: Option<String>,
    pub content: String,
}

/// Audiences whose snapshots are cached at once; past it the cache starts over.
const CACHED_AUDIENCES: usize = 64;

impl MemorySnapshot {
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The prompt text (template `memories`); empty when there is nothing to show. Quoted
    /// memories go in a fenced block whose fence is longer than any run of backticks in
    /// them, so no content can close it.
    pub fn render(&self, prompts: &Prompts) -> Result<String, PromptError> {
        if self.is_empty() {
            return Ok(String::new());
        }
        let longest_run = self
            .sections
            .iter()
            .flat_map(|section| &section.quoted)
            .flat_map(|quoted| {
                [
                    quoted.content.as_str(),
                    quoted.sender.as_deref().unwrap_or(""),
                ]
            })
            .map(longest_backtick_run)
            .max()
            .unwrap_or(0);
        let fence = "`".repeat((longest_run + 1).max(3));
        prompts.render(
            "memories",
            minijinja::context! { sections => &self.sections, total => self.total, fence => fence },
        )
    }
}

impl MemoryStore {
    /// The snapshot the prompt shows `audience`: per type, the `PER_TYPE` most important
    /// memories it may see (ties: most recently updated, then id), within
    /// `MAXIMUM_TOTAL_CHARS`.
    pub async fn snapshot(&self, audience: &Audience) -> Result<MemorySnapshot, MemoryError> {
        let generation = self.generation.load(Ordering::Acquire);
        let key = audience.conversation().map(str::to_string);
        if let Ok(cache) = self.render_cache.lock()
            && let Some((cached, snapshot)) = cache.get(&key)
            && *cached == generation
        {
            return Ok(snapshot.clone());
        }
        let conversation = audience.conversation();
        let counts = sqlx::query!(
            r#"SELECT memory_type AS "memory_type: MemoryType", count(*) AS "total!: i64"
               FROM memories WHERE forgotten = 0 AND (?1 IS NULL OR channel_id = ?1)
               GROUP BY memory_type"#,
            conversation,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(MemoryError::database("counting memories"))?;
        let mut candidates: Vec<(MemoryType, usize, Shown)> = Vec::new();
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
            let rows = sqlx::query!(
                r#"SELECT content, sender, trusted AS "trusted: bool" FROM memories
                   WHERE forgotten = 0 AND memory_type = ?1 AND (?3 IS NULL OR channel_id = ?3)
                   ORDER BY importance DESC, updated_at DESC, id LIMIT ?2"#,
                memory_type,
                shown,
                conversation,
            )
            .fetch_all(&self.pool)
            .await
            .map_err(MemoryError::database("reading memories to show"))?;
            for (position, row) in rows.into_iter().enumerate() {
                let shown = Shown {
                    content: shorten(&row.content),
                    sender: row.sender.map(|sender| shorten(&sender)),
                    trusted: row.trusted,
                };
                candidates.push((memory_type, position, shown));
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
            let length = candidates[number].2.content.chars().count();
            if length <= budget {
                budget -= length;
                keep[number] = true;
            }
        }
        let sections = totals
            .into_iter()
            .map(|(memory_type, total)| {
                let kept: Vec<&Shown> = candidates
                    .iter()
                    .zip(&keep)
                    .filter(|((candidate_type, _, _), kept)| {
                        **kept && *candidate_type == memory_type
                    })
                    .map(|((_, _, shown), _)| shown)
                    .collect();
                MemorySection {
                    memory_type,
                    shown: kept
                        .iter()
                        .filter(|shown| shown.trusted)
                        .map(|shown| shown.content.clone())
                        .collect(),
                    quoted: kept
                        .iter()
                        .filter(|shown| !shown.trusted)
                        .map(|shown| QuotedMemory {
                            sender: shown.sender.clone(),
                            content: shown.content.clone(),
                        })
                        .collect(),
                    total,
                }
            })
            .collect::<Vec<_>>();
        let snapshot = MemorySnapshot {
            total: sections.iter().map(|section| section.total).sum(),
            sections,
        };
        if let Ok(mut cache) = self.render_cache.lock() {
            if cache.len() >= CACHED_AUDIENCES {
                cache.clear();
            }
            cache.insert(key, (generation, snapshot.clone()));
        }
        Ok(snapshot)
    }

    /// The rendered memory block for a channel prompt whose readers are `audience`; empty
    /// when there are no memories or the store cannot be read (logged).
    pub async fn prompt_block(&self, prompts: &Prompts, audience: &Audience) -> String {
        let rendered = match self.snapshot(audience).await {
            Ok(snapshot) => snapshot.render(prompts).map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        rendered.unwrap_or_else(|error| {
            tracing::error!(agent_id = %self.agent_id, %error, "cannot render memories for the prompt");
            String::new()
        })
    }
}

/// A candidate for the prompt, before the character budget.
struct Shown {
    content: String,
    sender: Option<String>,
    trusted: bool,
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|character| character != '`')
        .map(str::len)
        .max()
        .unwrap_or(0)
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
