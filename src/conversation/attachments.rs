//! The attachments stored with messages: what each file is, where the workspace holds it,
//! why it was not received, and a voice note's transcript once there is one.

use serde::Serialize;

use super::{ConversationStore, StoreError};
use crate::message::AttachmentKind;

/// An attachment to store with its message.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub name: String,
    pub media_type: String,
    pub kind: AttachmentKind,
    pub size: u64,
    /// Where the workspace holds the file; `None` when it was not received.
    pub path: Option<String>,
    /// Why the file was not received.
    pub refused: Option<String>,
}

/// An attachment as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredAttachment {
    pub id: i64,
    pub message_id: String,
    pub name: String,
    pub media_type: String,
    pub kind: AttachmentKind,
    pub size: i64,
    /// Workspace-relative.
    pub path: Option<String>,
    pub refused: Option<String>,
    pub transcript: Option<String>,
}

impl ConversationStore {
    /// The attachments of these messages, in the order they were stored.
    pub async fn attachments_of(
        &self,
        message_ids: &[String],
    ) -> Result<Vec<StoredAttachment>, StoreError> {
        if message_ids.is_empty() {
            return Ok(Vec::new());
        }
        // Unchecked: the IN list is built at run time.
        let placeholders = vec!["?"; message_ids.len()].join(", ");
        let sql = format!(
            "SELECT id, message_id, name, media_type, kind, size, path, refused, transcript
             FROM attachments WHERE message_id IN ({placeholders}) ORDER BY id"
        );
        let mut query = sqlx::query_as::<_, AttachmentRow>(&sql);
        for id in message_ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(AttachmentRow::into_stored).collect())
    }

    /// The received attachment of `message_id` in `conversation_id` that the workspace keeps
    /// at `path`: `None` when that message of that conversation kept no file there.
    pub async fn attachment_at(
        &self,
        conversation_id: &str,
        message_id: &str,
        path: &str,
    ) -> Result<Option<StoredAttachment>, StoreError> {
        let row = sqlx::query_as!(
            AttachmentRow,
            r#"SELECT id AS "id!", message_id, name, media_type, kind AS "kind: AttachmentKind",
                      size, path, refused, transcript
               FROM attachments
               WHERE conversation_id = ? AND message_id = ? AND path = ? AND refused IS NULL
               ORDER BY id LIMIT 1"#,
            conversation_id,
            message_id,
            path,
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(AttachmentRow::into_stored))
    }

    /// Keeps a voice note's transcript, so it is transcribed once.
    pub async fn set_transcript(&self, attachment_id: i64, text: &str) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE attachments SET transcript = ? WHERE id = ?",
            text,
            attachment_id,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct AttachmentRow {
    id: i64,
    message_id: String,
    name: String,
    media_type: String,
    kind: AttachmentKind,
    size: i64,
    path: Option<String>,
    refused: Option<String>,
    transcript: Option<String>,
}

impl AttachmentRow {
    fn into_stored(self) -> StoredAttachment {
        StoredAttachment {
            id: self.id,
            message_id: self.message_id,
            name: self.name,
            media_type: self.media_type,
            kind: self.kind,
            size: self.size,
            path: self.path,
            refused: self.refused,
            transcript: self.transcript,
        }
    }
}

/// Inserts a message's attachments inside the transaction that stores it.
pub(super) async fn insert_all(
    connection: &mut sqlx::SqliteConnection,
    message_id: &str,
    conversation_id: &str,
    attachments: &[NewAttachment],
    now: i64,
) -> Result<(), StoreError> {
    for attachment in attachments {
        let size = i64::try_from(attachment.size).unwrap_or(i64::MAX);
        sqlx::query!(
            "INSERT INTO attachments (message_id, conversation_id, name, media_type, kind, size,
                                      path, refused, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            message_id,
            conversation_id,
            attachment.name,
            attachment.media_type,
            attachment.kind,
            size,
            attachment.path,
            attachment.refused,
            now,
        )
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}
