//! The persisted transcript of every conversation: inbound messages stored before they are
//! acted on, replies stored after they are sent, and what is still owed an answer. The runs
//! of the workers a conversation's channel starts are in `worker_runs`.

mod attachments;
mod capture;
mod worker_runs;

use rig::message::Message;
use serde::Serialize;
use sqlx::SqlitePool;

use crate::database::now_millis;
use crate::message::Authority;

pub use attachments::{NewAttachment, StoredAttachment};
pub use capture::UncapturedSpan;
pub use worker_runs::WorkerRunStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conversation store: {0}")]
    Database(#[from] sqlx::Error),
    #[error("conversation store: unreadable context item {seq}: {message}")]
    Corrupt { seq: i64, message: String },
}

impl StoreError {
    /// The database could not be written: the disk is full or failing (`SQLITE_FULL`,
    /// `SQLITE_IOERR`). Nothing was stored; the same write can succeed once there is space.
    pub fn is_disk_failure(&self) -> bool {
        matches!(self, StoreError::Database(error) if crate::database::is_disk_failure(error))
    }

    /// Worth trying again later: a disk failure, a busy database or an exhausted pool.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(error) => crate::database::is_transient(error),
            StoreError::Corrupt { .. } => false,
        }
    }
}

/// One entry of what a channel's LLM sees.
#[derive(Debug, Clone, PartialEq)]
pub enum ContextBody {
    /// A message as sent to or received from the model, tool calls included.
    Message(Message),
    /// A summary standing in for older messages.
    Summary(String),
    /// A note that history was dropped.
    Marker(String),
}

impl ContextBody {
    fn kind(&self) -> &'static str {
        match self {
            ContextBody::Message(_) => "message",
            ContextBody::Summary(_) => "summary",
            ContextBody::Marker(_) => "marker",
        }
    }

    fn encode(&self) -> String {
        match self {
            ContextBody::Message(message) => serde_json::to_string(message).unwrap_or_default(),
            ContextBody::Summary(text) | ContextBody::Marker(text) => text.clone(),
        }
    }

    fn decode(seq: i64, kind: &str, body: String) -> Result<Self, StoreError> {
        match kind {
            "message" => serde_json::from_str(&body)
                .map(ContextBody::Message)
                .map_err(|error| StoreError::Corrupt {
                    seq,
                    message: error.to_string(),
                }),
            "summary" => Ok(ContextBody::Summary(body)),
            "marker" => Ok(ContextBody::Marker(body)),
            other => Err(StoreError::Corrupt {
                seq,
                message: format!("unknown kind `{other}`"),
            }),
        }
    }

    /// A rough token count (a token is about four bytes of English or JSON), fixed when the
    /// item is written so the compactor never re-serialises history to measure it.
    pub fn estimate_tokens(&self) -> usize {
        tokens_of(&self.encode())
    }

    /// The message the model sees for this item.
    pub fn to_message(&self) -> Message {
        match self {
            ContextBody::Message(message) => message.clone(),
            ContextBody::Summary(text) => {
                Message::user(format!("[Summary of the earlier conversation]\n{text}"))
            }
            ContextBody::Marker(text) => Message::user(format!("[{text}]")),
        }
    }
}

fn tokens_of(encoded: &str) -> usize {
    encoded.len() / 4 + 4
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContextItem {
    pub seq: i64,
    pub body: ContextBody,
    pub tokens: usize,
}

/// What a finished turn writes, in one transaction.
pub struct TurnRecord<'a> {
    pub conversation_id: &'a str,
    /// The reply that was sent, if any.
    pub reply: Option<NewMessage<'a>>,
    /// User messages the turn answered, and the status they close with.
    pub answered: &'a [String],
    pub answered_status: MessageStatus,
    /// New context items (the turn's input, tool calls and answer).
    pub context: Vec<ContextBody>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// Where a message is in its life. User messages start `Pending`; assistant messages are `Sent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Pending,
    Answered,
    Skipped,
    Failed,
    Sent,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredMessage {
    pub id: String,
    pub conversation_id: String,
    pub role: Role,
    pub sender: String,
    pub content: String,
    pub platform_message_id: Option<String>,
    pub status: MessageStatus,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The sender's stable platform id (`telegram:123`); `None` for the API, jobs and replies.
    pub sender_id: Option<String>,
    /// What the sender may make the agent do.
    pub authority: Authority,
    /// Sent in a direct conversation (one person and the bot).
    pub direct: bool,
}

/// A message to store. `platform_message_id`, when set, makes storing idempotent.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub id: &'a str,
    pub conversation_id: &'a str,
    pub role: Role,
    pub sender: &'a str,
    pub content: &'a str,
    pub platform_message_id: Option<&'a str>,
    pub status: MessageStatus,
    pub sender_id: Option<&'a str>,
    pub authority: Authority,
    pub direct: bool,
}

