//! The Slack adapter: slack-morphism's Web API client (auth.test, apps.connections.open,
//! chat.postMessage, users.info, assistant.threads.setStatus, reactions.add, and the external
//! upload of files: files.getUploadURLExternal, the upload, files.completeUploadExternal)
//! and its Socket Mode models, over a Socket Mode connection this adapter drives itself, so
//! that an events envelope is acknowledged only after its message is stored and a dropped
//! socket is reported and reconnected by the manager with backoff. Channels are `slack:{team}:{channel}`, threads
//! `slack:{team}:{channel}:{thread_ts}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_util::sync::CancellationToken;

use super::MessagingError;
use super::adapter::{Adapter, AdapterError};
use super::inbound::Inbound;
use crate::config::SlackConfig;
use crate::conversation_id::{ConversationId, Place, Platform};
use crate::message::{InboundMessage, OutboundFile};

mod mrkdwn;
mod shared;

use mrkdwn::markdown_to_mrkdwn;
use shared::{FileFacts, file_facts};

/// Slack truncates longer texts; 4000 is its recommended maximum for readable messages.
pub const MESSAGE_LIMIT: usize = 4000;
/// The assistant status clears itself after a while; refresh it during long turns.
const TYPING_INTERVAL: Duration = Duration::from_secs(20);
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// Between updates of an answer being written (chat.update is a Tier 3 method, about 50 a
/// minute).
const EDIT_INTERVAL: Duration = Duration::from_millis(1200);
/// With no frame at all for this long (not even a pong), the socket is considered lost.
const SILENCE_LIMIT: Duration = Duration::from_secs(100);

#[derive(Debug, Clone)]
struct Identity {
    user_id: String,
}

pub struct SlackAdapter {
    client: Arc<SlackHyperClient>,
    bot_token: SlackApiToken,
    app_token: SlackApiToken,
    user_names: Mutex<HashMap<String, String>>,
    /// Answers are shown as they are written.
    stream: bool,
    /// Fetches shared files from `url_private` with the bot token.
    files: Option<reqwest::Client>,
    /// The largest file fetched (`[media] max_file_mb`).
    max_file_bytes: u64,
}

