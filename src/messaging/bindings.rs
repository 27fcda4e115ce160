//! Which agent answers an inbound platform message: the first `[[bindings]]` entry whose
//! platform and scope match wins, else the default agent; `require_mention` bindings only
//! take messages that mention the bot (or are direct messages).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{InboundMessage, platform_of};
use crate::agent::AgentRuntime;
use crate::config::BindingConfig;

/// The outcome of resolving a message.
pub enum Resolution<'a> {
    Agent(&'a Arc<AgentRuntime>),
    /// Matched a `require_mention` binding without a mention: not addressed to the bot.
    NotAddressed,
    /// The bound or default agent does not exist (cannot happen with a validated config).
    NoAgent,
}

pub struct Bindings {
    agents: BTreeMap<String, Arc<AgentRuntime>>,
    bindings: Vec<BindingConfig>,
    default_agent: String,
}

impl Bindings {
    pub fn new(
        agents: BTreeMap<String, Arc<AgentRuntime>>,
        bindings: Vec<BindingConfig>,
        default_agent: String,
    ) -> Self {
        Self {
            agents,
            bindings,
            default_agent,
        }
    }

    pub fn resolve(&self, message: &InboundMessage) -> Resolution<'_> {
        let matched = self
            .bindings
            .iter()
            .find(|binding| matches(binding, message));
        let agent_id = match matched {
            Some(binding) if binding.require_mention && !message.mentions_bot => {
                if message.is_direct {
                    &binding.agent
                } else {
                    return Resolution::NotAddressed;
                }
            }
            Some(binding) => &binding.agent,
            None => &self.default_agent,
        };
        match self.agents.get(agent_id) {
            Some(agent) => Resolution::Agent(agent),
            None => Resolution::NoAgent,
        }
    }
}

/// Whether a binding's platform and every scope it sets match the message. Discord and Slack
/// servers are `guild_id` / `team_id`; a Telegram chat is `chat_id`; `channel_ids` matches the
/// channel or, for a thread, its parent channel.
fn matches(binding: &BindingConfig, message: &InboundMessage) -> bool {
    let location = &message.location;
    if binding.platform != platform_of(&message.conversation_id) {
        return false;
    }
    let server_matches = |wanted: &Option<String>| {
        wanted
            .as_ref()
            .is_none_or(|wanted| location.server_id.as_ref() == Some(wanted))
    };
    let chat_matches = binding
        .chat_id
        .as_ref()
        .is_none_or(|wanted| location.channel_id.as_ref() == Some(wanted));
    let channel_matches = binding.channel_ids.is_empty()
        || binding.channel_ids.iter().any(|wanted| {
            location.channel_id.as_ref() == Some(wanted)
                || location.parent_channel_id.as_ref() == Some(wanted)
        });
    server_matches(&binding.guild_id)
        && server_matches(&binding.team_id)
        && chat_matches
        && channel_matches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::MessageLocation;

    fn binding(platform: &str) -> BindingConfig {
        BindingConfig {
            agent: "second".into(),
            platform: platform.into(),
            guild_id: None,
            channel_ids: Vec::new(),
            chat_id: None,
            team_id: None,
            require_mention: false,
        }
    }

    fn message(conversation_id: &str, server: Option<&str>, channel: &str) -> InboundMessage {
        let mut message = InboundMessage::new(conversation_id, "someone", "hi");
        message.location = MessageLocation {
            server_id: server.map(str::to_string),
            channel_id: Some(channel.to_string()),
            parent_channel_id: Some("parent".to_string()),
        };
        message
    }

    #[test]
    fn scopes_must_all_match() {
        let mut discord = binding("discord");
        discord.guild_id = Some("g1".into());
        discord.channel_ids = vec!["c1".into()];
        assert!(matches(
            &discord,
            &message("discord:g1:c1", Some("g1"), "c1")
        ));
        assert!(!matches(
            &discord,
            &message("discord:g2:c1", Some("g2"), "c1")
        ));
        assert!(!matches(
            &discord,
            &message("discord:g1:c2", Some("g1"), "c2")
        ));
        assert!(!matches(&discord, &message("telegram:c1", None, "c1")));
        discord.channel_ids = vec!["parent".into()];
        assert!(matches(
            &discord,
            &message("discord:g1:t9", Some("g1"), "t9")
        ));

        let mut telegram = binding("telegram");
        telegram.chat_id = Some("-100".into());
        assert!(matches(&telegram, &message("telegram:-100", None, "-100")));
        assert!(!matches(&telegram, &message("telegram:42", None, "42")));

        let mut slack = binding("slack");
        slack.team_id = Some("T1".into());
        assert!(matches(&slack, &message("slack:T1:C1", Some("T1"), "C1")));
        assert!(!matches(&slack, &message("slack:T2:C1", Some("T2"), "C1")));
        assert!(matches(
            &binding("slack"),
            &message("slack:T2:C1", Some("T2"), "C1")
        ));
    }
}
