//! The Telegram adapter (teloxide's Bot API client, long polling). It drives `getUpdates`
//! itself instead of teloxide's dispatcher so that an update's offset is confirmed only after
//! the message is stored: a restart in between redelivers it, and storing is idempotent on the
//! message id. Replies are HTML (rendered from Markdown) with a plain-text fallback.

use std::time::Duration;

use teloxide::net::Download;
use teloxide::payloads::{
    EditMessageTextSetters, GetUpdatesSetters, SendDocumentSetters, SendMessageSetters,
    SendPhotoSetters, SetMessageReactionSetters,
};
use teloxide::prelude::Requester;
use teloxide::types::{
    AllowedUpdate, ChatAction, ChatId, Message, MessageEntityKind, MessageId, ParseMode,
    ReplyParameters, Update, UpdateKind,
};
use teloxide::types::{FileId, InputFile, ReactionType};
use teloxide::{ApiError, Bot, RequestError};
use tokio_util::sync::CancellationToken;

use super::MessagingError;
use super::adapter::{Adapter, AdapterError};
use super::inbound::Inbound;
use crate::config::TelegramConfig;
use crate::conversation_id::{ConversationId, Place, Platform};
use crate::message::{
    AttachmentBody, InboundAttachment, InboundMessage, OutboundFile, collect_capped,
};

/// Telegram's limit on a message's text, after entity parsing.
pub const MESSAGE_LIMIT: usize = 4096;
/// Seconds a `getUpdates` long poll waits for news (below teloxide's 17 s client timeout).
const POLL_TIMEOUT_SECS: u32 = 10;
/// A chat action shows for 5 s; refresh a little sooner.
const TYPING_INTERVAL: Duration = Duration::from_secs(4);
/// Between edits of an answer being written (Telegram: about one message per second per
/// chat).
const EDIT_INTERVAL: Duration = Duration::from_secs(1);

/// The bot's own identity, learnt from `getMe` on connect.
#[derive(Debug, Clone)]
struct Identity {
    id: u64,
    username: String,
}

pub struct TelegramAdapter {
    bot: Bot,
    /// Answers are shown as they are written.
    stream: bool,
    /// The largest file fetched (`[media] max_file_mb`).
    max_file_bytes: u64,
}

/// A file a message carries, before it is fetched.
struct FileRef {
    id: FileId,
    name: String,
    media_type: String,
    size: u64,
}

impl TelegramAdapter {
    /// Sends one message as HTML, falling back to plain text; its id.
    async fn send(
        &self,
        conversation: &ConversationId,
        text: &str,
        reply_to: Option<&str>,
    ) -> Result<String, AdapterError> {
        let chat = chat_of(conversation)?;
        let reply = reply_to
            .and_then(|id| id.parse().ok())
            .map(|id| ReplyParameters::new(MessageId(id)).allow_sending_without_reply());
        let mut html = self
            .bot
            .send_message(chat, markdown_to_html(text))
            .parse_mode(ParseMode::Html);
        if let Some(reply) = &reply {
            html = html.reply_parameters(reply.clone());
        }
        let sent = match html.await {
            Ok(sent) => sent,
            Err(RequestError::Api(ApiError::CantParseEntities(description))) => {
                tracing::warn!(%description, %conversation, "Telegram rejected the HTML; sending plain text");
                let mut plain = self.bot.send_message(chat, text);
                if let Some(reply) = reply {
                    plain = plain.reply_parameters(reply);
                }
                plain.await.map_err(classify)?
            }
            Err(error) => return Err(classify(error)),
        };
        Ok(sent.id.0.to_string())
    }

    pub fn new(config: &TelegramConfig, max_file_bytes: u64) -> Result<Self, MessagingError> {
        let mut bot = Bot::new(config.token.clone());
        if let Some(api_url) = &config.api_url {
            let url = url::Url::parse(api_url).map_err(|error| MessagingError::Setup {
                platform: "telegram",
                message: format!("api_url `{api_url}`: {error}"),
            })?;
            bot = bot.set_api_url(url);
        }
        Ok(Self {
            bot,
            stream: config.stream,
            max_file_bytes,
        })
    }

