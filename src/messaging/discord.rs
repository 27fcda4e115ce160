//! The Discord adapter (serenity: gateway for inbound messages, REST for replies). Guild
//! channels and threads (threads are channels) are `discord:{guild}:{channel}`, direct messages
//! `discord:dm:{user}`. Replies reference the triggering message. serenity resumes a dropped gateway session itself; its stage changes
//! feed the adapter's health.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serenity::all::{
    ChannelId, ChannelType, ConnectionStage, Context, CreateAllowedMentions, CreateAttachment,
    CreateMessage, EditMessage, EventHandler, GatewayIntents, Http, HttpBuilder, Message,
    MessageId, Ready, ResumedEvent, ShardManager, ShardStageUpdateEvent, UserId,
};
use serenity::http::HttpError;
use tokio_util::sync::CancellationToken;

use super::MessagingError;
use super::adapter::{Adapter, AdapterError};
use super::inbound::Inbound;
use crate::config::DiscordConfig;
use crate::conversation_id::{ConversationId, Place, Platform};
use crate::message::InboundMessage;

pub const MESSAGE_LIMIT: usize = 2000;
/// Discord shows "typing" for 10 s after a trigger.
const TYPING_INTERVAL: Duration = Duration::from_secs(8);
/// Between edits of an answer being written (Discord: about 5 edits per 5 s per channel).
const EDIT_INTERVAL: Duration = Duration::from_millis(1200);

/// What the gateway event handler and the REST side share.
struct Shared {
    allow_bot_messages: bool,
    /// The bot's own user, learnt from READY.
    bot_user: Mutex<Option<UserId>>,
    /// DM channel per user, so replies need no extra request.
    dm_channels: Mutex<HashMap<u64, ChannelId>>,
    /// Fetches attachments from their URLs.
    files: Option<reqwest::Client>,
    /// The largest file fetched (`[media] max_file_mb`).
    max_file_bytes: u64,
}

pub struct DiscordAdapter {
    token: String,
    api_base: Option<String>,
    http: Arc<Http>,
    shared: Arc<Shared>,
    shards: Mutex<Option<Arc<ShardManager>>>,
    /// Answers are shown as they are written.
    stream: bool,
}

impl DiscordAdapter {
    /// Sends one message; its id.
    async fn send(
        &self,
        conversation: &ConversationId,
        text: &str,
        reply_to: Option<&str>,
    ) -> Result<String, AdapterError> {
        let channel = self.channel_of(conversation).await?;
        let mut message = CreateMessage::new()
            .content(text)
            .allowed_mentions(CreateAllowedMentions::new().replied_user(false));
        if let Some(reply_to) = reply_to
            .and_then(|id| id.parse::<u64>().ok())
            .filter(|id| *id != 0)
        {
            message = message.reference_message((channel, MessageId::new(reply_to)));
        }
        channel
            .send_message(&*self.http, message)
            .await
            .map(|sent| sent.id.get().to_string())
            .map_err(classify)
    }

    pub fn new(config: &DiscordConfig, max_file_bytes: u64) -> Result<Self, MessagingError> {
        let adapter = Self {
            token: config.token.clone(),
            api_base: config.api_base.clone(),
            http: Arc::new(build_http(&config.token, config.api_base.as_deref())),
            shared: Arc::new(Shared {
                allow_bot_messages: config.allow_bot_messages,
                bot_user: Mutex::new(None),
                dm_channels: Mutex::new(HashMap::new()),
                files: super::files::client(),
                max_file_bytes,
            }),
            shards: Mutex::new(None),
            stream: config.stream,
        };
        Ok(adapter)
    }

    /// The channel a conversation's messages go to.
    async fn channel_of(&self, conversation: &ConversationId) -> Result<ChannelId, AdapterError> {
        match conversation.place() {
            Place::DiscordDirect { user } => {
                let known = self
                    .shared
                    .dm_channels
                    .lock()
                    .ok()
                    .and_then(|channels| channels.get(&user).copied());
                if let Some(channel) = known {
                    return Ok(channel);
                }
                let channel = UserId::new(user)
                    .create_dm_channel(&*self.http)
                    .await
                    .map_err(classify)?;
                if let Ok(mut channels) = self.shared.dm_channels.lock() {
                    channels.insert(user, channel.id);
                }
                Ok(channel.id)
            }
            Place::DiscordChannel { channel, .. } => Ok(ChannelId::new(channel)),
            _ => Err(AdapterError::bad_conversation(conversation)),
        }
    }
}

