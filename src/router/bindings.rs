//! Which agent answers an inbound platform message: the first `[[bindings]]` entry whose
//! platform and scope match wins, else the default agent; `require_mention` bindings only
//! take messages that mention the bot (or are direct messages).

use crate::config::BindingConfig;
use crate::conversation_id::Place;
use crate::message::InboundMessage;

/// The outcome of resolving a message.
pub enum Resolution<'a> {
    /// The id of the agent that answers it.
    Agent(&'a str),
    /// Matched a `require_mention` binding without a mention: not addressed to the bot.
    NotAddressed,
}

pub struct Bindings {
    bindings: Vec<BindingConfig>,
    default_agent: String,
}

impl Bindings {
    pub fn new(bindings: Vec<BindingConfig>, default_agent: String) -> Self {
        Self {
            bindings,
            default_agent,
        }
    }

    pub fn resolve(&self, message: &InboundMessage) -> Resolution<'_> {
        let matched = self
            .bindings
            .iter()
            .find(|binding| matches(binding, message));
        match matched {
            Some(binding) if binding.require_mention && !message.mentions_bot => {
                if message.is_direct {
                    Resolution::Agent(&binding.agent)
                } else {
                    Resolution::NotAddressed
                }
            }
            Some(binding) => Resolution::Agent(&binding.agent),
            None => Resolution::Agent(&self.default_agent),
        }
    }
}

/// Whether a binding's platform and every scope it sets match the message. Discord and Slack
/// servers are `guild_id` / `team_id`; a Telegram chat is `chat_id`; `channel_ids` matches the
/// channel or, for a thread, its parent channel.
fn matches(binding: &BindingConfig, message: &InboundMessage) -> bool {
    if binding.platform != message.conversation.platform() {
        return false;
    }
    let (server, chat, channel) = match message.conversation.place() {
        Place::Telegram { chat } => (None, Some(chat.to_string()), Some(chat.to_string())),
        Place::DiscordChannel { guild, channel } => {
            (Some(guild.to_string()), None, Some(channel.to_string()))
        }
        Place::DiscordDirect { .. } => (None, None, None),
        Place::Slack { team, channel, .. } => {
            (Some(team.to_string()), None, Some(channel.to_string()))
        }
        Place::Portal { .. } | Place::Cron { .. } => return false,
    };
    let server_matches = |wanted: &Option<String>| {
        wanted
            .as_ref()
            .is_none_or(|wanted| server.as_ref() == Some(wanted))
    };
    let chat_matches = binding
        .chat_id
        .as_ref()
        .is_none_or(|wanted| chat.as_ref() == Some(wanted));
    let channel_matches = binding.channel_ids.is_empty()
        || binding.channel_ids.iter().any(|wanted| {
            channel.as_ref() == Some(wanted) || message.thread_parent.as_ref() == Some(wanted)
        });
    server_matches(&binding.guild_id)
        && server_matches(&binding.team_id)
        && chat_matches
        && channel_matches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation_id::{ConversationId, Platform};

    fn binding(platform: Platform) -> BindingConfig {
        BindingConfig {
            agent: "second".into(),
            platform,
            guild_id: None,
            channel_ids: Vec::new(),
            chat_id: None,
            team_id: None,
            require_mention: false,
        }
    }

    fn message(conversation: &str) -> InboundMessage {
        let mut message = InboundMessage::new(
            ConversationId::parse(conversation).expect("conversation id"),
            "someone",
            "hi",
        );
        message.thread_parent = Some("55".to_string());
        message
    }

    #[test]
    fn scopes_must_all_match() {
        let mut discord = binding(Platform::Discord);
        discord.guild_id = Some("1".into());
        discord.channel_ids = vec!["11".into()];
        assert!(matches(&discord, &message("discord:1:11")));
        assert!(!matches(&discord, &message("discord:2:11")));
        assert!(!matches(&discord, &message("discord:1:12")));
        assert!(!matches(&discord, &message("telegram:11")));
        // A thread matches the channel it belongs to.
        discord.channel_ids = vec!["55".into()];
        assert!(matches(&discord, &message("discord:1:99")));

        let mut telegram = binding(Platform::Telegram);
        telegram.chat_id = Some("-100".into());
        assert!(matches(&telegram, &message("telegram:-100")));
        assert!(!matches(&telegram, &message("telegram:42")));

        let mut slack = binding(Platform::Slack);
        slack.team_id = Some("T1".into());
        assert!(matches(&slack, &message("slack:T1:C1")));
        assert!(matches(&slack, &message("slack:T1:C1:1700.1")));
        assert!(!matches(&slack, &message("slack:T2:C1")));
        assert!(matches(&binding(Platform::Slack), &message("slack:T2:C1")));
    }

    #[test]
    fn a_group_binding_that_needs_a_mention_ignores_the_rest() {
        let mut group = binding(Platform::Telegram);
        group.require_mention = true;
        let bindings = Bindings::new(vec![group], "main".into());
        let mut quiet = message("telegram:-100");
        quiet.is_direct = false;
        assert!(matches!(bindings.resolve(&quiet), Resolution::NotAddressed));
        quiet.mentions_bot = true;
        assert!(matches!(
            bindings.resolve(&quiet),
            Resolution::Agent("second")
        ));
        assert!(matches!(
            Bindings::new(Vec::new(), "main".into()).resolve(&quiet),
            Resolution::Agent("main")
        ));
    }
}