    /// The message an update carries, when it is one the bot should see. Edits, deletions and
    /// other update kinds are never requested; own messages and messages without text are
    /// skipped. Who may talk to the bot is the router's decision.
    fn inbound(
        &self,
        update: &Update,
        identity: &Identity,
    ) -> Option<(InboundMessage, Vec<FileRef>)> {
        let UpdateKind::Message(message) = &update.kind else {
            return None;
        };
        let from = message.from.as_ref()?;
        if from.id.0 == identity.id {
            return None;
        }
        let files = files_of(message);
        let text = match message.text().or_else(|| message.caption()) {
            Some(text) => text,
            // A photo, document or voice note without a caption is a message too.
            None if !files.is_empty() => "",
            None => {
                tracing::debug!(
                    chat_id = message.chat.id.0,
                    "message without text or file ignored"
                );
                return None;
            }
        };
        let is_direct = message.chat.is_private();
        let mut inbound = InboundMessage::new(
            ConversationId::telegram(message.chat.id.0),
            from.username
                .as_ref()
                .map_or_else(|| from.full_name(), |username| format!("@{username}")),
            text,
        );
        inbound.sender_id = Some(format!("telegram:{}", from.id.0));
        inbound.platform_message_id = Some(message.id.0.to_string());
        inbound.is_direct = is_direct;
        inbound.mentions_bot = mentions(message, identity);
        Some((inbound, files))
    }

    /// Fetches a message's files (`getFile`, then the file endpoint), each up to the size
    /// limit. `Err` (a network failure) leaves the update unconfirmed, to be fetched again;
    /// a file Telegram refuses arrives as unavailable, with its reason.
    async fn fetch(&self, files: Vec<FileRef>) -> Result<Vec<InboundAttachment>, AdapterError> {
        let mut attachments = Vec::with_capacity(files.len());
        for file in files {
            let refused = |body| InboundAttachment {
                name: file.name.clone(),
                media_type: file.media_type.clone(),
                body,
            };
            if file.size > self.max_file_bytes {
                attachments.push(refused(AttachmentBody::TooLarge {
                    size: file.size,
                    limit: self.max_file_bytes,
                }));
                continue;
            }
            let located = match self.bot.get_file(file.id.clone()).await {
                Ok(located) => located,
                Err(error) => match classify(error) {
                    AdapterError::Permanent(message) => {
                        attachments.push(refused(AttachmentBody::Unavailable {
                            size: file.size,
                            reason: message,
                        }));
                        continue;
                    }
                    transient => return Err(transient),
                },
            };
            let stream = self.bot.download_file_stream(&located.path);
            match collect_capped(stream, self.max_file_bytes).await {
                Ok(Ok(bytes)) => attachments.push(InboundAttachment::bytes(
                    file.name.clone(),
                    file.media_type.clone(),
                    bytes,
                )),
                Ok(Err(size)) => attachments.push(refused(AttachmentBody::TooLarge {
                    size,
                    limit: self.max_file_bytes,
                })),
                Err(reason) => {
                    return Err(AdapterError::transient(format!(
                        "cannot download `{}` from Telegram: {reason}",
                        file.name
                    )));
                }
            }
        }
        Ok(attachments)
    }
}

/// The files of a message: the largest size of a photo, a document, a voice note, an audio
/// file.
fn files_of(message: &Message) -> Vec<FileRef> {
    fn mime(mime: Option<&impl ToString>, fallback: &str) -> String {
        mime.map_or_else(|| fallback.to_string(), ToString::to_string)
    }
    let mut files = Vec::new();
    if let Some(largest) = message
        .photo()
        .and_then(|sizes| sizes.iter().max_by_key(|size| size.width * size.height))
    {
        files.push(FileRef {
            id: largest.file.id.clone(),
            name: format!("photo-{}.jpg", message.id.0),
            media_type: "image/jpeg".to_string(),
            size: u64::from(largest.file.size),
        });
    }
    if let Some(document) = message.document() {
        let name = document
            .file_name
            .clone()
            .unwrap_or_else(|| format!("document-{}", message.id.0));
        let guessed = crate::message::media_type_of(&name);
        files.push(FileRef {
            id: document.file.id.clone(),
            media_type: mime(document.mime_type.as_ref(), guessed),
            name,
            size: u64::from(document.file.size),
        });
    }
    if let Some(voice) = message.voice() {
        files.push(FileRef {
            id: voice.file.id.clone(),
            name: format!("voice-{}.ogg", message.id.0),
            media_type: mime(voice.mime_type.as_ref(), "audio/ogg"),
            size: u64::from(voice.file.size),
        });
    }
    if let Some(audio) = message.audio() {
        let name = audio
            .file_name
            .clone()
            .unwrap_or_else(|| format!("audio-{}.mp3", message.id.0));
        files.push(FileRef {
            id: audio.file.id.clone(),
            media_type: mime(audio.mime_type.as_ref(), "audio/mpeg"),
            name,
            size: u64::from(audio.file.size),
        });
    }
    files
}