impl SlackAdapter {
    pub fn new(config: &SlackConfig, max_file_bytes: u64) -> Result<Self, MessagingError> {
        crate::install_crypto_provider();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|error| MessagingError::Setup {
                platform: "slack",
                message: format!("cannot load the system's TLS root certificates: {error}"),
            })?
            .https_or_http()
            .enable_http1()
            .build();
        let mut connector = SlackClientHyperConnector::with_connector(https);
        if let Some(api_url) = &config.api_url {
            connector = connector.with_slack_api_url(api_url);
        }
        Ok(Self {
            client: Arc::new(SlackClient::new(connector)),
            bot_token: SlackApiToken::new(config.bot_token.clone().into()),
            app_token: SlackApiToken::new(config.app_token.clone().into()),
            user_names: Mutex::new(HashMap::new()),
            stream: config.stream,
            files: super::files::client(),
            max_file_bytes,
        })
    }

    /// A user's display name, asked once per user; the id itself when Slack cannot say.
    async fn user_name(&self, user_id: &str) -> String {
        if let Some(name) = self
            .user_names
            .lock()
            .ok()
            .and_then(|names| names.get(user_id).cloned())
        {
            return name;
        }
        let session = self.client.open_session(&self.bot_token);
        let request = SlackApiUsersInfoRequest::new(SlackUserId::new(user_id.to_string()));
        let name = match session.users_info(&request).await {
            Ok(response) => {
                let user = response.user;
                let profile = user.profile.as_ref();
                profile
                    .and_then(|profile| profile.display_name.clone())
                    .filter(|name| !name.is_empty())
                    .or_else(|| profile.and_then(|profile| profile.real_name.clone()))
                    .or(user.name)
                    .unwrap_or_else(|| user_id.to_string())
            }
            Err(error) => {
                tracing::debug!(%error, %user_id, "users.info failed");
                return user_id.to_string();
            }
        };
        if let Ok(mut names) = self.user_names.lock() {
            names.insert(user_id.to_string(), name.clone());
        }
        name
    }

    /// Replaces `<@U123>` and `<@U123|name>` with `@name`.
    async fn resolve_mentions(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("<@") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('>') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let inner = &after[..end];
            let (user_id, label) = inner.split_once('|').unwrap_or((inner, ""));
            let name = if label.is_empty() {
                self.user_name(user_id).await
            } else {
                label.to_string()
            };
            out.push('@');
            out.push_str(&name);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The inbound message of an Events API callback, when it is a new message the bot
    /// should see: not its own or another bot's, not an edit or deletion.
    /// `facts` are what Slack says of the files beyond slack-morphism's model, by file id.
    async fn inbound(
        &self,
        callback: &SlackPushEventCallback,
        facts: &HashMap<String, FileFacts>,
        identity: &Identity,
    ) -> Option<InboundMessage> {
        let team = callback.team_id.value().to_string();
        let mut files = Vec::new();
        let (origin, text, user) = match &callback.event {
            SlackEventCallbackBody::Message(event) => {
                let allowed_subtype = event.subtype.as_ref().is_none_or(|subtype| {
                    matches!(
                        subtype,
                        SlackMessageEventType::ThreadBroadcast | SlackMessageEventType::FileShare
                    )
                });
                if !allowed_subtype || event.sender.bot_id.is_some() {
                    return None;
                }
                files = event
                    .content
                    .as_ref()
                    .and_then(|content| content.files.clone())
                    .unwrap_or_default();
                let text = event
                    .content
                    .as_ref()
                    .and_then(|content| content.text.clone());
                // A file shared without a comment is a message too.
                let text = match text {
                    Some(text) => text,
                    None if !files.is_empty() => String::new(),
                    None => return None,
                };
                (&event.origin, text, event.sender.user.clone()?)
            }
            SlackEventCallbackBody::AppMention(event) => {
                if event.edited.is_some() {
                    return None;
                }
                (
                    &event.origin,
                    event.content.text.clone()?,
                    event.user.clone(),
                )
            }
            _ => return None,
        };
        let user = user.value().to_string();
        if user == identity.user_id {
            return None;
        }
        let channel = origin.channel.as_ref()?.value().to_string();
        let ts = origin.ts.value().to_string();
        let thread = origin
            .thread_ts
            .as_ref()
            .map(|thread| thread.value().as_str())
            .filter(|thread| *thread != ts);
        let conversation = ConversationId::slack(&team, &channel, thread);
        let mentions_bot = text.contains(&format!("<@{}>", identity.user_id))
            || text.contains(&format!("<@{}|", identity.user_id));
        let content = self.resolve_mentions(&text).await;
        let sender = self.user_name(&user).await;
        let mut inbound = InboundMessage::new(conversation, sender, content);
        inbound.sender_id = Some(format!("slack:{user}"));
        inbound.platform_message_id = Some(ts);
        inbound.mentions_bot = mentions_bot;
        inbound.is_direct = origin
            .channel_type
            .as_ref()
            .is_some_and(|kind| kind.value() == "im");
        for file in &files {
            let name = file
                .name
                .clone()
                .unwrap_or_else(|| format!("file-{}", file.id.0));
            let Some(url) = file
                .url_private_download
                .as_ref()
                .or(file.url_private.as_ref())
            else {
                inbound.attachments.push(crate::message::InboundAttachment {
                    media_type: crate::message::media_type_of(&name).to_string(),
                    name,
                    body: crate::message::AttachmentBody::Unavailable {
                        size: 0,
                        reason: "Slack gave no url_private for it".to_string(),
                    },
                });
                continue;
            };
            let fact = facts.get(&file.id.0).copied().unwrap_or_default();
            let media_type = fact.media_type(file, &name);
            let linked = super::files::Linked {
                url: url.as_str(),
                name: &name,
                media_type: &media_type,
                size: fact.size,
            };
            inbound.attachments.push(
                super::files::download(
                    self.files.as_ref(),
                    linked,
                    Some(&self.bot_token.token_value.0),
                    self.max_file_bytes,
                )
                .await,
            );
        }
        Some(inbound)
    }

    /// Handles one Socket Mode frame; returns the acknowledgement to send, if any.
    async fn handle_frame(
        &self,
        text: &str,
        inbound: &Inbound,
        identity: &Identity,
    ) -> Result<Option<Value>, AdapterError> {
        let envelope: Value = serde_json::from_str(text).map_err(|error| {
            AdapterError::transient(format!("unreadable Socket Mode frame: {error}"))
        })?;
        let envelope_id = envelope["envelope_id"].as_str().map(str::to_string);
        let ack = envelope_id.map(|id| json!({ "envelope_id": id }));
        let payload = envelope["payload"].clone();
        match envelope["type"].as_str().unwrap_or_default() {
            "hello" => {
                inbound.connected();
                tracing::info!("connected to Slack Socket Mode");
                Ok(None)
            }
            "disconnect" => Err(AdapterError::transient(format!(
                "Slack asked to reconnect ({})",
                envelope["reason"].as_str().unwrap_or("no reason given")
            ))),
            "events_api" => {
                let facts = file_facts(&payload);
                let callback = match serde_json::from_value::<SlackPushEventCallback>(payload) {
                    Ok(callback) => callback,
                    Err(error) => {
                        tracing::debug!(%error, "unmodelled Slack event acknowledged");
                        return Ok(ack);
                    }
                };
                if let Some(message) = self.inbound(&callback, &facts, identity).await {
                    // Acknowledge only what is stored; Slack redelivers the rest.
                    if let Err(error) = inbound.deliver(message).await {
                        tracing::error!(%error, "a Slack message could not be stored; not acknowledged");
                        return Ok(None);
                    }
                }
                Ok(ack)
            }
            "slash_commands" => {
                let command = match serde_json::from_value::<SlackCommandEvent>(payload) {
                    Ok(command) => command,
                    Err(error) => {
                        tracing::warn!(%error, "unreadable Slack slash command");
                        return Ok(ack);
                    }
                };
                let text = format!(
                    "{} {}",
                    command.command.value(),
                    command.text.unwrap_or_default()
                );
                let mut message = InboundMessage::new(
                    ConversationId::slack(
                        command.team_id.value(),
                        command.channel_id.value(),
                        None,
                    ),
                    self.user_name(command.user_id.value()).await,
                    text.trim(),
                );
                message.sender_id = Some(format!("slack:{}", command.user_id.value()));
                message.platform_message_id = Some(command.trigger_id.value().to_string());
                message.mentions_bot = true;
                if let Err(error) = inbound.deliver(message).await {
                    tracing::error!(%error, "a Slack command could not be handled");
                }
                Ok(ack)
            }
            _ => Ok(ack),
        }
    }

    /// The channel and thread of a Slack conversation.
    /// Posts one message; its `ts`. Top-level messages get top-level answers (a new thread
    /// would be a new conversation); thread conversations are answered in their thread.
    async fn post(
        &self,
        conversation: &ConversationId,
        text: &str,
    ) -> Result<String, AdapterError> {
        let (channel, thread) = Self::target(conversation)?;
        let mut request = SlackApiChatPostMessageRequest::new(
            channel,
            SlackMessageContent::new().with_text(markdown_to_mrkdwn(text)),
        );
        request.thread_ts = thread;
        self.client
            .open_session(&self.bot_token)
            .chat_post_message(&request)
            .await
            .map(|posted| posted.ts.to_string())
            .map_err(classify)
    }

    fn target(
        conversation: &ConversationId,
    ) -> Result<(SlackChannelId, Option<SlackTs>), AdapterError> {
        match conversation.place() {
            Place::Slack {
                channel, thread, ..
            } => Ok((
                SlackChannelId::new(channel.to_string()),
                thread.map(|thread| SlackTs::new(thread.to_string())),
            )),
            _ => Err(AdapterError::bad_conversation(conversation)),
        }
    }
}

