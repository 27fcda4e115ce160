//! The outbound direction: the `Outbox` every agent sends its answers through. An answer goes
//! to the adapter of its conversation's platform, split to the platform's limit and each
//! chunk sent with retries (after the platform's retry-after when it gives one); the typing
//! indicator is kept alive from the start of a turn until its answer is sent. An answer that
//! was streamed into an editable message becomes final by editing that message.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::adapter::{Adapter, AdapterError};
use super::manager::MessagingManager;
use super::split_message;
use super::streaming::Shown;
use crate::conversation_id::ConversationId;
use crate::message::{DeliveryError, Draft, OutboundFile, OutboundResponse, Outbox};
use crate::supervision::Backoff;

/// Attempts per outbound chunk (the first try plus retries on transient errors).
const SEND_ATTEMPTS: u32 = 5;
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
const SEND_BACKOFF: Duration = Duration::from_millis(500);
const SEND_BACKOFF_MAX: Duration = Duration::from_secs(8);
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(60);
/// A typing indicator is never kept alive longer than this, whatever happens to the turn.
const LONGEST_TYPING: Duration = Duration::from_secs(600);
const FIRST_TYPING_TIMEOUT: Duration = Duration::from_secs(2);

#[async_trait::async_trait]
impl Outbox for MessagingManager {
    /// Shows the typing indicator (waiting briefly for the first one) and keeps refreshing it
    /// until the conversation's next answer is delivered.
    async fn typing(&self, conversation: &ConversationId) {
        let Some(adapter) = self.adapter(conversation.platform()) else {
            return;
        };
        let Some(interval) = adapter.typing_interval() else {
            return;
        };
        let token = CancellationToken::new();
        if let Ok(mut typing) = self.typing.lock()
            && let Some(previous) = typing.insert(conversation.to_string(), token.clone())
        {
            previous.cancel();
        }
        let first = tokio::time::timeout(FIRST_TYPING_TIMEOUT, adapter.typing(conversation));
        if let Ok(Err(error)) = first.await {
            tracing::debug!(%error, %conversation, "typing indicator failed");
        }
        let conversation = conversation.clone();
        self.background.spawn(async move {
            let until = Instant::now() + LONGEST_TYPING;
            while Instant::now() < until {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = token.cancelled() => return,
                }
                tokio::select! {
                    result = adapter.typing(&conversation) => if let Err(error) = result {
                        tracing::debug!(%error, %conversation, "typing indicator failed");
                    },
                    () = token.cancelled() => return,
                }
            }
        });
    }

    async fn react(
        &self,
        conversation: &ConversationId,
        message_id: &str,
        emoji: &str,
    ) -> Result<(), DeliveryError> {
        let adapter = self
            .adapter(conversation.platform())
            .ok_or_else(|| DeliveryError::Unreachable(conversation.clone()))?;
        with_retries(conversation, || {
            adapter.react(conversation, message_id, emoji)
        })
        .await
    }

    async fn send_file(
        &self,
        conversation: &ConversationId,
        file: &OutboundFile,
    ) -> Result<(), DeliveryError> {
        let adapter = self
            .adapter(conversation.platform())
            .ok_or_else(|| DeliveryError::Unreachable(conversation.clone()))?;
        let span =
            tracing::info_span!("send_file", conversation_id = %conversation, name = %file.name);
        with_retries(conversation, || adapter.send_file(conversation, file))
            .instrument(span)
            .await
    }

    async fn deliver(&self, response: &OutboundResponse) -> Result<(), DeliveryError> {
        let conversation = &response.conversation;
        self.stop_typing(conversation);
        let adapter = self
            .adapter(conversation.platform())
            .ok_or_else(|| DeliveryError::Unreachable(conversation.clone()))?;
        let shown = if response.turn_answer {
            self.drafts.finish(conversation).await
        } else {
            None
        };
        let span = tracing::info_span!("deliver", agent_id = %response.agent_id, conversation_id = %conversation);
        let Some(text) = response.content.text() else {
            if let Some(shown) = shown {
                // The turn ended without an answer: the draft goes.
                let deleted = with_retries(conversation, || {
                    adapter.delete(conversation, &shown.message_id)
                });
                if let Err(error) = deleted.instrument(span).await {
                    tracing::warn!(%error, "cannot remove the draft of a skipped answer");
                }
            }
            return Ok(());
        };
        match shown {
            Some(shown) => {
                finish_draft(adapter.as_ref(), conversation, text, shown)
                    .instrument(span)
                    .await
            }
            None => {
                send_text(
                    adapter.as_ref(),
                    conversation,
                    text,
                    response.reply_to.as_deref(),
                )
                .instrument(span)
                .await
            }
        }
    }

    fn stream(&self, draft: &Draft<'_>) {
        let Some(adapter) = self.adapter(draft.conversation.platform()) else {
            return;
        };
        adapter.draft(draft);
        if let Some(interval) = adapter.edit_interval() {
            self.drafts.update(
                &adapter,
                interval,
                draft.conversation,
                draft.reply_to,
                draft.text,
            );
        }
    }

    fn recorded(&self, response: &OutboundResponse) {
        if let Some(adapter) = self.adapter(response.conversation.platform()) {
            adapter.recorded(response);
        }
    }

    fn settled(&self, conversation: &ConversationId) {
        self.stop_typing(conversation);
    }

    fn reaches(&self, conversation: &ConversationId) -> bool {
        self.adapter(conversation.platform()).is_some()
    }
}