/// REST client. A custom `api_base` (tests, proxies) works only with serenity's ratelimiter
/// off, which then leaves 429 handling to the manager's retries.
fn build_http(token: &str, api_base: Option<&str>) -> Http {
    let builder = HttpBuilder::new(token);
    match api_base {
        Some(base) => builder.proxy(base).ratelimiter_disabled(true).build(),
        None => builder.build(),
    }
}

fn classify(error: serenity::Error) -> AdapterError {
    match &error {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => {
            let status = response.status_code;
            let message = format!("Discord answered {status}: {}", response.error.message);
            if status.as_u16() == 429 || status.is_server_error() {
                AdapterError::transient(message)
            } else {
                AdapterError::permanent(message)
            }
        }
        serenity::Error::Http(HttpError::Request(_)) | serenity::Error::Tungstenite(_) => {
            AdapterError::transient(error.to_string())
        }
        _ => AdapterError::permanent(error.to_string()),
    }
}

struct Handler {
    shared: Arc<Shared>,
    inbound: Inbound,
}

impl Handler {
    fn inbound_message(&self, context: &Context, message: &Message) -> Option<InboundMessage> {
        let bot = self.shared.bot_user.lock().ok().and_then(|user| *user);
        if Some(message.author.id) == bot {
            return None;
        }
        if message.author.bot && !self.shared.allow_bot_messages {
            return None;
        }
        if message.content.trim().is_empty() && message.attachments.is_empty() {
            return None;
        }
        let author = message.author.id.get();
        let (conversation, is_direct, thread_parent) = match message.guild_id {
            None => {
                if let Ok(mut channels) = self.shared.dm_channels.lock() {
                    channels.insert(author, message.channel_id);
                }
                (ConversationId::discord_direct(author), true, None)
            }
            Some(guild) => {
                let parent = context.cache.guild(guild).and_then(|guild| {
                    guild
                        .threads
                        .iter()
                        .find(|thread| thread.id == message.channel_id)
                        .filter(|thread| {
                            matches!(
                                thread.kind,
                                ChannelType::PublicThread
                                    | ChannelType::PrivateThread
                                    | ChannelType::NewsThread
                            )
                        })
                        .and_then(|thread| thread.parent_id)
                });
                (
                    ConversationId::discord_channel(guild.get(), message.channel_id.get()),
                    false,
                    parent.map(|parent| parent.to_string()),
                )
            }
        };
        let mut content = message.content.clone();
        for user in &message.mentions {
            let name = user
                .global_name
                .clone()
                .unwrap_or_else(|| user.name.clone());
            for form in [format!("<@{}>", user.id), format!("<@!{}>", user.id)] {
                content = content.replace(&form, &format!("@{name}"));
            }
        }
        let replied_to_bot = message
            .referenced_message
            .as_ref()
            .is_some_and(|referenced| Some(referenced.author.id) == bot);
        let mut inbound = InboundMessage::new(
            conversation,
            message
                .author
                .global_name
                .clone()
                .unwrap_or_else(|| message.author.name.clone()),
            content,
        );
        inbound.sender_id = Some(format!("discord:{author}"));
        inbound.platform_message_id = Some(message.id.to_string());
        inbound.is_direct = is_direct;
        inbound.mentions_bot = replied_to_bot
            || bot.is_some_and(|bot| message.mentions.iter().any(|user| user.id == bot));
        inbound.thread_parent = thread_parent;
        Some(inbound)
    }
}

#[async_trait::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _context: Context, ready: Ready) {
        if let Ok(mut user) = self.shared.bot_user.lock() {
            *user = Some(ready.user.id);
        }
        tracing::info!(bot = %ready.user.name, "connected to Discord");
        self.inbound.connected();
    }

    async fn resume(&self, _context: Context, _event: ResumedEvent) {
        tracing::info!("Discord gateway session resumed");
        self.inbound.connected();
    }

    async fn shard_stage_update(&self, _context: Context, event: ShardStageUpdateEvent) {
        match event.new {
            ConnectionStage::Connected => self.inbound.connected(),
            _ if event.old == ConnectionStage::Connected => {
                tracing::warn!(stage = ?event.new, "Discord gateway connection lost; reconnecting");
                self.inbound
                    .reconnecting(format!("gateway connection lost ({:?})", event.new));
            }
            _ => {}
        }
    }

    async fn message(&self, context: Context, message: Message) {
        let Some(mut inbound) = self.inbound_message(&context, &message) else {
            return;
        };
        for attachment in &message.attachments {
            let guessed = crate::message::media_type_of(&attachment.filename);
            let file = super::files::Linked {
                url: &attachment.url,
                name: &attachment.filename,
                media_type: attachment.content_type.as_deref().unwrap_or(guessed),
                size: u64::from(attachment.size),
            };
            inbound.attachments.push(
                super::files::download(
                    self.shared.files.as_ref(),
                    file,
                    None,
                    self.shared.max_file_bytes,
                )
                .await,
            );
        }
        if let Err(error) = self.inbound.deliver(inbound).await {
            tracing::error!(%error, message_id = %message.id, "a Discord message could not be stored");
        }
    }
}

