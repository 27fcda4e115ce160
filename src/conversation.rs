//! The persisted transcript of every conversation: inbound messages stored before they are
//! acted on, replies stored after they are sent, and what is still owed an answer.

use rig::message::Message;
use serde::Serialize;
use sqlx::SqlitePool;

use crate::database::now_millis;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conversation store: {0}")]
    Database(#[from] sqlx::Error),
    #[error("conversation store: unreadable context item {seq}: {message}")]
    Corrupt { seq: i64, message: String },
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
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
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

const MESSAGE_COLUMNS: &str =
    "id, conversation_id, role, sender, content, platform_message_id, status, created_at";

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
        let now = now_millis();
        let insert_message = format!(
            "INSERT INTO messages (id, conversation_id, role, sender, content, platform_message_id,
                                   status, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING
             RETURNING {MESSAGE_COLUMNS}"
        );
        let query = sqlx::query_as::<_, StoredMessage>(&insert_message)
            .bind(message.id)
            .bind(message.conversation_id)
            .bind(message.role)
            .bind(message.sender)
            .bind(message.content)
            .bind(message.platform_message_id)
            .bind(message.status)
            .bind(now);
        if conversation_known {
            return Ok(query.fetch_optional(&self.pool).await?);
        }
        let platform = message
            .conversation_id
            .split(':')
            .next()
            .unwrap_or_default();
        let mut transaction = self.pool.begin_with(crate::database::BEGIN_WRITE).await?;
        sqlx::query(
            "INSERT INTO conversations (id, platform, created_at, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(message.conversation_id)
        .bind(platform)
        .bind(now)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        let stored = query.fetch_optional(&mut *transaction).await?;
        transaction.commit().await?;
        Ok(stored)
    }

    /// Records a finished turn: the reply that was sent, the user messages it closes and the
    /// new context items, in one transaction.
    pub async fn record_turn(
        &self,
        record: TurnRecord<'_>,
    ) -> Result<(Option<StoredMessage>, Vec<ContextItem>), StoreError> {
        let now = now_millis();
        let mut transaction = self.pool.begin_with(crate::database::BEGIN_WRITE).await?;
        let stored = match &record.reply {
            Some(reply) => Some(
                sqlx::query_as::<_, StoredMessage>(&format!(
                    "INSERT INTO messages (id, conversation_id, role, sender, content,
                                           platform_message_id, status, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                     RETURNING {MESSAGE_COLUMNS}"
                ))
                .bind(reply.id)
                .bind(reply.conversation_id)
                .bind(reply.role)
                .bind(reply.sender)
                .bind(reply.content)
                .bind(reply.platform_message_id)
                .bind(reply.status)
                .bind(now)
                .fetch_one(&mut *transaction)
                .await?,
            ),
            None => None,
        };
        if !record.answered.is_empty() {
            let placeholders = vec!["?"; record.answered.len()].join(", ");
            let sql = format!(
                "UPDATE messages SET status = ? WHERE status = 'pending' AND id IN ({placeholders})"
            );
            let mut update = sqlx::query(&sql).bind(record.answered_status);
            for id in record.answered {
                update = update.bind(id);
            }
            update.execute(&mut *transaction).await?;
        }
        let mut items = Vec::with_capacity(record.context.len());
        if !record.context.is_empty() {
            let encoded: Vec<String> = record.context.iter().map(ContextBody::encode).collect();
            let rows = vec!["(?, ?, ?, ?, ?)"; encoded.len()].join(", ");
            let sql = format!(
                "INSERT INTO context_items (conversation_id, kind, body, tokens, created_at)
                 VALUES {rows} RETURNING seq"
            );
            let mut insert = sqlx::query_scalar::<_, i64>(&sql);
            for (body, text) in record.context.iter().zip(&encoded) {
                insert = insert
                    .bind(record.conversation_id)
                    .bind(body.kind())
                    .bind(text.as_str())
                    .bind(i64::try_from(tokens_of(text)).unwrap_or(i64::MAX))
                    .bind(now);
            }
            let mut sequence = insert.fetch_all(&mut *transaction).await?;
            // RETURNING gives no order guarantee; rows inserted together get ascending seqs.
            sequence.sort_unstable();
            for ((body, text), seq) in record.context.into_iter().zip(&encoded).zip(sequence) {
                items.push(ContextItem {
                    seq,
                    tokens: tokens_of(text),
                    body,
                });
            }
        }
        transaction.commit().await?;
        Ok((stored, items))
    }

    /// The last `limit` messages of a conversation, oldest first.
    pub async fn recent(
        &self,
        conversation_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut messages = sqlx::query_as::<_, StoredMessage>(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?
             ORDER BY seq DESC LIMIT ?"
        ))
        .bind(conversation_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        messages.reverse();
        Ok(messages)
    }

    /// Starts a fresh context (`/new`): the model's context is emptied; the transcript stays.
    pub async fn reset_context(&self, conversation_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM context_items WHERE conversation_id = ?")
            .bind(conversation_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// User messages of a conversation still owed an answer, oldest first.
    pub async fn pending(&self, conversation_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(sqlx::query_as::<_, StoredMessage>(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE conversation_id = ? AND status = 'pending' ORDER BY seq"
        ))
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Conversations with at least one message still owed an answer.
    pub async fn conversations_with_pending(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT conversation_id FROM messages WHERE status = 'pending'",
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

    /// The context of a conversation, oldest first.
    pub async fn load_context(
        &self,
        conversation_id: &str,
    ) -> Result<Vec<ContextItem>, StoreError> {
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT seq, kind, body, tokens FROM context_items
             WHERE conversation_id = ? ORDER BY seq",
        )
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(seq, kind, body, tokens)| {
                Ok(ContextItem {
                    seq,
                    body: ContextBody::decode(seq, &kind, body)?,
                    tokens: usize::try_from(tokens).unwrap_or_default(),
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
        let mut transaction = self.pool.begin_with(crate::database::BEGIN_WRITE).await?;
        let present: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM context_items WHERE conversation_id = ? AND seq BETWEEN ? AND ?",
        )
        .bind(conversation_id)
        .bind(first)
        .bind(last)
        .fetch_one(&mut *transaction)
        .await?;
        if usize::try_from(present).ok() != Some(count) {
            return Ok(None);
        }
        sqlx::query("DELETE FROM context_items WHERE conversation_id = ? AND seq BETWEEN ? AND ?")
            .bind(conversation_id)
            .bind(first)
            .bind(last)
            .execute(&mut *transaction)
            .await?;
        let tokens = replacement.estimate_tokens();
        sqlx::query(
            "INSERT INTO context_items (seq, conversation_id, kind, body, tokens, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(first)
        .bind(conversation_id)
        .bind(replacement.kind())
        .bind(replacement.encode())
        .bind(i64::try_from(tokens).unwrap_or(i64::MAX))
        .bind(now_millis())
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
        Ok(sqlx::query_as::<_, ConversationSummary>(
            "SELECT c.id, c.platform, c.created_at,
                    COALESCE((SELECT MAX(m.created_at) FROM messages m WHERE m.conversation_id = c.id),
                             c.created_at) AS updated_at,
                    (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count
             FROM conversations c ORDER BY updated_at DESC",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