impl MessagingManager {
    fn stop_typing(&self, conversation: &ConversationId) {
        if let Ok(mut typing) = self.typing.lock()
            && let Some(token) = typing.remove(conversation.as_str())
        {
            token.cancel();
        }
    }
}

/// Makes the streamed message the answer: its first chunk replaces the draft, the rest
/// follow as new messages. If the draft cannot be edited, the answer is sent anew.
async fn finish_draft(
    adapter: &dyn Adapter,
    conversation: &ConversationId,
    text: &str,
    shown: Shown,
) -> Result<(), DeliveryError> {
    let chunks = split_message(text, adapter.message_limit());
    let Some((first, rest)) = chunks.split_first() else {
        return Ok(());
    };
    if *first != shown.text {
        let edited = with_retries(conversation, || {
            adapter.edit(conversation, &shown.message_id, first)
        })
        .await;
        if let Err(error) = edited {
            tracing::warn!(%error, "cannot make the draft the answer; sending it as a new message");
            return send_text(adapter, conversation, text, None).await;
        }
    }
    for chunk in rest {
        with_retries(conversation, || adapter.respond(conversation, chunk, None)).await?;
    }
    Ok(())
}

/// Splits `text` to the adapter's limit and sends the chunks in order; the first one is
/// threaded under `reply_to`.
pub(super) async fn send_text(
    adapter: &dyn Adapter,
    conversation: &ConversationId,
    text: &str,
    reply_to: Option<&str>,
) -> Result<(), DeliveryError> {
    for (index, chunk) in split_message(text, adapter.message_limit())
        .iter()
        .enumerate()
    {
        let reply_to = if index == 0 { reply_to } else { None };
        with_retries(conversation, || {
            adapter.respond(conversation, chunk, reply_to)
        })
        .await?;
    }
    Ok(())
}

/// Runs a send, retrying transient failures (after the platform's retry-after when it gave
/// one, else with exponential backoff) and failing fast on permanent ones.
async fn with_retries<'a, Attempt, Attempting>(
    conversation: &ConversationId,
    mut send: Attempt,
) -> Result<(), DeliveryError>
where
    Attempt: FnMut() -> Attempting,
    Attempting: Future<Output = Result<(), AdapterError>> + 'a,
{
    let mut backoff = Backoff::new(SEND_BACKOFF, SEND_BACKOFF_MAX);
    let mut attempt = 1;
    loop {
        let error = match tokio::time::timeout(SEND_TIMEOUT, send()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => error,
            Err(_) => {
                AdapterError::transient(format!("no answer within {} s", SEND_TIMEOUT.as_secs()))
            }
        };
        let wait = match &error {
            AdapterError::Transient { retry_after, .. } if attempt < SEND_ATTEMPTS => {
                let step = backoff.next_wait();
                retry_after.unwrap_or(step).min(LONGEST_RETRY_AFTER)
            }
            _ => {
                tracing::error!(%conversation, %error, attempt, "sending failed");
                return Err(DeliveryError::Failed {
                    conversation: conversation.clone(),
                    reason: error.to_string(),
                });
            }
        };
        tracing::warn!(%conversation, %error, attempt, wait_ms = wait.as_millis() as u64, "sending failed; retrying");
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}
