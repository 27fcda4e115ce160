//! The persisted transcript of every conversation: inbound messages stored before they are
//! acted on, replies stored after they are sent, and what is still owed an answer.

use serde::Serialize;
use sqlx::SqlitePool;

use crate::database::now_millis;

#[derive(Debug, thiserror::Error)]
#[error("conversation store: {0}")]
pub struct StoreError(#[from] sqlx::Error);

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

    /// Stores a message, creating its conversation if needed. Returns the stored message, or
    /// `None` when a message with the same platform message id is already in the conversation.
    pub async fn insert(
        &self,
        message: &NewMessage<'_>,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let now = now_millis();
        let platform = message
            .conversation_id
            .split(':')
            .next()
            .unwrap_or_default();
        let mut transaction = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO conversations (id, platform, created_at, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at",
        )
        .bind(message.conversation_id)
        .bind(platform)
        .bind(now)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        let stored = sqlx::query_as::<_, StoredMessage>(&format!(
            "INSERT INTO messages (id, conversation_id, role, sender, content, platform_message_id,
                                   status, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING
             RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(message.id)
        .bind(message.conversation_id)
        .bind(message.role)
        .bind(message.sender)
        .bind(message.content)
        .bind(message.platform_message_id)
        .bind(message.status)
        .bind(now)
        .fetch_optional(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(stored)
    }

    /// Stores a sent reply and closes the user messages it answers with `status`, in one
    /// transaction.
    pub async fn record_reply(
        &self,
        reply: &NewMessage<'_>,
        answers: &[String],
        status: MessageStatus,
    ) -> Result<StoredMessage, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let stored = sqlx::query_as::<_, StoredMessage>(&format!(
            "INSERT INTO messages (id, conversation_id, role, sender, content, platform_message_id,
                                   status, created_at)
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
        .bind(now_millis())
        .fetch_one(&mut *transaction)
        .await?;
        for id in answers {
            sqlx::query("UPDATE messages SET status = ? WHERE id = ? AND status = 'pending'")
                .bind(status)
                .bind(id)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(stored)
    }

    /// Closes user messages without a reply (the agent skipped, or the turn failed).
    pub async fn close(&self, ids: &[String], status: MessageStatus) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        for id in ids {
            sqlx::query("UPDATE messages SET status = ? WHERE id = ? AND status = 'pending'")
                .bind(status)
                .bind(id)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The last `limit` messages of a conversation since its last context reset, oldest first.
    pub async fn recent(
        &self,
        conversation_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut messages = sqlx::query_as::<_, StoredMessage>(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?
               AND seq > COALESCE((SELECT context_reset_seq FROM conversations WHERE id = ?), 0)
             ORDER BY seq DESC LIMIT ?"
        ))
        .bind(conversation_id)
        .bind(conversation_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        messages.reverse();
        Ok(messages)
    }

    /// Starts a fresh context (`/new`): later history loads skip everything stored so far.
    /// The messages stay in the transcript.
    pub async fn reset_context(&self, conversation_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE conversations SET context_reset_seq =
                 (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE conversation_id = ?)
             WHERE id = ?",
        )
        .bind(conversation_id)
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

    pub async fn list(&self) -> Result<Vec<ConversationSummary>, StoreError> {
        Ok(sqlx::query_as::<_, ConversationSummary>(
            "SELECT c.id, c.platform, c.created_at, c.updated_at,
                    (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count
             FROM conversations c ORDER BY c.updated_at DESC",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