/// Whether a message addresses the bot: an `@username` mention or command suffix, a text
/// mention of the bot, or a reply to one of its messages.
fn mentions(message: &Message, identity: &Identity) -> bool {
    let handle = format!("@{}", identity.username);
    let entities = message.parse_entities().unwrap_or_default();
    let by_entity = entities.iter().any(|entity| match entity.kind() {
        MessageEntityKind::Mention => entity.text().eq_ignore_ascii_case(&handle),
        MessageEntityKind::BotCommand => entity
            .text()
            .to_ascii_lowercase()
            .ends_with(&handle.to_ascii_lowercase()),
        MessageEntityKind::TextMention { user } => user.id.0 == identity.id,
        _ => false,
    });
    let by_reply = message
        .reply_to_message()
        .and_then(|replied| replied.from.as_ref())
        .is_some_and(|author| author.id.0 == identity.id);
    by_entity || by_reply
}

fn chat_of(conversation: &ConversationId) -> Result<ChatId, AdapterError> {
    match conversation.place() {
        Place::Telegram { chat } => Ok(ChatId(chat)),
        _ => Err(AdapterError::bad_conversation(conversation)),
    }
}

/// Sorts teloxide errors into retryable and not.
fn classify(error: RequestError) -> AdapterError {
    match error {
        RequestError::RetryAfter(seconds) => AdapterError::Transient {
            message: format!("rate limited by Telegram for {} s", seconds.seconds()),
            retry_after: Some(seconds.duration()),
        },
        RequestError::Network(_) | RequestError::InvalidJson { .. } | RequestError::Io(_) => {
            AdapterError::transient(error.to_string())
        }
        RequestError::Api(ApiError::Unknown(description)) => {
            let lowered = description.to_ascii_lowercase();
            let server_side = [
                "internal server error",
                "bad gateway",
                "service unavailable",
                "gateway timeout",
                "too many requests",
            ]
            .iter()
            .any(|prefix| lowered.starts_with(prefix));
            if server_side {
                AdapterError::transient(description)
            } else {
                AdapterError::permanent(description)
            }
        }
        RequestError::Api(_) | RequestError::MigrateToChatId(_) => {
            AdapterError::permanent(error.to_string())
        }
    }
}

#[async_trait::async_trait]
impl Adapter for TelegramAdapter {
    fn platform(&self) -> Platform {
        Platform::Telegram
    }

    fn message_limit(&self) -> usize {
        MESSAGE_LIMIT
    }

    fn typing_interval(&self) -> Option<Duration> {
        Some(TYPING_INTERVAL)
    }

