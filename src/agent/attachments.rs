//! Attachments on their way in and into a turn: each file a message brings is kept in the
//! workspace under its conversation (and recorded with the message by the store), and a turn
//! gets a line per file saying what it is and where it is stored, with images as image
//! content for models that read them.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use rig::OneOrMany;
use rig::message::{ImageDetail, ImageMediaType, Message, UserContent};

use super::Agent;
use crate::config::MediaConfig;
use crate::conversation::{NewAttachment, StoredAttachment, StoredMessage};
use crate::media;
use crate::message::{AttachmentBody, AttachmentKind, InboundMessage};
use crate::sandbox::{SandboxError, Workspace};

/// Writes the files of `message` to the workspace and returns the records to store with it.
/// A file over the size limit is recorded as refused, with why.
pub(super) async fn keep(
    workspace: &Arc<Workspace>,
    message: &InboundMessage,
    limit: u64,
) -> Result<Vec<NewAttachment>, SandboxError> {
    let mut records = Vec::with_capacity(message.attachments.len());
    let mut taken_names = Vec::new();
    for (index, attachment) in message.attachments.iter().enumerate() {
        let kind = attachment.kind();
        let mut name = media::file_name(&attachment.name);
        if taken_names.contains(&name) {
            name = format!("{}-{name}", index + 1);
        }
        taken_names.push(name.clone());
        let size = attachment.size();
        let refused = |size: u64, limit: u64| NewAttachment {
            name: attachment.name.clone(),
            media_type: attachment.media_type.clone(),
            kind,
            size,
            path: None,
            refused: Some(format!(
                "it is {}, larger than the {} limit for files",
                media::human_size(size),
                media::human_size(limit)
            )),
        };
        match &attachment.body {
            AttachmentBody::TooLarge { size, limit } => records.push(refused(*size, *limit)),
            AttachmentBody::Unavailable { size, reason } => records.push(NewAttachment {
                name: attachment.name.clone(),
                media_type: attachment.media_type.clone(),
                kind,
                size: *size,
                path: None,
                refused: Some(format!("the platform did not hand it over ({reason})")),
            }),
            AttachmentBody::Bytes(_) if size > limit => records.push(refused(size, limit)),
            AttachmentBody::Bytes(bytes) => {
                let path =
                    media::attachment_path(message.conversation.as_str(), &message.id, &name);
                let target = workspace.clone();
                let bytes = bytes.clone();
                let written = path.clone();
                tokio::task::spawn_blocking(move || target.write(&written, &bytes))
                    .await
                    .map_err(|error| SandboxError::Io {
                        path: path.clone(),
                        source: std::io::Error::other(error.to_string()),
                    })??;
                records.push(NewAttachment {
                    name: attachment.name.clone(),
                    media_type: attachment.media_type.clone(),
                    kind,
                    size,
                    path: Some(path),
                    refused: None,
                });
            }
        }
    }
    Ok(records)
}

/// Removes the files kept for a message that turned out to be a duplicate.
pub(super) fn discard(workspace: &Workspace, message: &InboundMessage) {
    let folder = media::attachment_path(message.conversation.as_str(), &message.id, "x");
    let Some((folder, _)) = folder.rsplit_once('/') else {
        return;
    };
    if let Err(error) = std::fs::remove_dir_all(workspace.root().join(folder))
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(%error, %folder, "cannot remove the files of a duplicate message");
    }
}

