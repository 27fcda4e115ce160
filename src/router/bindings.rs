//! Which agent answers an inbound platform message: the first `[[bindings]]` entry whose
//! platform and scope match wins, else the default agent. A binding with a scope also names
//! its group for the access rules, with its own `require_mention`.

use crate::access::GroupRule;
use crate::config::BindingConfig;
use crate::conversation_id::Place;
use crate::message::InboundMessage;

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

    /// The agent that answers the message, and what the matching binding says about its
    /// group.
    pub fn resolve(&self, message: &InboundMessage) -> (&str, GroupRule) {
        let matched = self
            .bindings
            .iter()
            .find(|binding| matches(binding, message));
        match matched {
            Some(binding) => (
                &binding.agent,
                GroupRule {
                    named: binding.guild_id.is_some()
                        || binding.chat_id.is_some()
                        || binding.team_id.is_some()
                        || !binding.channel_ids.is_empty(),
                    require_mention: binding.require_mention,
                },
            ),
            None => (&self.default_agent, GroupRule::default()),
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
        Place::Portal { .. } | Place::Cron { .. } | Place::Agent { .. } => return false,
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
            require_mention: None,
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
    fn a_scoped_binding_names_its_group_and_its_mention_rule() {
        let mut group = binding(Platform::Telegram);
        group.chat_id = Some("-100".into());
        group.require_mention = Some(false);
        let bindings = Bindings::new(vec![group, binding(Platform::Slack)], "main".into());
        let (agent, rule) = bindings.resolve(&message("telegram:-100"));
        assert_eq!(agent, "second");
        assert!(rule.named);
        assert_eq!(rule.require_mention, Some(false));
        // A platform-only binding routes, but names no group.
        let (agent, rule) = bindings.resolve(&message("slack:T1:C1"));
        assert_eq!(agent, "second");
        assert!(!rule.named);
        let (agent, rule) = bindings.resolve(&message("telegram:-5"));
        assert_eq!(agent, "main");
        assert!(!rule.named && rule.require_mention.is_none());
    }
}