impl<'a> NewMessage<'a> {
    /// The agent's own message, already sent: `sender` is the agent's display name.
    pub fn sent_by_agent(
        id: &'a str,
        conversation_id: &'a str,
        sender: &'a str,
        content: &'a str,
    ) -> Self {
        Self {
            id,
            conversation_id,
            role: Role::Assistant,
            sender,
            content,
            platform_message_id: None,
            status: MessageStatus::Sent,
            sender_id: None,
            authority: Authority::Owner,
            direct: false,
        }
    }

    /// The row this message became when stored at `created_at`.
    fn stored_at(&self, created_at: i64) -> StoredMessage {
        StoredMessage {
            id: self.id.to_string(),
            conversation_id: self.conversation_id.to_string(),
            role: self.role,
            sender: self.sender.to_string(),
            content: self.content.to_string(),
            platform_message_id: self.platform_message_id.map(str::to_string),
            status: self.status,
            created_at,
            sender_id: self.sender_id.map(str::to_string),
            authority: self.authority,
            direct: self.direct,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ConversationSummary {
    pub id: String,
    pub platform: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub message_count: i64,
}

/// The conversation store of one agent.
#[derive(Debug, Clone)]
pub struct ConversationStore {
    pool: SqlitePool,
}

const MESSAGE_COLUMNS: &str = "id, conversation_id, role, sender, content, platform_message_id, \
     status, created_at, sender_id, authority, direct";

impl ConversationStore {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Stores a message. Returns it, or `None` when a message with the same platform message
    /// id is already in the conversation. `conversation_known` says the conversation row
    /// exists (its channel is running), which saves a write on the hot path.
    pub async fn insert(
        &self,
        message: &NewMessage<'_>,
        conversation_known: bool,
    ) -> Result<Option<StoredMessage>, StoreError> {
        self.insert_with_attachments(message, &[], conversation_known)
            .await
    }

    /// Stores a message with its attachments, in one transaction. Returns `None`, storing
    /// nothing, for a message already in the conversation (same platform message id).
    pub async fn insert_with_attachments(
        &self,
        message: &NewMessage<'_>,
        attachments: &[NewAttachment],
        conversation_known: bool,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let now = now_millis();
        // No RETURNING: an autocommit statement read only up to its first row never reports
        // a failed COMMIT (a full disk), and the caller would take a lost message as stored.
        let insert_message = sqlx::query!(
            "INSERT INTO messages (id, conversation_id, role, sender, content, platform_message_id,
                                   status, created_at, sender_id, authority, direct)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
            message.id,
            message.conversation_id,
            message.role,
            message.sender,
            message.content,
            message.platform_message_id,
            message.status,
            now,
            message.sender_id,
            message.authority,
            message.direct,
        );
        let inserted = if conversation_known && attachments.is_empty() {
            insert_message.execute(&self.pool).await?.rows_affected()
        } else {
            let platform = message
                .conversation_id
                .split(':')
                .next()
                .unwrap_or_default();
            let mut transaction = crate::database::begin_write(&self.pool).await?;
            sqlx::query!(
                "INSERT INTO conversations (id, platform, created_at, updated_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (id) DO NOTHING",
                message.conversation_id,
                platform,
                now,
                now,
            )
            .execute(&mut *transaction)
            .await?;
            let inserted = insert_message
                .execute(&mut *transaction)
                .await?
                .rows_affected();
            if inserted > 0 {
                attachments::insert_all(
                    &mut transaction,
                    message.id,
                    message.conversation_id,
                    attachments,
                    now,
                )
                .await?;
            }
            transaction.commit().await?;
            inserted
        };
        Ok((inserted > 0).then(|| message.stored_at(now)))
    }

    /// Records a finished turn: the reply that was sent, the user messages it closes and the
    /// new context items, in one transaction.
    pub async fn record_turn(
        &self,
        record: &TurnRecord<'_>,
    ) -> Result<(Option<StoredMessage>, Vec<ContextItem>), StoreError> {
        let now = now_millis();
        // One query of up to three statements, so the turn costs the connection's thread three
        // round trips (begin, this, commit) however much it writes.
        // Unchecked: the statements, the IN list and the VALUES rows are built at run time.
        let mut sql = String::new();
        if record.reply.is_some() {
            sql.push_str(
                "INSERT INTO messages (id, conversation_id, role, sender, content,
                                       platform_message_id, status, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?);",
            );
        }
        if !record.answered.is_empty() {
            let placeholders = vec!["?"; record.answered.len()].join(", ");
            sql.push_str(&format!(
                "UPDATE messages SET status = ? WHERE status = 'pending' AND id IN ({placeholders});"
            ));
        }
        let encoded: Vec<String> = record.context.iter().map(ContextBody::encode).collect();
        if !encoded.is_empty() {
            let rows = vec!["(?, ?, ?, ?, ?)"; encoded.len()].join(", ");
            sql.push_str(&format!(
                "INSERT INTO context_items (conversation_id, kind, body, tokens, created_at)
                 VALUES {rows} RETURNING seq;"
            ));
        }
        if sql.is_empty() {
            return Ok((None, Vec::new()));
        }
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        if let Some(reply) = &record.reply {
            query = query
                .bind(reply.id)
                .bind(reply.conversation_id)
                .bind(reply.role)
                .bind(reply.sender)
                .bind(reply.content)
                .bind(reply.platform_message_id)
                .bind(reply.status)
                .bind(now);
        }
        if !record.answered.is_empty() {
            query = query.bind(record.answered_status);
            for id in record.answered {
                query = query.bind(id);
            }
        }
        for (body, text) in record.context.iter().zip(&encoded) {
            query = query
                .bind(record.conversation_id)
                .bind(body.kind())
                .bind(text.as_str())
                .bind(i64::try_from(tokens_of(text)).unwrap_or(i64::MAX))
                .bind(now);
        }
        let mut transaction = crate::database::begin_write(&self.pool).await?;
        let mut sequence = query.fetch_all(&mut *transaction).await?;
        transaction.commit().await?;
        // RETURNING gives no order guarantee; rows inserted together get ascending seqs.
        sequence.sort_unstable();
        let items = record
            .context
            .iter()
            .zip(&encoded)
            .zip(sequence)
            .map(|((body, text), seq)| ContextItem {
                seq,
                tokens: tokens_of(text),
                body: body.clone(),
            })
            .collect();
        let stored = record.reply.as_ref().map(|reply| reply.stored_at(now));
        Ok((stored, items))
    }

    /// The last `limit` messages of a conversation, oldest first.
    pub async fn recent(
        &self,
        conversation_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut messages = sqlx::query_as!(
            StoredMessage,
            r#"SELECT id, conversation_id, role AS "role: Role", sender, content,
                      platform_message_id, status AS "status: MessageStatus", created_at,
                      sender_id, authority AS "authority: Authority", direct AS "direct: bool"
               FROM messages WHERE conversation_id = ?
               ORDER BY seq DESC LIMIT ?"#,
            conversation_id,
            limit,
        )
        .fetch_all(&self.pool)
        .await?;
        messages.reverse();
        Ok(messages)
    }

    /// Starts a fresh context (`/new`): the model's context is emptied; the transcript stays.
    pub async fn reset_context(&self, conversation_id: &str) -> Result<(), StoreError> {
        sqlx::query!(
            "DELETE FROM context_items WHERE conversation_id = ?",
            conversation_id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// User messages of a conversation still owed an answer, oldest first.
    pub async fn pending(&self, conversation_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(sqlx::query_as!(
            StoredMessage,
            r#"SELECT id, conversation_id, role AS "role: Role", sender, content,
                      platform_message_id, status AS "status: MessageStatus", created_at,
                      sender_id, authority AS "authority: Authority", direct AS "direct: bool"
               FROM messages
               WHERE conversation_id = ? AND status = 'pending' ORDER BY seq"#,
            conversation_id,
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many messages are stored and not yet answered (for the metrics).
    pub async fn pending_count(&self) -> Result<u64, StoreError> {
        let count = sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!: i64" FROM messages WHERE status = 'pending'"#
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Conversations with at least one message still owed an answer.
    pub async fn conversations_with_pending(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar!(
            "SELECT DISTINCT conversation_id FROM messages WHERE status = 'pending'"
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Transcript messages containing every word (case-insensitive), oldest first.
    pub async fn search_transcript(
        &self,
        conversation_id: &str,
        words: &[&str],
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        // Unchecked: one filter per word, built at run time.
        let mut sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?");
        for _ in words {
            sql.push_str(" AND instr(lower(content), lower(?)) > 0");
        }
        sql.push_str(" ORDER BY seq DESC LIMIT ?");
        let mut query = sqlx::query_as::<_, StoredMessage>(&sql).bind(conversation_id);
        for word in words {
            query = query.bind(*word);
        }
        let mut messages = query
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        messages.reverse();
        Ok(messages)
    }

    /// Candidates for a ranked transcript search: the messages containing any of `words`
    /// (case-insensitive) and the `recent` newest, newest first, at most `limit`; with how
    /// many messages the transcript holds and how many contain each word (for weighing them).
    pub async fn transcript_candidates(
        &self,
        conversation_id: &str,
        words: &[&str],
        recent: usize,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, i64, Vec<i64>), StoreError> {
        // Unchecked: one filter per word, built at run time.
        let any_word = words
            .iter()
            .map(|_| "instr(lower(content), lower(?)) > 0")
            .collect::<Vec<_>>()
            .join(" OR ");
        let any_word = if any_word.is_empty() {
            "0".to_string()
        } else {
            any_word
        };
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?
               AND (({any_word}) OR seq >= (SELECT coalesce(min(seq), 0) FROM (
                   SELECT seq FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?)))
             ORDER BY seq DESC LIMIT ?"
        );
        let mut query = sqlx::query_as::<_, StoredMessage>(&sql).bind(conversation_id);
        for word in words {
            query = query.bind(*word);
        }
        let messages = query
            .bind(conversation_id)
            .bind(i64::try_from(recent).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        // Unchecked: one count per word, built at run time.
        let counts_sql = std::iter::once("count(*)".to_string())
            .chain(
                words
                    .iter()
                    .map(|_| "coalesce(sum(instr(lower(content), lower(?)) > 0), 0)".to_string()),
            )
            .collect::<Vec<_>>()
            .join(", ");
        let counts_sql = format!("SELECT {counts_sql} FROM messages WHERE conversation_id = ?");
        let mut counts = sqlx::query(&counts_sql);
        for word in words {
            counts = counts.bind(*word);
        }
        let row = counts.bind(conversation_id).fetch_one(&self.pool).await?;
        let total: i64 = sqlx::Row::try_get(&row, 0)?;
        let mut matches = Vec::with_capacity(words.len());
        for column in 1..=words.len() {
            matches.push(sqlx::Row::try_get::<i64, _>(&row, column)?);
        }
        Ok((messages, total, matches))
    }

    /// The context of a conversation, oldest first.
    pub async fn load_context(
        &self,
        conversation_id: &str,
    ) -> Result<Vec<ContextItem>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT seq AS "seq!", kind, body, tokens FROM context_items
               WHERE conversation_id = ? ORDER BY seq"#,
            conversation_id,
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(ContextItem {
                    seq: row.seq,
                    body: ContextBody::decode(row.seq, &row.kind, row.body)?,
                    tokens: usize::try_from(row.tokens).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Replaces the items `first..=last` (all `count` of them) with one item, keeping its
    /// place. Returns `None`, changing nothing, when the span is no longer intact (another
    /// compaction or a drop got there first).
    pub async fn replace_context(
        &self,
        conversation_id: &str,
        first: i64,
        last: i64,
        count: usize,
        replacement: ContextBody,
    ) -> Result<Option<ContextItem>, StoreError> {
        let mut transaction = crate::database::begin_write(&self.pool).await?;
        let present = sqlx::query_scalar!(
            "SELECT COUNT(*) FROM context_items WHERE conversation_id = ? AND seq BETWEEN ? AND ?",
            conversation_id,
            first,
            last,
        )
        .fetch_one(&mut *transaction)
        .await?;
        if usize::try_from(present).ok() != Some(count) {
            return Ok(None);
        }
        sqlx::query!(
            "DELETE FROM context_items WHERE conversation_id = ? AND seq BETWEEN ? AND ?",
            conversation_id,
            first,
            last,
        )
        .execute(&mut *transaction)
        .await?;
        let tokens = replacement.estimate_tokens();
        let kind = replacement.kind();
        let body = replacement.encode();
        let token_count = i64::try_from(tokens).unwrap_or(i64::MAX);
        let now = now_millis();
        sqlx::query!(
            "INSERT INTO context_items (seq, conversation_id, kind, body, tokens, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
            first,
            conversation_id,
            kind,
            body,
            token_count,
            now,
        )
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(Some(ContextItem {
            seq: first,
            body: replacement,
            tokens,
        }))
    }

    pub async fn list(&self) -> Result<Vec<ConversationSummary>, StoreError> {
        Ok(sqlx::query_as!(
            ConversationSummary,
            // `id` is a TEXT PRIMARY KEY, which SQLite lets be NULL; no insert leaves it so.
            r#"SELECT c.id AS "id!", c.platform, c.created_at,
                    COALESCE((SELECT MAX(m.created_at) FROM messages m WHERE m.conversation_id = c.id),
                             c.created_at) AS "updated_at!: i64",
                    (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)
                        AS "message_count!: i64"
             FROM conversations c ORDER BY updated_at DESC"#
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
