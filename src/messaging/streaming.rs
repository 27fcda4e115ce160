//! Answers shown while they are written, on platforms that can edit messages: the first
//! draft is sent once the answer has been coming for one edit interval (a quick answer is
//! simply sent when done), later drafts edit it at most once per the adapter's `edit_interval` (the
//! newest text wins, drafts in between are skipped), and delivery turns that message into
//! the final answer (or removes it when the turn ended without one), so it is sent once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::adapter::{Adapter, AdapterError};
use super::split_message;
use crate::conversation_id::ConversationId;

/// The message a live draft was written into, and its text now.
#[derive(Debug, Clone)]
pub(super) struct Shown {
    pub message_id: String,
    pub text: String,
}

struct LiveDraft {
    text: watch::Sender<String>,
    stop: CancellationToken,
    task: JoinHandle<Option<Shown>>,
}

/// The live drafts of one manager, by conversation.
#[derive(Default)]
pub(super) struct LiveDrafts {
    drafts: Mutex<HashMap<String, LiveDraft>>,
}

impl LiveDrafts {
    /// Shows `text` as the conversation's answer so far, starting its draft if needed.
    pub(super) fn update(
        &self,
        adapter: &Arc<dyn Adapter>,
        interval: Duration,
        conversation: &ConversationId,
        reply_to: Option<&str>,
        text: &str,
    ) {
        let Ok(mut drafts) = self.drafts.lock() else {
            return;
        };
        if let Some(draft) = drafts.get(conversation.as_str()) {
            draft.text.send_if_modified(|current| {
                if current == text {
                    return false;
                }
                current.clear();
                current.push_str(text);
                true
            });
            return;
        }
        let (sender, receiver) = watch::channel(text.to_string());
        let stop = CancellationToken::new();
        let task = tokio::spawn(show(
            adapter.clone(),
            conversation.clone(),
            reply_to.map(str::to_string),
            receiver,
            interval,
            stop.clone(),
        ));
        drafts.insert(
            conversation.to_string(),
            LiveDraft {
                text: sender,
                stop,
                task,
            },
        );
    }

    /// Ends the conversation's draft, waiting for a send in flight; the message it wrote
    /// into, if any.
    pub(super) async fn finish(&self, conversation: &ConversationId) -> Option<Shown> {
        let draft = self.drafts.lock().ok()?.remove(conversation.as_str())?;
        draft.stop.cancel();
        draft.task.await.ok().flatten()
    }

    /// Stops every draft (at shutdown).
    pub(super) fn stop_all(&self) {
        if let Ok(mut drafts) = self.drafts.lock() {
            for (_, draft) in drafts.drain() {
                draft.stop.cancel();
            }
        }
    }
}

/// Writes the newest draft into one message until stopped.
async fn show(
    adapter: Arc<dyn Adapter>,
    conversation: ConversationId,
    reply_to: Option<String>,
    mut text: watch::Receiver<String>,
    interval: Duration,
    stop: CancellationToken,
) -> Option<Shown> {
    let mut shown: Option<Shown> = None;
    tokio::select! {
        biased;
        () = stop.cancelled() => return None,
        () = tokio::time::sleep(interval) => {}
    }
    text.mark_changed();
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return shown,
            changed = text.changed() => if changed.is_err() {
                return shown;
            },
        }
        let draft = clip(&text.borrow_and_update(), adapter.message_limit());
        let result = match &mut shown {
            None => adapter
                .send_editable(&conversation, &draft, reply_to.as_deref())
                .await
                .map(|message_id| {
                    shown = Some(Shown {
                        message_id,
                        text: draft,
                    });
                }),
            Some(current) if current.text != draft => adapter
                .edit(&conversation, &current.message_id, &draft)
                .await
                .map(|()| current.text = draft),
            Some(_) => Ok(()),
        };
        match result {
            Ok(()) => {}
            Err(AdapterError::Permanent(error)) if shown.is_none() => {
                tracing::warn!(%conversation, %error, "cannot show the answer as it is written; it is sent when done");
                return None;
            }
            Err(error) => tracing::debug!(%conversation, %error, "a draft update failed"),
        }
        tokio::select! {
            biased;
            () = stop.cancelled() => return shown,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// What fits in one message of a draft: its first chunk, marked as continuing.
fn clip(text: &str, limit: usize) -> String {
    if text.encode_utf16().count() <= limit {
        return text.to_string();
    }
    let chunks = split_message(text, limit.saturating_sub(2).max(1));
    format!("{} …", chunks.first().map(String::as_str).unwrap_or(""))
}
