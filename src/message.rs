//! What crosses the daemon's edge: a message a person sent on its way in, an answer on its way
//! out, and the `Outbox` through which an agent sends answers without knowing the platforms.

pub mod emoji;

use serde::{Deserialize, Serialize};

use crate::conversation_id::ConversationId;

/// How far a message's sender may make the agent act. A turn answering several messages acts
/// with the weakest of their authorities.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, sqlx::Type,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(rename_all = "lowercase")]
pub enum Authority {
    /// Someone the owner did not name, in a group the owner allowed: may chat.
    Guest,
    /// Someone the owner named or approved: may chat, and have the agent recall and think.
    Member,
    /// The owner, whoever holds the API, or a job they scheduled: may make the agent act
    /// (start workers, schedule jobs, change memories).
    Owner,
}

impl Authority {
    pub fn as_str(self) -> &'static str {
        match self {
            Authority::Guest => "guest",
            Authority::Member => "member",
            Authority::Owner => "owner",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Authority::Guest, Authority::Member, Authority::Owner]
            .into_iter()
            .find(|authority| authority.as_str() == text)
    }

    /// Whether tools that act (not only talk, recall or think) may run for it.
    pub fn may_act(self) -> bool {
        self == Authority::Owner
    }
}

/// On whose behalf a turn, and the branches and workers it starts, work: the weakest authority
/// of the messages it answers, and whether only owners read the conversation (a direct one
/// with an owner, the API, a scheduled job), so that anything the agent remembers may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub authority: Authority,
    pub private: bool,
}

impl Standing {
    /// The owner, in private.
    pub const OWNER: Standing = Standing {
        authority: Authority::Owner,
        private: true,
    };

    /// The weaker of two standings (a turn answering both works for the weaker).
    pub fn weakest(self, other: Standing) -> Standing {
        Standing {
            authority: self.authority.min(other.authority),
            private: self.private && other.private,
        }
    }
}

/// A message a person (or a scheduled job) sent, on its way to an agent.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    /// Our id for the message (uuid v7), assigned where it entered the daemon.
    pub id: String,
    pub conversation: ConversationId,
    /// The agent it is addressed to, when the sender chose one (the HTTP API names it in the
    /// URL); otherwise the router picks by `[[bindings]]`.
    pub agent: Option<String>,
    /// The sender's display name.
    pub sender: String,
    /// The sender's stable platform id (`telegram:123456789`, `discord:80351110224678912`,
    /// `slack:U024BE7LH`); `None` for the HTTP API and scheduled jobs.
    pub sender_id: Option<String>,
    /// What the sender may make the agent do: set by the router from the access lists (the
    /// adapters leave the weakest), by a scheduled job to its creator's.
    pub authority: Authority,
    pub content: String,
    /// The platform's own id, when it has one: storing is idempotent on it, and the answer
    /// is threaded under it.
    pub platform_message_id: Option<String>,
    /// The message mentions the bot (or replies to it).
    pub mentions_bot: bool,
    /// A direct message: one person and the bot.
    pub is_direct: bool,
    /// For a Discord thread, the channel it belongs to (`[[bindings]]` `channel_ids` match
    /// either).
    pub thread_parent: Option<String>,
    /// Files sent with the message (a photo, a document, a voice note), already fetched from
    /// the platform. A message may have only attachments and no text.
    pub attachments: Vec<InboundAttachment>,
}

impl InboundMessage {
    pub fn new(
        conversation: ConversationId,
        sender: impl Into<String>,
        content: impl Into<String>,
    ) -> Self {
        Self {
            id: new_message_id(),
            conversation,
            agent: None,
            sender: sender.into(),
            sender_id: None,
            authority: Authority::Guest,
            content: content.into(),
            platform_message_id: None,
            mentions_bot: false,
            is_direct: true,
            thread_parent: None,
            attachments: Vec::new(),
        }
    }
}

/// A file sent with a message, as the platform gave it.
#[derive(Debug, Clone)]
pub struct InboundAttachment {
    /// The file name the sender's client gave (or one made up from its type).
    pub name: String,
    /// Its MIME type (`image/png`, `application/pdf`, `audio/ogg`), as the platform said or
    /// as guessed from the name.
    pub media_type: String,
    pub body: AttachmentBody,
}

/// What arrived of an attachment.
#[derive(Debug, Clone)]
pub enum AttachmentBody {
    /// The whole file.
    Bytes(Vec<u8>),
    /// Not fetched: larger than the configured limit (`[media] max_file_mb`).
    TooLarge { size: u64, limit: u64 },
    /// The platform would not hand the file over (it said why); the message still counts.
    Unavailable { size: u64, reason: String },
}

