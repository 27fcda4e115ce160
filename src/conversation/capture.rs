//! What automatic memory capture has read of each conversation: the messages after its mark
//! (`conversations.captured_through`, a message `seq`), and moving the mark.

use super::{ConversationStore, MessageStatus, Role, StoreError, StoredMessage};
use crate::message::Authority;

/// Messages of a conversation that no capture pass has read yet, oldest first.
#[derive(Debug, Clone, Default)]
pub struct UncapturedSpan {
    pub messages: Vec<StoredMessage>,
    /// The `seq` of the last of them: the mark to set once they are captured.
    pub through: i64,
}

impl ConversationStore {
    /// At most `limit` messages after the capture mark, oldest first.
    pub async fn uncaptured(
        &self,
        conversation_id: &str,
        limit: usize,
    ) -> Result<UncapturedSpan, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sqlx::query!(
            r#"SELECT m.seq AS "seq!: i64", m.id, m.conversation_id, m.role AS "role: Role",
                      m.sender, m.content, m.platform_message_id,
                      m.status AS "status: MessageStatus", m.created_at, m.sender_id,
                      m.authority AS "authority: Authority", m.direct AS "direct: bool"
               FROM messages m JOIN conversations c ON c.id = m.conversation_id
               WHERE m.conversation_id = ? AND m.seq > c.captured_through
               ORDER BY m.seq LIMIT ?"#,
            conversation_id,
            limit,
        )
        .fetch_all(&self.pool)
        .await?;
        let through = rows.last().map_or(0, |row| row.seq);
        let messages = rows
            .into_iter()
            .map(|row| StoredMessage {
                id: row.id,
                conversation_id: row.conversation_id,
                role: row.role,
                sender: row.sender,
                content: row.content,
                platform_message_id: row.platform_message_id,
                status: row.status,
                created_at: row.created_at,
                sender_id: row.sender_id,
                authority: row.authority,
                direct: row.direct,
            })
            .collect();
        Ok(UncapturedSpan { messages, through })
    }

    /// How many user messages wait after the capture mark.
    pub async fn uncaptured_user_messages(&self, conversation_id: &str) -> Result<u64, StoreError> {
        let count = sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!: i64"
               FROM messages m JOIN conversations c ON c.id = m.conversation_id
               WHERE m.conversation_id = ? AND m.role = 'user' AND m.seq > c.captured_through"#,
            conversation_id,
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Moves the mark forward to `through` (never back).
    pub async fn mark_captured(
        &self,
        conversation_id: &str,
        through: i64,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE conversations SET captured_through = max(captured_through, ?) WHERE id = ?",
            through,
            conversation_id,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
