//! Resolving the chat platforms (`[messaging.*]`), `[[bindings]]` and `[memory]`.

use toml::Spanned;

use super::models::normalize_base_url;
use super::raw::{RawBinding, RawMemory, RawMessaging};
use super::{Invalid, Resolver};
use crate::config::{
    AgentConfig, BindingConfig, ConfigError, DEFAULT_MODEL_DOWNLOAD_URL, DiscordConfig,
    EmbedderConfig, MemoryConfig, MessagingConfig, ProviderKind, SlackConfig, TelegramConfig,
};
use crate::conversation_id::{ConversationId, Platform};

impl Resolver<'_> {
    /// A platform is configured when its table is present; its secrets are then required.
    pub(super) fn messaging(&self, raw: &RawMessaging) -> Result<MessagingConfig, ConfigError> {
        let url = |value: &Option<Spanned<String>>, key: &str| {
            value
                .as_ref()
                .map(|url| {
                    normalize_base_url(url.get_ref())
                        .map_err(|message| self.error(Some(url.span()), key, &message))
                })
                .transpose()
        };
        let discord = raw
            .discord
            .as_ref()
            .map(|discord| -> Result<DiscordConfig, ConfigError> {
                Ok(DiscordConfig {
                    enabled: discord.enabled.unwrap_or(true),
                    stream: discord.stream.unwrap_or(true),
                    token: self.secret(&discord.token, "messaging.discord.token")?,
                    allow_bot_messages: discord.allow_bot_messages,
                    api_base: url(&discord.api_base, "messaging.discord.api_base")?,
                })
            })
            .transpose()?;
        let telegram = raw
            .telegram
            .as_ref()
            .map(|telegram| -> Result<TelegramConfig, ConfigError> {
                Ok(TelegramConfig {
                    enabled: telegram.enabled.unwrap_or(true),
                    stream: telegram.stream.unwrap_or(true),
                    token: self.secret(&telegram.token, "messaging.telegram.token")?,
                    api_url: url(&telegram.api_url, "messaging.telegram.api_url")?,
                })
            })
            .transpose()?;
        let slack = raw
            .slack
            .as_ref()
            .map(|slack| -> Result<SlackConfig, ConfigError> {
                Ok(SlackConfig {
                    enabled: slack.enabled.unwrap_or(true),
                    stream: slack.stream.unwrap_or(true),
                    bot_token: self.secret(&slack.bot_token, "messaging.slack.bot_token")?,
                    app_token: self.secret(&slack.app_token, "messaging.slack.app_token")?,
                    api_url: url(&slack.api_url, "messaging.slack.api_url")?,
                })
            })
            .transpose()?;
        Ok(MessagingConfig {
            discord,
            telegram,
            slack,
            ..MessagingConfig::default()
        })
    }

    pub(super) fn memory(&self, raw: &RawMemory) -> Result<MemoryConfig, ConfigError> {
        let download_url = match &raw.model_download_url {
            Some(url) => normalize_base_url(url.get_ref()).map_err(|message| {
                self.error(Some(url.span()), "memory.model_download_url", &message)
            })?,
            None => DEFAULT_MODEL_DOWNLOAD_URL.to_string(),
        };
        let embedder = match raw.embedder.as_ref() {
            None => None,
            Some(value) => match value.get_ref().as_str() {
                "local" => None,
                "none" => Some(EmbedderConfig::None),
                text => {
                    let model = self.model_at(text, Some(value.span()), "memory.embedder")?;
                    let kind = self
                        .providers
                        .get(&model.provider)
                        .map(|provider| provider.kind);
                    if kind == Some(ProviderKind::Anthropic) {
                        let message = format!(
                            "provider `{}` speaks the Anthropic protocol, which has no embeddings endpoint; use \"local\", \"none\" or an OpenAI-compatible provider",
                            model.provider
                        );
                        return Err(self.error(Some(value.span()), "memory.embedder", &message));
                    }
                    Some(EmbedderConfig::Provider { model })
                }
            },
        };
        let embedder = embedder.unwrap_or_else(|| EmbedderConfig::Local {
            model_dir: raw.embedding_model_dir.clone(),
            download: raw.download_model.unwrap_or(true),
            download_url,
        });
        Ok(MemoryConfig {
            embedder,
            maintenance_interval_secs: raw
                .maintenance_interval_secs
                .as_ref()
                .map(|value| self.at_least_one(Some(value), "memory.maintenance_interval_secs", 1))
                .transpose()?,
            capture_every: raw
                .capture_every
                .unwrap_or(crate::config::DEFAULT_CAPTURE_EVERY),
        })
    }

    pub(super) fn bindings(
        &self,
        raw: Vec<RawBinding>,
        agents: &[AgentConfig],
    ) -> Result<Vec<BindingConfig>, ConfigError> {
        let mut bindings = Vec::with_capacity(raw.len());
        for (index, binding) in raw.into_iter().enumerate() {
            let agent = binding.agent.get_ref();
            if !agents.iter().any(|candidate| candidate.id == *agent) {
                let known: Vec<&str> = agents
                    .iter()
                    .map(|candidate| candidate.id.as_str())
                    .collect();
                let message = format!(
                    "unknown agent `{agent}`; configured agents: {}",
                    known.join(", ")
                );
                return Err(self.error(
                    Some(binding.agent.span()),
                    &format!("bindings[{index}].agent"),
                    &message,
                ));
            }
            let name = binding.platform.get_ref();
            let Some(platform) =
                Platform::parse(name).filter(|platform| Platform::CHAT.contains(platform))
            else {
                let message = format!(
                    "unknown platform `{name}`; bindings route the chat platforms: {}",
                    Platform::CHAT.map(Platform::as_str).join(", ")
                );
                return Err(self.error(
                    Some(binding.platform.span()),
                    &format!("bindings[{index}].platform"),
                    &message,
                ));
            };
            bindings.push(BindingConfig {
                agent: binding.agent.into_inner(),
                platform,
                guild_id: binding.guild_id,
                channel_ids: binding.channel_ids,
                chat_id: binding.chat_id,
                team_id: binding.team_id,
                require_mention: binding.require_mention,
            });
        }
        Ok(bindings)
    }
}

/// A delivery target on a chat platform needs that platform's adapter.
pub(super) fn deliverable(
    target: &ConversationId,
    messaging: &MessagingConfig,
) -> Result<(), Invalid> {
    let platform = target.platform();
    if messaging.is_enabled(platform) {
        Ok(())
    } else {
        Err(Invalid(format!(
            "`{target}` needs the {platform} adapter; add an enabled [messaging.{platform}] table"
        )))
    }
}