    async fn start(&self, inbound: Inbound, stop: CancellationToken) -> Result<(), AdapterError> {
        let me = self.bot.get_me().await.map_err(classify)?;
        let identity = Identity {
            id: me.user.id.0,
            username: me.username().to_string(),
        };
        // Long polling and a webhook exclude each other.
        match self.bot.get_webhook_info().await {
            Ok(info) if info.url.is_some() => {
                tracing::warn!("a webhook is set for this bot; deleting it to use long polling");
                self.bot.delete_webhook().await.map_err(classify)?;
            }
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "getWebhookInfo failed"),
        }
        inbound.connected();
        tracing::info!(bot = %identity.username, "connected to Telegram");
        // Offset 0 asks for every unconfirmed update: what arrived while we were away, and
        // anything received but not stored before the last stop.
        let mut offset: i32 = 0;
        loop {
            let request = self
                .bot
                .get_updates()
                .offset(offset)
                .timeout(POLL_TIMEOUT_SECS)
                .allowed_updates([AllowedUpdate::Message]);
            let updates = tokio::select! {
                result = request => result.map_err(classify)?,
                () = stop.cancelled() => return Ok(()),
            };
            for update in updates {
                let next = i32::try_from(update.id.0)
                    .unwrap_or(i32::MAX)
                    .saturating_add(1);
                if let Some((mut message, files)) = self.inbound(&update, &identity) {
                    if !files.is_empty() {
                        message.attachments = self.fetch(files).await?;
                    }
                    // Not stored: return without moving the offset, so it is delivered again.
                    inbound.deliver(message).await?;
                }
                offset = offset.max(next);
            }
        }
    }

    async fn respond(
        &self,
        conversation: &ConversationId,
        text: &str,
        reply_to: Option<&str>,
    ) -> Result<(), AdapterError> {
        self.send(conversation, text, reply_to).await.map(|_| ())
    }

    async fn react(
        &self,
        conversation: &ConversationId,
        message_id: &str,
        emoji: &str,
    ) -> Result<(), AdapterError> {
        let chat = chat_of(conversation)?;
        let message = message_id_of(message_id)?;
        let emoji = crate::message::emoji::unicode(emoji).ok_or_else(|| {
            AdapterError::permanent(format!("`{emoji}` is no emoji name the daemon knows"))
        })?;
        self.bot
            .set_message_reaction(chat, message)
            .reaction(vec![ReactionType::Emoji { emoji }])
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn send_file(
        &self,
        conversation: &ConversationId,
        file: &OutboundFile,
    ) -> Result<(), AdapterError> {
        let chat = chat_of(conversation)?;
        let input = InputFile::memory(file.bytes.clone()).file_name(file.name.clone());
        let result = if file.is_photo() {
            let mut request = self.bot.send_photo(chat, input);
            if let Some(caption) = &file.caption {
                request = request.caption(caption.clone());
            }
            request.await
        } else {
            let mut request = self.bot.send_document(chat, input);
            if let Some(caption) = &file.caption {
                request = request.caption(caption.clone());
            }
            request.await
        };
        result.map(|_| ()).map_err(classify)
    }

    fn edit_interval(&self) -> Option<Duration> {
        self.stream.then_some(EDIT_INTERVAL)
    }

    async fn send_editable(
        &self,
        conversation: &ConversationId,
        text: &str,
        reply_to: Option<&str>,
    ) -> Result<String, AdapterError> {
        self.send(conversation, text, reply_to).await
    }

    async fn edit(
        &self,
        conversation: &ConversationId,
        message_id: &str,
        text: &str,
    ) -> Result<(), AdapterError> {
        let chat = chat_of(conversation)?;
        let message = message_id_of(message_id)?;
        let html = self
            .bot
            .edit_message_text(chat, message, markdown_to_html(text))
            .parse_mode(ParseMode::Html);
        let result = match html.await {
            Err(RequestError::Api(ApiError::CantParseEntities(_))) => {
                self.bot.edit_message_text(chat, message, text).await
            }
            result => result,
        };
        match result {
            Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
            Err(error) => Err(classify(error)),
        }
    }

    async fn delete(
        &self,
        conversation: &ConversationId,
        message_id: &str,
    ) -> Result<(), AdapterError> {
        let chat = chat_of(conversation)?;
        let message = message_id_of(message_id)?;
        self.bot
            .delete_message(chat, message)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn typing(&self, conversation: &ConversationId) -> Result<(), AdapterError> {
        let chat = chat_of(conversation)?;
        self.bot
            .send_chat_action(chat, ChatAction::Typing)
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

/// A message id we sent, parsed back.
fn message_id_of(message_id: &str) -> Result<MessageId, AdapterError> {
    message_id.parse().map(MessageId).map_err(|_| {
        AdapterError::permanent(format!("`{message_id}` is not a Telegram message id"))
    })
}

/// Renders the Markdown an LLM writes as the HTML subset Telegram accepts: fenced and inline
/// code, bold, italic, strikethrough, links and headings (as bold). Everything else is escaped
/// text; unmatched markers stay literal.
pub fn markdown_to_html(markdown: &str) -> String {
    let mut html = String::with_capacity(markdown.len() + 32);
    let mut lines = markdown.split('\n').peekable();
    let mut first = true;
    while let Some(line) = lines.next() {
        if !first {
            html.push('\n');
        }
        first = false;
        if let Some(info) = line.trim_start().strip_prefix("```") {
            let language = info.trim();
            let mut code = Vec::new();
            let mut closed = false;
            for inner in lines.by_ref() {
                if inner.trim_start().starts_with("```") {
                    closed = true;
                    break;
                }
                code.push(inner);
            }
            let tagged = !language.is_empty()
                && language.chars().all(|character| {
                    character.is_ascii_alphanumeric() || "+-#_".contains(character)
                });
            if tagged {
                html.push_str(&format!("<pre><code class=\"language-{language}\">"));
            } else {
                html.push_str("<pre>");
            }
            html.push_str(&escape(&code.join("\n")));
            html.push_str(if tagged { "</code></pre>" } else { "</pre>" });
            if !closed {
                tracing::debug!("unclosed code fence rendered to the end");
            }
            continue;
        }
        let trimmed = line.trim_start();
        let heading = trimmed.trim_start_matches('#');
        if heading.len() < trimmed.len()
            && heading.starts_with(' ')
            && trimmed.len() - heading.len() <= 6
        {
            html.push_str("<b>");
            html.push_str(&inline(heading.trim()));
            html.push_str("</b>");
        } else {
            html.push_str(&inline(line));
        }
    }
    html
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Inline Markdown of one line.
fn inline(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut rest = line;
    while let Some(character) = rest.chars().next() {
        if character == '`'
            && let Some(end) = rest[1..].find('`')
        {
            out.push_str("<code>");
            out.push_str(&escape(&rest[1..1 + end]));
            out.push_str("</code>");
            rest = &rest[end + 2..];
            continue;
        }
        if character == '['
            && let Some((label, url, used)) = link(rest)
        {
            out.push_str(&format!(
                "<a href=\"{}\">{}</a>",
                escape(url).replace('"', "&quot;"),
                inline(label)
            ));
            rest = &rest[used..];
            continue;
        }
        let mut matched = false;
        for (marker, tag) in [
            ("**", "b"),
            ("__", "b"),
            ("~~", "s"),
            ("*", "i"),
            ("_", "i"),
        ] {
            if let Some(after) = rest.strip_prefix(marker)
                && !after.starts_with(' ')
                && let Some(end) = after.find(marker)
                && end > 0
                && !after[..end].ends_with(' ')
                && (marker != "_" || word_boundary_after(&after[end + 1..]))
            {
                out.push_str(&format!("<{tag}>{}</{tag}>", inline(&after[..end])));
                rest = &after[end + marker.len()..];
                matched = true;
                break;
            }
        }
        if matched {
            continue;
        }
        out.push_str(&escape(&character.to_string()));
        rest = &rest[character.len_utf8()..];
    }
    out
}

/// `snake_case_words` are not italics: a closing `_` must not be followed by a word character.
fn word_boundary_after(rest: &str) -> bool {
    rest.chars()
        .next()
        .is_none_or(|next| !next.is_alphanumeric())
}

/// `[label](url)` at the start of `text`: the label, the url and the bytes used.
fn link(text: &str) -> Option<(&str, &str, usize)> {
    let close = text.find("](")?;
    let label = &text[1..close];
    let after = &text[close + 2..];
    let end = after.find(')')?;
    let url = &after[..end];
    if label.is_empty()
        || url.contains(char::is_whitespace)
        || !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("tg://"))
    {
        return None;
    }
    Some((label, url, close + 2 + end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_telegram_html() {
        assert_eq!(
            markdown_to_html("**bold** and *it* and `a<b`"),
            "<b>bold</b> and <i>it</i> and <code>a&lt;b</code>"
        );
        assert_eq!(
            markdown_to_html("# Title\nx & y"),
            "<b>Title</b>\nx &amp; y"
        );
        assert_eq!(
            markdown_to_html("```rust\nfn main() {}\n```\nafter"),
            "<pre><code class=\"language-rust\">fn main() {}</code></pre>\nafter"
        );
        assert_eq!(
            markdown_to_html("```\n<tag>\n```"),
            "<pre>&lt;tag&gt;</pre>"
        );
        assert_eq!(
            markdown_to_html("see [docs](https://example.com/a?b=1&c=2)"),
            "see <a href=\"https://example.com/a?b=1&amp;c=2\">docs</a>"
        );
        assert_eq!(
            markdown_to_html("snake_case_name stays"),
            "snake_case_name stays"
        );
        assert_eq!(markdown_to_html("2 * 3 * 4"), "2 * 3 * 4");
        assert_eq!(markdown_to_html("~~gone~~"), "<s>gone</s>");
    }
}
