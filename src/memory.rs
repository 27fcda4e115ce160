//! An agent's long-term memory: typed memories and weighted associations in its SQLite
//! database, recalled by full-text rank, embedding similarity and a shallow association walk,
//! fused with reciprocal rank fusion. See `store.rs` and `store/` for the operations.

mod base64;
pub mod embedder;
pub mod index;
mod maintenance;
mod render;
pub mod search;
mod store;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use embedder::{EmbedError, Embedder, EmbedderStatus};
pub use maintenance::MaintenanceReport;
pub use render::{MemorySection, MemorySnapshot, QuotedMemory};
pub use store::{
    ImportReport, MAXIMUM_RESULTS as MAXIMUM_RECALL_RESULTS, MemoryRecord, MemoryStore,
    PAGE as IMPORT_BATCH, RecordAssociation,
};

/// What kind of thing a memory records. Each kind has a default importance.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
)]
#[sqlx(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum MemoryType {
    Fact,
    Preference,
    Decision,
    Identity,
    Event,
    Observation,
    Goal,
    Todo,
}

impl MemoryType {
    /// Every type, in the order the prompt render shows them.
    pub const ALL: [MemoryType; 8] = [
        MemoryType::Identity,
        MemoryType::Goal,
        MemoryType::Preference,
        MemoryType::Decision,
        MemoryType::Fact,
        MemoryType::Todo,
        MemoryType::Event,
        MemoryType::Observation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemoryType::Fact => "fact",
            MemoryType::Preference => "preference",
            MemoryType::Decision => "decision",
            MemoryType::Identity => "identity",
            MemoryType::Event => "event",
            MemoryType::Observation => "observation",
            MemoryType::Goal => "goal",
            MemoryType::Todo => "todo",
        }
    }

    /// The importance a memory gets when its saver gives none.
    pub fn default_importance(self) -> f64 {
        match self {
            MemoryType::Identity => 1.0,
            MemoryType::Goal => 0.8,
            MemoryType::Decision => 0.75,
            MemoryType::Preference => 0.7,
            MemoryType::Fact => 0.6,
            MemoryType::Todo => 0.6,
            MemoryType::Event => 0.5,
            MemoryType::Observation => 0.4,
        }
    }

    /// A compact code, used by the vector index to filter by type while scanning.
    pub(crate) fn code(self) -> u8 {
        match self {
            MemoryType::Fact => 0,
            MemoryType::Preference => 1,
            MemoryType::Decision => 2,
            MemoryType::Identity => 3,
            MemoryType::Event => 4,
            MemoryType::Observation => 5,
            MemoryType::Goal => 6,
            MemoryType::Todo => 7,
        }
    }
}

impl fmt::Display for MemoryType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for MemoryType {
    type Err = MemoryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        MemoryType::ALL
            .into_iter()
            .find(|memory_type| memory_type.as_str() == text.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                MemoryError::Invalid(format!(
                    "unknown memory type `{text}`; types: {}",
                    MemoryType::ALL.map(MemoryType::as_str).join(", ")
                ))
            })
    }
}

/// How two memories relate. An association points from its source to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    RelatedTo,
    /// The source replaces or refines the target.
    Updates,
    Contradicts,
    CausedBy,
    PartOf,
}

impl Relation {
    pub const ALL: [Relation; 5] = [
        Relation::RelatedTo,
        Relation::Updates,
        Relation::Contradicts,
        Relation::CausedBy,
        Relation::PartOf,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Relation::RelatedTo => "related_to",
            Relation::Updates => "updates",
            Relation::Contradicts => "contradicts",
            Relation::CausedBy => "caused_by",
            Relation::PartOf => "part_of",
        }
    }
}

/// How `recall` orders what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecallMode {
    /// Full-text and vector ranks plus the association walk, fused with RRF.
    #[default]
    Hybrid,
    /// Most recently updated first (among the query's matches, or all when it is empty).
    Recent,
    /// Most important first (among the query's matches, or all when it is empty).
    Important,
}

impl FromStr for RecallMode {
    type Err = MemoryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "hybrid" => Ok(RecallMode::Hybrid),
            "recent" => Ok(RecallMode::Recent),
            "important" => Ok(RecallMode::Important),
            other => Err(MemoryError::Invalid(format!(
                "unknown recall mode `{other}`; modes: hybrid, recent, important"
            ))),
        }
    }
}

/// A remembered (not forgotten) memory as callers see it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Memory {
    pub id: String,
    pub content: String,
    pub memory_type: MemoryType,
    pub importance: f64,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub last_accessed_at: i64,
    pub access_count: i64,
    pub source: String,
    /// The conversation it was said in (its origin), if any.
    pub channel_id: Option<String>,
    /// Who said it there (a platform user id or display name), if known.
    pub sender: Option<String>,
    /// Said by an owner (or saved through the API or CLI). A memory from anyone else's input
    /// is data someone said, shown quoted and never followed as an instruction.
    pub trusted: bool,
}

/// Where a memory came from: the conversation, the sender, and whether an owner said it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub conversation_id: Option<String>,
    pub sender: Option<String>,
    pub trusted: bool,
}