/// Fetches a file into memory, refusing it once it grows past `limit` bytes (a platform's
/// stated size is not trusted alone).
pub async fn collect_capped<E: std::fmt::Display>(
    mut chunks: impl futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    limit: u64,
) -> Result<Result<Vec<u8>, u64>, String> {
    use futures::StreamExt;
    let mut collected = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| error.to_string())?;
        collected.extend_from_slice(&chunk);
        if collected.len() as u64 > limit {
            return Ok(Err(collected.len() as u64));
        }
    }
    Ok(Ok(collected))
}

impl InboundAttachment {
    pub fn bytes(
        name: impl Into<String>,
        media_type: impl Into<String>,
        bytes: Vec<u8>,
    ) -> InboundAttachment {
        let name = name.into();
        let media_type = media_type.into();
        let media_type = if media_type.is_empty() {
            media_type_of(&name).to_string()
        } else {
            media_type
        };
        InboundAttachment {
            name,
            media_type,
            body: AttachmentBody::Bytes(bytes),
        }
    }

    /// The size of the file, fetched or not.
    pub fn size(&self) -> u64 {
        match &self.body {
            AttachmentBody::Bytes(bytes) => bytes.len() as u64,
            AttachmentBody::TooLarge { size, .. } | AttachmentBody::Unavailable { size, .. } => {
                *size
            }
        }
    }

    pub fn kind(&self) -> AttachmentKind {
        AttachmentKind::of(&self.media_type, &self.name)
    }
}

/// What an attachment is, which decides how the model gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(rename_all = "lowercase")]
pub enum AttachmentKind {
    /// A photo or picture: shown to vision-capable models.
    Image,
    /// A voice note or audio file: transcribed when a transcriber is configured.
    Audio,
    /// Text, Markdown, CSV, source code or PDF: its text is given to the model.
    Document,
    /// Anything else: the model is told where it is stored.
    File,
}

impl AttachmentKind {
    pub fn of(media_type: &str, name: &str) -> AttachmentKind {
        let media_type = media_type.to_ascii_lowercase();
        let media_type = if media_type.is_empty() || media_type == "application/octet-stream" {
            media_type_of(name).to_string()
        } else {
            media_type
        };
        if media_type.starts_with("image/") {
            AttachmentKind::Image
        } else if media_type.starts_with("audio/") {
            AttachmentKind::Audio
        } else if media_type.starts_with("text/")
            || media_type == "application/pdf"
            || media_type == "application/json"
            || media_type == "application/xml"
            || media_type == "application/toml"
            || media_type == "application/x-yaml"
            || media_type == "application/javascript"
            || media_type_of(name).starts_with("text/")
        {
            AttachmentKind::Document
        } else {
            AttachmentKind::File
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentKind::Image => "image",
            AttachmentKind::Audio => "audio",
            AttachmentKind::Document => "document",
            AttachmentKind::File => "file",
        }
    }
}

/// The MIME type a file name suggests; `application/octet-stream` when it suggests none.
pub fn media_type_of(name: &str) -> &'static str {
    let extension = name
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "wav" => "audio/wav",
        "webm" => "audio/webm",
        "flac" => "audio/flac",
        "pdf" => "application/pdf",
        "md" | "markdown" => "text/markdown",
        "csv" => "text/csv",
        "txt" | "log" => "text/plain",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "xml" => "application/xml",
        "toml" | "yaml" | "yml" | "ini" | "cfg" | "conf" | "rs" | "py" | "js" | "ts" | "tsx"
        | "jsx" | "go" | "c" | "h" | "cpp" | "hpp" | "cc" | "java" | "kt" | "rb" | "php" | "sh"
        | "bash" | "zsh" | "sql" | "css" | "scss" | "swift" | "cs" | "lua" | "r" | "scala"
        | "hs" | "ex" | "exs" | "erl" | "clj" | "vue" | "svelte" | "tex" | "diff" | "patch" => {
            "text/plain"
        }
        _ => "application/octet-stream",
    }
}

/// A fresh, time-ordered message id.
pub fn new_message_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What a turn sends back to its conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboundContent {
    Text {
        text: String,
    },
    /// The agent chose not to answer: platforms send nothing, waiting API callers are released.
    Skip,
    /// The turn failed: people read `text` (an apology with the cause), a scheduled run
    /// records `error`.
    Failed {
        error: String,
        text: String,
    },
}

