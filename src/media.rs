//! Files people send and the agent sends: where an attachment is kept in the workspace, and
//! how each kind is made ready for a model (images scaled down and encoded for vision,
//! documents read as text).

mod document;
mod gif;
mod image;

pub use self::document::{document_text, excerpt, is_pdf};
pub use self::image::{PreparedImage, prepare_image};

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("cannot read the image `{name}`: {reason}")]
    Image { name: String, reason: String },
    #[error("cannot read the text of `{name}`: {reason}")]
    Document { name: String, reason: String },
}

/// The workspace folder of a conversation's attachments: `attachments/{conversation}`, with
/// the conversation id made a safe file name (`telegram:42` → `telegram_42`).
pub fn conversation_folder(conversation_id: &str) -> String {
    format!("attachments/{}", safe_name(conversation_id, 120))
}

/// The workspace folder of one message's attachments:
/// `attachments/{conversation}/{message id}`.
pub fn message_folder(conversation_id: &str, message_id: &str) -> String {
    format!(
        "{}/{}",
        conversation_folder(conversation_id),
        safe_name(message_id, 64)
    )
}

/// Where a message's attachment is kept in the workspace:
/// `attachments/{conversation}/{message id}/{file name}`.
pub fn attachment_path(conversation_id: &str, message_id: &str, name: &str) -> String {
    format!(
        "{}/{}",
        message_folder(conversation_id, message_id),
        file_name(name)
    )
}

/// A file name that is safe as one path component: letters, digits, `.`, `-` and `_` kept,
/// anything else `_`, no leading dot, at most 100 characters (keeping the extension).
pub fn file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned = safe_name(base.trim_start_matches('.'), usize::MAX);
    let cleaned = if cleaned.is_empty() {
        "file".to_string()
    } else {
        cleaned
    };
    if cleaned.chars().count() <= 100 {
        return cleaned;
    }
    match cleaned.rsplit_once('.') {
        Some((stem, extension)) if extension.len() <= 10 => {
            let stem: String = stem.chars().take(99 - extension.len()).collect();
            format!("{stem}.{extension}")
        }
        _ => cleaned.chars().take(100).collect(),
    }
}

fn safe_name(text: &str, limit: usize) -> String {
    text.chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || matches!(character, '.' | '-' | '_') {
                character
            } else {
                '_'
            }
        })
        .take(limit)
        .collect()
}

/// A size for people: `512 B`, `3.4 KB`, `20.0 MB`.
pub fn human_size(bytes: u64) -> String {
    const KB: f64 = 1024.0;
    let value = bytes as f64;
    if value < KB {
        format!("{bytes} B")
    } else if value < KB * KB {
        format!("{:.1} KB", value / KB)
    } else {
        format!("{:.1} MB", value / (KB * KB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_their_folder() {
        assert_eq!(file_name("../../etc/passwd"), "passwd");
        assert_eq!(file_name(".bashrc"), "bashrc");
        assert_eq!(file_name("my photo (1).jpg"), "my_photo__1_.jpg");
        assert_eq!(file_name(""), "file");
        let long = format!("{}.pdf", "a".repeat(300));
        assert_eq!(file_name(&long).len(), 100);
        assert!(file_name(&long).ends_with(".pdf"));
        assert_eq!(
            attachment_path("telegram:42", "0190-ab", "x/y.png"),
            "attachments/telegram_42/0190-ab/y.png"
        );
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(20 << 20), "20.0 MB");
    }
}