impl Origin {
    /// Saved by an owner outside any conversation (the API, the CLI): trusted.
    pub fn owner() -> Self {
        Self {
            conversation_id: None,
            sender: None,
            trusted: true,
        }
    }

    /// Said in `conversation_id`, by `sender`, an owner when `trusted`.
    pub fn conversation(
        conversation_id: impl Into<String>,
        sender: Option<String>,
        trusted: bool,
    ) -> Self {
        Self {
            conversation_id: Some(conversation_id.into()),
            sender,
            trusted,
        }
    }
}

/// Who will read what memory returns: the participants of the conversation it is for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Audience {
    /// Only owners (a DM with the owner, the API, the CLI): every memory.
    #[default]
    Everything,
    /// A conversation with anyone else: only memories that came from this conversation, so
    /// nothing said elsewhere (the owner's DMs above all) is shown to its participants.
    Conversation(String),
}

impl Audience {
    /// Whether a memory of this origin may be shown to this audience.
    pub fn admits(&self, origin_conversation: Option<&str>) -> bool {
        match self {
            Audience::Everything => true,
            Audience::Conversation(conversation) => {
                origin_conversation == Some(conversation.as_str())
            }
        }
    }

    /// The conversation memories must come from, or `None` for every memory.
    pub fn conversation(&self) -> Option<&str> {
        match self {
            Audience::Everything => None,
            Audience::Conversation(conversation) => Some(conversation),
        }
    }
}

/// A memory to save.
#[derive(Debug, Clone)]
pub struct NewMemory {
    pub content: String,
    pub memory_type: MemoryType,
    /// 0..=1; the type's default when `None`.
    pub importance: Option<f64>,
    /// Who saves it: `branch:{id}`, `api`, `cli`, ...
    pub source: String,
    /// Where it was said and by whom.
    pub origin: Origin,
    pub associations: Vec<NewAssociation>,
}

impl NewMemory {
    pub fn new(
        content: impl Into<String>,
        memory_type: MemoryType,
        source: impl Into<String>,
    ) -> Self {
        Self {
            content: content.into(),
            memory_type,
            importance: None,
            source: source.into(),
            origin: Origin::owner(),
            associations: Vec::new(),
        }
    }
}

/// An edge from a memory being saved to an existing one.
#[derive(Debug, Clone, Deserialize)]
pub struct NewAssociation {
    pub target_id: String,
    pub relation: Relation,
    /// 0..=1, default 0.5.
    #[serde(default)]
    pub weight: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Association {
    pub source_id: String,
    pub target_id: String,
    pub relation: Relation,
    pub weight: f64,
}

/// What `save` did.
#[derive(Debug, Clone, Serialize)]
pub struct SaveOutcome {
    pub memory: Memory,
    /// A near-duplicate existed and was updated instead of adding a memory.
    pub merged: bool,
    /// The memory has an embedding (false when no embedder was available).
    pub embedded: bool,
}

/// What to recall.
#[derive(Debug, Clone)]
pub struct RecallQuery {
    pub text: String,
    pub max_results: usize,
    pub memory_type: Option<MemoryType>,
    pub mode: RecallMode,
    /// Who reads the result: only memories this audience may see are recalled.
    pub audience: Audience,
}

impl RecallQuery {
    pub fn new(text: impl Into<String>, max_results: usize) -> Self {
        Self {
            text: text.into(),
            max_results,
            memory_type: None,
            mode: RecallMode::Hybrid,
            audience: Audience::Everything,
        }
    }
}

/// One recalled memory with how it was found.
#[derive(Debug, Clone, Serialize)]
pub struct RecalledMemory {
    #[serde(flatten)]
    pub memory: Memory,
    /// The hybrid score: similarity plus the full-text share and small recency and
    /// importance terms (0 when browsing without a query).
    pub score: f64,
    /// Cosine similarity with the query, when both have an embedding.
    pub similarity: Option<f32>,
    /// 1-based rank in the full-text (BM25) list, if it was in it.
    pub full_text_rank: Option<usize>,
    /// 1-based rank in the vector (cosine) list, if it was in it.
    pub vector_rank: Option<usize>,
    /// Reached by the association walk: from which memory, over which relation.
    pub via: Option<AssociationHop>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssociationHop {
    pub from: String,
    pub relation: Relation,
    pub weight: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecallResult {
    pub memories: Vec<RecalledMemory>,
    /// True when no query embedding was available and only full text was searched.
    pub full_text_only: bool,
}

/// How `list` orders memories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListOrder {
    #[default]
    Recent,
    Important,
}

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("memory store: {context}: {source}")]
    Database {
        context: &'static str,
        source: sqlx::Error,
    },
    #[error("no memory `{0}` (it may have been forgotten)")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("memory task failed: {0}")]
    Task(String),
}

impl MemoryError {
    pub(crate) fn database(context: &'static str) -> impl FnOnce(sqlx::Error) -> MemoryError {
        move |source| MemoryError::Database { context, source }
    }
}
