//! `channel_recall`: search the conversation's full transcript with the same hybrid scoring
//! as memory recall: the meaning of each candidate message (embedded on the fly) and the
//! share of the query's information its words match, each word weighed by how rare it is in
//! the transcript.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::conversation::ConversationStore;
use crate::memory::Embedder;
use crate::memory::search::{
    Signals, full_text_terms, hybrid_score, inverse_document_frequency, words_share,
};

const DEFAULT_RESULTS: usize = 10;
const MAXIMUM_RESULTS: usize = 50;
/// The newest messages are candidates whatever their words (found by meaning).
const RECENT_CANDIDATES: usize = 60;
/// Candidates scored per search, at most.
const MAXIMUM_CANDIDATES: usize = 150;
/// A message neither sharing a word nor this close in meaning is not a match.
const MINIMUM_SIMILARITY: f32 = 0.2;

pub struct ChannelRecall {
    store: ConversationStore,
    embedder: Arc<Embedder>,
}

impl ChannelRecall {
    pub fn new(store: ConversationStore, embedder: Arc<Embedder>) -> Self {
        Self { store, embedder }
    }

    /// Embeds the query and the messages, or `None` (words only) without a working embedder.
    async fn embeddings(
        &self,
        query: &str,
        texts: Vec<String>,
    ) -> Option<(Vec<f32>, Vec<Vec<f32>>)> {
        if !self.embedder.is_available() || texts.is_empty() {
            return None;
        }
        let query = match self.embedder.embed_query(query).await {
            Ok(vector) => vector,
            Err(error) => {
                tracing::warn!(%error, "transcript search falls back to words");
                return None;
            }
        };
        match self.embedder.embed(texts).await {
            Ok(vectors) => Some((query, vectors)),
            Err(error) => {
                tracing::warn!(%error, "transcript search falls back to words");
                None
            }
        }
    }
}

#[derive(Deserialize)]
pub struct Arguments {
    query: String,
    #[serde(default)]
    max_results: Option<usize>,
}

impl<Effect: Send + 'static> Tool<Effect> for ChannelRecall {
    type Arguments = Arguments;
    const NAME: &'static str = "channel_recall";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/channel_recall.md.j2");

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look for, in plain words."},
                "max_results": {"type": "integer", "minimum": 1, "maximum": MAXIMUM_RESULTS}
            },
            "required": ["query"]
        })
    }

    async fn call(&self, call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        let query = arguments.query.trim();
        if query.is_empty() {
            return ToolOutput::error("`query` is empty");
        }
        let limit = arguments
            .max_results
            .unwrap_or(DEFAULT_RESULTS)
            .clamp(1, MAXIMUM_RESULTS);
        let terms = full_text_terms(query);
        let words: Vec<&str> = terms.iter().map(String::as_str).collect();
        let (messages, total, counts) = match self
            .store
            .transcript_candidates(
                call.conversation.as_str(),
                &words,
                RECENT_CANDIDATES,
                MAXIMUM_CANDIDATES,
            )
            .await
        {
            Ok(found) => found,
            Err(error) => return ToolOutput::error(format!("search failed: {error}")),
        };
        let weighted: Vec<(String, f64)> = terms
            .iter()
            .zip(&counts)
            .map(|(term, matches)| (term.clone(), inverse_document_frequency(total, *matches)))
            .collect();
        let texts = messages
            .iter()
            .map(|message| message.content.clone())
            .collect();
        let embeddings = self.embeddings(query, texts).await;
        let mut scored: Vec<(f64, usize)> = Vec::new();
        for (number, message) in messages.iter().enumerate() {
            let share = words_share(&message.content, &weighted);
            let similarity = embeddings.as_ref().and_then(|(query, vectors)| {
                vectors
                    .get(number)
                    .map(|vector| crate::memory::index::dot(query, vector))
            });
            let related = share > 0.0
                || similarity.is_some_and(|similarity| similarity >= MINIMUM_SIMILARITY);
            if related {
                let signals = Signals {
                    similarity,
                    full_text: share,
                    importance: 0.5,
                    ..Signals::default()
                };
                scored.push((hybrid_score(&signals), number));
            }
        }
        // Best first; ties go to the newer message.
        scored.sort_by(|left, right| right.0.total_cmp(&left.0).then(left.1.cmp(&right.1)));
        scored.truncate(limit);
        if scored.is_empty() {
            return ToolOutput::success("no matching messages");
        }
        ToolOutput::success(
            scored
                .iter()
                .map(|(_, number)| {
                    let message = &messages[*number];
                    let time = chrono::DateTime::from_timestamp_millis(message.created_at)
                        .map(|time| time.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_default();
                    format!("[{time}] {}: {}", message.sender, message.content)
                })
                .collect::<Vec<_>>()
                .join("\n"),
        )
    }
}