fn classify(error: SlackClientError) -> AdapterError {
    match &error {
        SlackClientError::RateLimitError(rate) => AdapterError::Transient {
            message: error.to_string(),
            retry_after: rate.retry_after,
        },
        SlackClientError::HttpError(http) if http.status_code.is_server_error() => {
            AdapterError::transient(error.to_string())
        }
        SlackClientError::ApiError(api)
            if matches!(
                api.code.as_str(),
                "ratelimited"
                    | "internal_error"
                    | "fatal_error"
                    | "service_unavailable"
                    | "request_timeout"
            ) =>
        {
            AdapterError::transient(error.to_string())
        }
        SlackClientError::HttpProtocolError(_)
        | SlackClientError::SystemError(_)
        | SlackClientError::EndOfStream(_)
        | SlackClientError::SocketModeProtocolError(_) => {
            AdapterError::transient(error.to_string())
        }
        _ => AdapterError::permanent(error.to_string()),
    }
}

#[async_trait::async_trait]
impl Adapter for SlackAdapter {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    fn message_limit(&self) -> usize {
        MESSAGE_LIMIT
    }

    fn typing_interval(&self) -> Option<Duration> {
        Some(TYPING_INTERVAL)
    }

    async fn start(&self, inbound: Inbound, stop: CancellationToken) -> Result<(), AdapterError> {
        let bot = self.client.open_session(&self.bot_token);
        let auth = bot.auth_test().await.map_err(classify)?;
        let identity = Identity {
            user_id: auth.user_id.value().to_string(),
        };
        let app = self.client.open_session(&self.app_token);
        let url = app
            .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
            .await
            .map_err(classify)?
            .url;
        let (mut socket, _) = tokio_tungstenite::connect_async(url.value().as_str())
            .await
            .map_err(|error| {
                AdapterError::transient(format!("cannot open the Slack socket: {error}"))
            })?;
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.tick().await;
        loop {
            let frame = tokio::select! {
                () = stop.cancelled() => {
                    let _ = socket.close(None).await;
                    return Ok(());
                }
                _ = ping.tick() => {
                    socket
                        .send(Frame::Ping(Vec::new().into()))
                        .await
                        .map_err(|error| AdapterError::transient(format!("Slack socket: {error}")))?;
                    continue;
                }
                frame = tokio::time::timeout(SILENCE_LIMIT, socket.next()) => frame,
            };
            let text = match frame {
                Err(_) => return Err(AdapterError::transient("the Slack socket went silent")),
                Ok(None) => return Err(AdapterError::transient("the Slack socket closed")),
                Ok(Some(Err(error))) => {
                    return Err(AdapterError::transient(format!("Slack socket: {error}")));
                }
                Ok(Some(Ok(Frame::Close(reason)))) => {
                    return Err(AdapterError::transient(format!(
                        "the Slack socket closed: {reason:?}"
                    )));
                }
                Ok(Some(Ok(Frame::Text(text)))) => text,
                Ok(Some(Ok(_))) => continue,
            };
            if let Some(ack) = self
                .handle_frame(text.as_str(), &inbound, &identity)
                .await?
            {
                socket
                    .send(Frame::Text(ack.to_string().into()))
                    .await
                    .map_err(|error| AdapterError::transient(format!("Slack socket: {error}")))?;
            }
        }
    }