#[async_trait::async_trait]
impl Adapter for DiscordAdapter {
    async fn react(
        &self,
        conversation: &ConversationId,
        message_id: &str,
        emoji: &str,
    ) -> Result<(), AdapterError> {
        let channel = self.channel_of(conversation).await?;
        let message = message_id
            .parse::<u64>()
            .ok()
            .filter(|id| *id != 0)
            .map(MessageId::new)
            .ok_or_else(|| {
                AdapterError::permanent(format!("`{message_id}` is not a Discord message id"))
            })?;
        let emoji = crate::message::emoji::unicode(emoji).ok_or_else(|| {
            AdapterError::permanent(format!("`{emoji}` is no emoji name the daemon knows"))
        })?;
        self.http
            .create_reaction(
                channel,
                message,
                &serenity::all::ReactionType::Unicode(emoji),
            )
            .await
            .map_err(classify)
    }

    async fn send_file(
        &self,
        conversation: &ConversationId,
        file: &crate::message::OutboundFile,
    ) -> Result<(), AdapterError> {
        let channel = self.channel_of(conversation).await?;
        let mut message = CreateMessage::new()
            .add_file(CreateAttachment::bytes(
                file.bytes.clone(),
                file.name.clone(),
            ))
            .allowed_mentions(CreateAllowedMentions::new());
        if let Some(caption) = &file.caption {
            message = message.content(caption.clone());
        }
        channel
            .send_message(&*self.http, message)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    fn platform(&self) -> Platform {
        Platform::Discord
    }

    fn message_limit(&self) -> usize {
        MESSAGE_LIMIT
    }

    fn typing_interval(&self) -> Option<Duration> {
        Some(TYPING_INTERVAL)
    }

    async fn start(&self, inbound: Inbound, stop: CancellationToken) -> Result<(), AdapterError> {
        let intents = GatewayIntents::GUILDS
            | GatewayIntents::GUILD_MESSAGES
            | GatewayIntents::DIRECT_MESSAGES
            | GatewayIntents::MESSAGE_CONTENT;
        let handler = Handler {
            shared: self.shared.clone(),
            inbound,
        };
        let http = build_http(&self.token, self.api_base.as_deref());
        let mut client = serenity::client::ClientBuilder::new_with_http(http, intents)
            .event_handler(handler)
            .await
            .map_err(classify)?;
        let shards = client.shard_manager.clone();
        if let Ok(mut slot) = self.shards.lock() {
            *slot = Some(shards.clone());
        }
        let outcome = tokio::select! {
            result = client.start() => result.map_err(classify),
            () = stop.cancelled() => Ok(()),
        };
        shards.shutdown_all().await;
        outcome?;
        if stop.is_cancelled() {
            Ok(())
        } else {
            Err(AdapterError::transient(
                "the Discord gateway connection ended",
            ))
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

    /// Discord allows about five edits per five seconds in a channel.
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
        let channel = self.channel_of(conversation).await?;
        let message = message_id_of(message_id)?;
        channel
            .edit_message(&*self.http, message, EditMessage::new().content(text))
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn delete(
        &self,
        conversation: &ConversationId,
        message_id: &str,
    ) -> Result<(), AdapterError> {
        let channel = self.channel_of(conversation).await?;
        let message = message_id_of(message_id)?;
        channel
            .delete_message(&*self.http, message)
            .await
            .map_err(classify)
    }

    async fn typing(&self, conversation: &ConversationId) -> Result<(), AdapterError> {
        let channel = self.channel_of(conversation).await?;
        channel
            .broadcast_typing(&*self.http)
            .await
            .map_err(classify)
    }

    async fn shutdown(&self) {
        let shards = self.shards.lock().ok().and_then(|mut slot| slot.take());
        if let Some(shards) = shards {
            shards.shutdown_all().await;
        }
    }
}

/// A message id we sent, parsed back.
fn message_id_of(message_id: &str) -> Result<MessageId, AdapterError> {
    message_id
        .parse::<u64>()
        .ok()
        .filter(|id| *id != 0)
        .map(MessageId::new)
        .ok_or_else(|| {
            AdapterError::permanent(format!("`{message_id}` is not a Discord message id"))
        })
}