impl OutboundContent {
    /// What people read, if anything is sent.
    pub fn text(&self) -> Option<&str> {
        match self {
            OutboundContent::Text { text } | OutboundContent::Failed { text, .. } => Some(text),
            OutboundContent::Skip => None,
        }
    }
}

/// Tokens spent, split the way providers price them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenUsage {
    /// Input tokens read fresh (not from a prompt cache).
    pub input: u64,
    pub output: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write: u64,
}

impl TokenUsage {
    /// Every token of the call, cached or not.
    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_read + self.cache_write
    }

    /// All input tokens, cached or not.
    pub fn prompt(&self) -> u64 {
        self.input + self.cache_read + self.cache_write
    }

    pub fn add(&mut self, other: &TokenUsage) {
        self.input += other.input;
        self.output += other.output;
        self.cache_read += other.cache_read;
        self.cache_write += other.cache_write;
    }
}

/// An answer (or a message sent outside any turn) with where it goes.
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub agent_id: String,
    pub conversation: ConversationId,
    /// Our ids of the messages it answers; empty for a message nobody asked for.
    pub in_reply_to: Vec<String>,
    /// The platform message to thread it under: the last message it answers.
    pub reply_to: Option<String>,
    pub content: OutboundContent,
    /// Tokens the turn spent (zero for messages no model wrote).
    pub usage: TokenUsage,
    /// A turn's answer, which may have been shown as a draft (`Outbox::stream`) that
    /// delivery now makes final; false for messages sent outside a turn.
    pub turn_answer: bool,
}

/// An answer while it is being written: what may be shown of it so far, and where it goes.
#[derive(Debug, Clone, Copy)]
pub struct Draft<'a> {
    pub agent_id: &'a str,
    pub conversation: &'a ConversationId,
    /// Our ids of the messages it will answer.
    pub in_reply_to: &'a [String],
    /// The platform message to thread it under.
    pub reply_to: Option<&'a str>,
    /// Everything that may be shown so far. It usually grows; it starts over when the model
    /// does.
    pub text: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("no chat platform is configured for `{0}`")]
    Unreachable(ConversationId),
    #[error("cannot send to `{conversation}`: {reason}")]
    Failed {
        conversation: ConversationId,
        reason: String,
    },
}

/// A workspace file an agent sends to a conversation (`send_file`).
#[derive(Debug, Clone)]
pub struct OutboundFile {
    pub name: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// Text sent with it.
    pub caption: Option<String>,
}

impl OutboundFile {
    /// Sent as a photo where the platform shows photos (PNG, JPEG, WebP).
    pub fn is_photo(&self) -> bool {
        matches!(
            self.media_type.as_str(),
            "image/png" | "image/jpeg" | "image/webp"
        )
    }
}

/// How an agent's answers leave it. The agent calls these in a turn's order: `typing` when a
/// turn starts, `stream` as the answer is written, `deliver` with its answer, `recorded` once the turn is written down, and
/// `settled` when nothing more is owed in the conversation. Implementations route by the
/// conversation's platform.
#[async_trait::async_trait]
pub trait Outbox: Send + Sync {
    /// Shows that an answer is being prepared, until the conversation's next delivery.
    async fn typing(&self, conversation: &ConversationId);

    /// Sends an answer, or a message nobody asked for (`in_reply_to` empty). `Skip` sends
    /// nothing.
    async fn deliver(&self, response: &OutboundResponse) -> Result<(), DeliveryError>;

    /// The turn that sent `response` is recorded, so whoever reads the transcript now finds it.
    fn recorded(&self, response: &OutboundResponse);

    /// No turn is queued and no branch or worker runs in the conversation any more.
    fn settled(&self, conversation: &ConversationId);

    /// Whether `deliver` can reach the conversation at all.
    fn reaches(&self, conversation: &ConversationId) -> bool;

    /// Shows the turn's answer while it is written. Platforms that can edit messages show it
    /// (throttled to their rate limits) and `deliver` then makes that message the final
    /// answer, so it is sent once. Never waits. By default nothing is shown.
    fn stream(&self, _draft: &Draft<'_>) {}

    /// Puts an emoji reaction on a platform message of a conversation. Required, like
    /// `send_file`, so that an outbox wrapping another one cannot forget to pass it on.
    async fn react(
        &self,
        conversation: &ConversationId,
        message_id: &str,
        emoji: &str,
    ) -> Result<(), DeliveryError>;

    /// Sends a file to a conversation, as a photo or a document as the platform has them.
    async fn send_file(
        &self,
        conversation: &ConversationId,
        file: &OutboundFile,
    ) -> Result<(), DeliveryError>;
}