    async fn respond(
        &self,
        conversation: &ConversationId,
        text: &str,
        _reply_to: Option<&str>,
    ) -> Result<(), AdapterError> {
        self.post(conversation, text).await.map(|_| ())
    }

    fn edit_interval(&self) -> Option<Duration> {
        self.stream.then_some(EDIT_INTERVAL)
    }

    async fn send_editable(
        &self,
        conversation: &ConversationId,
        text: &str,
        _reply_to: Option<&str>,
    ) -> Result<String, AdapterError> {
        self.post(conversation, text).await
    }

    async fn edit(
        &self,
        conversation: &ConversationId,
        message_id: &str,
        text: &str,
    ) -> Result<(), AdapterError> {
        let (channel, _) = Self::target(conversation)?;
        let request = SlackApiChatUpdateRequest::new(
            channel,
            SlackMessageContent::new().with_text(markdown_to_mrkdwn(text)),
            SlackTs::new(message_id.to_string()),
        );
        self.client
            .open_session(&self.bot_token)
            .chat_update(&request)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn delete(
        &self,
        conversation: &ConversationId,
        message_id: &str,
    ) -> Result<(), AdapterError> {
        let (channel, _) = Self::target(conversation)?;
        let request = SlackApiChatDeleteRequest::new(channel, SlackTs::new(message_id.to_string()));
        self.client
            .open_session(&self.bot_token)
            .chat_delete(&request)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    /// Slack names its reactions; the emoji the model gave becomes its name.
    async fn react(
        &self,
        conversation: &ConversationId,
        message_id: &str,
        emoji: &str,
    ) -> Result<(), AdapterError> {
        let (channel, _) = Self::target(conversation)?;
        let name = crate::message::emoji::slack_name(emoji).ok_or_else(|| {
            AdapterError::permanent(format!(
                "`{emoji}` has no Slack name the daemon knows; use one of {}",
                crate::message::emoji::known()
            ))
        })?;
        let request = SlackApiReactionsAddRequest::new(
            channel,
            SlackReactionName::new(name),
            SlackTs::new(message_id.to_string()),
        );
        match self
            .client
            .open_session(&self.bot_token)
            .reactions_add(&request)
            .await
        {
            Ok(_) => Ok(()),
            // Already there (a retry whose first try arrived): the reaction is on the message.
            Err(SlackClientError::ApiError(api)) if api.code == "already_reacted" => Ok(()),
            Err(error) => Err(classify(error)),
        }
    }

    /// Slack's external upload: ask for an upload URL, send the bytes there, then share the
    /// file in the conversation (in its thread, when it is one).
    async fn send_file(
        &self,
        conversation: &ConversationId,
        file: &OutboundFile,
    ) -> Result<(), AdapterError> {
        let (channel, thread) = Self::target(conversation)?;
        let session = self.client.open_session(&self.bot_token);
        let upload = session
            .get_upload_url_external(&SlackApiFilesGetUploadUrlExternalRequest::new(
                file.name.clone(),
                file.bytes.len(),
            ))
            .await
            .map_err(classify)?;
        session
            .files_upload_via_url(&SlackApiFilesUploadViaUrlRequest::new(
                upload.upload_url,
                file.bytes.clone(),
                file.media_type.clone(),
            ))
            .await
            .map_err(classify)?;
        let mut request = SlackApiFilesCompleteUploadExternalRequest::new(vec![
            SlackApiFilesComplete::new(upload.file_id).with_title(file.name.clone()),
        ])
        .with_channel_id(channel);
        request.thread_ts = thread;
        request.initial_comment = file
            .caption
            .as_ref()
            .map(|caption| markdown_to_mrkdwn(caption));
        session
            .files_complete_upload_external(&request)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    /// Slack shows a bot's "typing" only in threads, as the assistant thread status.
    async fn typing(&self, conversation: &ConversationId) -> Result<(), AdapterError> {
        let (channel, Some(thread)) = Self::target(conversation)? else {
            return Ok(());
        };
        let request = SlackApiAssistantThreadsSetStatusRequest::new(
            channel,
            "is typing...".to_string(),
            thread,
        );
        self.client
            .open_session(&self.bot_token)
            .assistant_threads_set_status(&request)
            .await
            .map(|_| ())
            .map_err(classify)
    }
}