/// What a person is told when files of their message were not received.
pub(super) fn refusal_notice(records: &[NewAttachment]) -> Option<String> {
    let lines: Vec<String> = records
        .iter()
        .filter_map(|record| {
            record
                .refused
                .as_ref()
                .map(|why| format!("I could not receive `{}`: {why}.", record.name))
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    Some(format!(
        "{} Your message itself arrived; please send a smaller file, or share it another way.",
        lines.join(" ")
    ))
}

/// What a turn's messages bring besides their text: a rendered note per message (a line per
/// file) and the images to show.
#[derive(Default)]
pub(super) struct TurnFiles {
    pub notes: HashMap<String, String>,
    pub images: Vec<UserContent>,
}

impl TurnFiles {
    /// The turn's user message: its text, then the images.
    pub fn message(&self, text: String) -> Message {
        if self.images.is_empty() {
            return Message::user(text);
        }
        let parts = std::iter::once(UserContent::text(text)).chain(self.images.iter().cloned());
        match OneOrMany::many(parts) {
            Ok(content) => Message::User { content },
            Err(_) => Message::user(String::new()),
        }
    }
}

/// Reads the attachments of `batch` for a turn. A file that cannot be read is described, not
/// shown; nothing here fails the turn.
pub(super) async fn for_turn(agent: &Agent, batch: &[StoredMessage]) -> TurnFiles {
    let ids: Vec<String> = batch.iter().map(|message| message.id.clone()).collect();
    let stored = match agent.stores.conversations.attachments_of(&ids).await {
        Ok(stored) => stored,
        Err(error) => {
            tracing::error!(%error, "cannot read the attachments of the turn's messages");
            return TurnFiles::default();
        }
    };
    let mut files = TurnFiles::default();
    let mut by_message: HashMap<&str, Vec<minijinja::Value>> = HashMap::new();
    for attachment in &stored {
        if attachment.kind == AttachmentKind::Image
            && attachment.refused.is_none()
            && let Some(image) = image_part(&agent.workspace, &agent.media, attachment).await
        {
            files.images.push(image);
        }
        by_message
            .entry(attachment.message_id.as_str())
            .or_default()
            .push(describe(attachment, None));
    }
    for (message_id, attachments) in by_message {
        let note = agent
            .tool_loop
            .render("attachments", minijinja::context! { attachments });
        files.notes.insert(message_id.to_string(), note);
    }
    files
}

/// What the `attachments` template reads of one file.
fn describe(attachment: &StoredAttachment, text: Option<(String, bool)>) -> minijinja::Value {
    let (text, truncated) = match text {
        Some((text, truncated)) => (Some(text), truncated),
        None => (None, false),
    };
    minijinja::context! {
        name => attachment.name,
        kind => attachment.kind.as_str(),
        media_type => attachment.media_type,
        size => media::human_size(u64::try_from(attachment.size).unwrap_or(0)),
        path => attachment.path,
        refused => attachment.refused,
        transcript => attachment.transcript,
        heard => false,
        text => text,
        truncated => truncated,
    }
}

/// An image attachment as image content, scaled to the configured size.
async fn image_part(
    workspace: &Arc<Workspace>,
    settings: &MediaConfig,
    attachment: &StoredAttachment,
) -> Option<UserContent> {
    let path = attachment.path.clone()?;
    let workspace = workspace.clone();
    let limit = settings.max_file_bytes;
    let max_side = settings.image_max_side;
    let name = attachment.name.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        let contents = workspace
            .read(&path, limit)
            .map_err(|error| error.to_string())?;
        media::prepare_image(&name, &contents.bytes, max_side).map_err(|error| error.to_string())
    })
    .await;
    let prepared = match prepared {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(error)) => {
            tracing::warn!(%error, name = %attachment.name, "an attached image cannot be shown; the model is told where it is");
            return None;
        }
        Err(error) => {
            tracing::warn!(%error, name = %attachment.name, "preparing an attached image failed");
            return None;
        }
    };
    let media_type = match prepared.media_type {
        "image/jpeg" => ImageMediaType::JPEG,
        "image/gif" => ImageMediaType::GIF,
        "image/webp" => ImageMediaType::WEBP,
        _ => ImageMediaType::PNG,
    };
    Some(UserContent::image_base64(
        base64::engine::general_purpose::STANDARD.encode(&prepared.bytes),
        Some(media_type),
        Some(ImageDetail::Auto),
    ))
}
