//! The typed conversation id, `{platform}:{scope}`: which platform a conversation is on and
//! where on it. Every place that needs to know a conversation's platform, chat or thread reads
//! it here instead of splitting strings, and `Platform` is the one list of platforms.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a conversation happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// The daemon's own HTTP API: the CLI, the dashboard, the OpenAI-compatible endpoint.
    Portal,
    Telegram,
    Discord,
    Slack,
    /// A scheduled job's run (`cron:{job}:{run}`); nobody types into it.
    Cron,
    /// Messages from another agent of the daemon (`agent:{from}`); the answer goes back to it.
    Agent,
}

impl Platform {
    pub const ALL: [Platform; 6] = [
        Platform::Portal,
        Platform::Telegram,
        Platform::Discord,
        Platform::Slack,
        Platform::Cron,
        Platform::Agent,
    ];

    /// The remote chat platforms, each reached through its adapter.
    pub const CHAT: [Platform; 3] = [Platform::Discord, Platform::Telegram, Platform::Slack];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Portal => "portal",
            Platform::Telegram => "telegram",
            Platform::Discord => "discord",
            Platform::Slack => "slack",
            Platform::Cron => "cron",
            Platform::Agent => "agent",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|platform| platform.as_str() == name)
    }

    /// A place people read: something can be delivered there (every platform but cron and
    /// agent).
    pub fn receives_messages(self) -> bool {
        match self {
            Platform::Portal | Platform::Telegram | Platform::Discord | Platform::Slack => true,
            // Another agent hears only answers to what it asked, through the courier.
            Platform::Cron | Platform::Agent => false,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a conversation id: {reason}")]
pub struct ConversationIdError {
    pub text: String,
    pub reason: String,
}

/// A conversation: its platform and its scope on it, kept with the canonical text form that
/// stores, events and URLs use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationId {
    platform: Platform,
    text: String,
}

/// The scope of a conversation id, typed per platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place<'a> {
    /// `portal:{name}`.
    Portal { name: &'a str },
    /// `telegram:{chat}`: a private chat (positive) or a group (negative).
    Telegram { chat: i64 },
    /// `discord:dm:{user}`.
    DiscordDirect { user: u64 },
    /// `discord:{guild}:{channel}`: a guild channel or thread (threads are channels).
    DiscordChannel { guild: u64, channel: u64 },
    /// `slack:{team}:{channel}`, or `slack:{team}:{channel}:{thread_ts}` for a thread.
    Slack {
        team: &'a str,
        channel: &'a str,
        thread: Option<&'a str>,
    },
    /// `cron:{job}:{run}`.
    Cron { job: &'a str, run: &'a str },
    /// `agent:{from}`: what the agent `from` sends this one.
    Agent { from: &'a str },
}

/// Longest portal conversation name a client may choose.
const PORTAL_NAME_LIMIT: usize = 128;

impl ConversationId {
    /// Parses and validates `{platform}:{scope}`.
    pub fn parse(text: &str) -> Result<Self, ConversationIdError> {
        let error = |reason: &str| ConversationIdError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let (platform, _) = text.split_once(':').ok_or_else(|| {
            error("expected `platform:scope`, e.g. `telegram:12345` or `portal:cli`")
        })?;
        let platform = Platform::parse(platform).ok_or_else(|| {
            error(&format!(
                "unknown platform `{platform}`; expected one of {}",
                Platform::ALL.map(Platform::as_str).join(", ")
            ))
        })?;
        let id = Self {
            platform,
            text: text.to_string(),
        };
        id.read_place()?;
        Ok(id)
    }

    /// `portal:{name}` for a client-chosen name (a full `portal:` id is accepted too).
    pub fn portal(name: &str) -> Result<Self, ConversationIdError> {
        let name = name.strip_prefix("portal:").unwrap_or(name);
        Self::parse(&format!("portal:{name}"))
    }

    pub fn telegram(chat: i64) -> Self {
        Self::trusted(Platform::Telegram, format!("telegram:{chat}"))
    }

    pub fn discord_direct(user: u64) -> Self {
        Self::trusted(Platform::Discord, format!("discord:dm:{user}"))
    }

    pub fn discord_channel(guild: u64, channel: u64) -> Self {
        Self::trusted(Platform::Discord, format!("discord:{guild}:{channel}"))
    }

    /// A Slack channel, or a thread in it. Slack ids never contain `:`.
    pub fn slack(team: &str, channel: &str, thread: Option<&str>) -> Self {
        let text = match thread {
            Some(thread) => format!("slack:{team}:{channel}:{thread}"),
            None => format!("slack:{team}:{channel}"),
        };
        Self::trusted(Platform::Slack, text)
    }

    /// The conversation of one run of a scheduled job.
    pub fn cron(job: &str, run: &str) -> Self {
        Self::trusted(Platform::Cron, format!("cron:{job}:{run}"))
    }

    /// Where the agent `from`'s messages to another agent arrive (an agent id is
    /// `[a-z0-9_-]`).
    pub fn agent(from: &str) -> Self {
        Self::trusted(Platform::Agent, format!("agent:{from}"))
    }

    fn trusted(platform: Platform, text: String) -> Self {
        Self { platform, text }
    }

    pub fn platform(&self) -> Platform {
        self.platform
    }

    /// The canonical text form, `{platform}:{scope}`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// What follows `{platform}:`.
    pub fn scope(&self) -> &str {
        &self.text[self.platform.as_str().len() + 1..]
    }

    /// The scope, typed. Never fails for an id that was parsed or built here.
    pub fn place(&self) -> Place<'_> {
        self.read_place()
            .unwrap_or(Place::Portal { name: self.scope() })
    }

    fn read_place(&self) -> Result<Place<'_>, ConversationIdError> {
        let invalid = |reason: String| ConversationIdError {
            text: self.text.clone(),
            reason,
        };
        let scope = self.scope();
        let parts: Vec<&str> = scope.split(':').collect();
        let number = |part: &str| {
            part.parse::<u64>()
                .ok()
                .filter(|number| *number != 0)
                .ok_or_else(|| invalid(format!("`{part}` is not a Discord id")))
        };
        let non_empty = parts.iter().all(|part| !part.is_empty());
        match self.platform {
            Platform::Portal => {
                let valid = !scope.is_empty()
                    && scope.len() <= PORTAL_NAME_LIMIT
                    && scope.chars().all(|character| {
                        character.is_ascii_alphanumeric() || "-_.@:".contains(character)
                    });
                if valid {
                    Ok(Place::Portal { name: scope })
                } else {
                    Err(invalid(format!(
                        "a portal conversation name is 1-{PORTAL_NAME_LIMIT} characters of \
                         letters, digits and - _ . @ :"
                    )))
                }
            }
            Platform::Telegram => scope
                .parse::<i64>()
                .map(|chat| Place::Telegram { chat })
                .map_err(|_| {
                    invalid("a Telegram conversation is `telegram:{chat id}`".to_string())
                }),
            Platform::Discord => match parts.as_slice() {
                ["dm", user] => Ok(Place::DiscordDirect {
                    user: number(user)?,
                }),
                [guild, channel] => Ok(Place::DiscordChannel {
                    guild: number(guild)?,
                    channel: number(channel)?,
                }),
                _ => Err(invalid(
                    "a Discord conversation is `discord:{guild}:{channel}` or `discord:dm:{user}`"
                        .to_string(),
                )),
            },
            Platform::Slack => match parts.as_slice() {
                [team, channel] if non_empty => Ok(Place::Slack {
                    team,
                    channel,
                    thread: None,
                }),
                [team, channel, thread] if non_empty => Ok(Place::Slack {
                    team,
                    channel,
                    thread: Some(thread),
                }),
                _ => Err(invalid(
                    "a Slack conversation is `slack:{team}:{channel}` or \
                     `slack:{team}:{channel}:{thread_ts}`"
                        .to_string(),
                )),
            },
            Platform::Cron => match parts.as_slice() {
                [job, run] if non_empty => Ok(Place::Cron { job, run }),
                _ => Err(invalid(
                    "a scheduled run's conversation is `cron:{job}:{run}`".to_string(),
                )),
            },
            Platform::Agent => {
                let valid = !scope.is_empty()
                    && scope.len() <= 64
                    && scope.chars().all(|character| {
                        character.is_ascii_lowercase()
                            || character.is_ascii_digit()
                            || "-_".contains(character)
                    });
                if valid {
                    Ok(Place::Agent { from: scope })
                } else {
                    Err(invalid(
                        "an agent's conversation is `agent:{agent id}`".to_string(),
                    ))
                }
            }
        }
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

impl FromStr for ConversationId {
    type Err = ConversationIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl AsRef<str> for ConversationId {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl Serialize for ConversationId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ConversationId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_parses_to_its_typed_place() {
        let cases = [
            ("portal:cli", Place::Portal { name: "cli" }),
            ("telegram:-100123", Place::Telegram { chat: -100123 }),
            ("discord:dm:42", Place::DiscordDirect { user: 42 }),
            (
                "discord:7:9",
                Place::DiscordChannel {
                    guild: 7,
                    channel: 9,
                },
            ),
            (
                "slack:T1:C2",
                Place::Slack {
                    team: "T1",
                    channel: "C2",
                    thread: None,
                },
            ),
            (
                "slack:T1:C2:1700000000.0001",
                Place::Slack {
                    team: "T1",
                    channel: "C2",
                    thread: Some("1700000000.0001"),
                },
            ),
            (
                "cron:digest:0190",
                Place::Cron {
                    job: "digest",
                    run: "0190",
                },
            ),
            ("agent:research", Place::Agent { from: "research" }),
        ];
        for (text, place) in cases {
            let id = ConversationId::parse(text).expect(text);
            assert_eq!(id.place(), place, "{text}");
            assert_eq!(id.as_str(), text);
            assert_eq!(id.to_string(), text);
        }
    }

    #[test]
    fn the_constructors_write_what_parse_reads() {
        for id in [
            ConversationId::telegram(-5),
            ConversationId::discord_direct(3),
            ConversationId::discord_channel(1, 2),
            ConversationId::slack("T", "C", Some("1.2")),
            ConversationId::cron("job", "run"),
            ConversationId::agent("main"),
            ConversationId::portal("web").expect("portal"),
        ] {
            assert_eq!(ConversationId::parse(id.as_str()), Ok(id.clone()));
        }
        assert_eq!(
            ConversationId::portal("portal:x").map(|id| id.to_string()),
            Ok("portal:x".to_string())
        );
    }

    #[test]
    fn malformed_ids_are_refused_with_a_reason() {
        for text in [
            "cli",
            "webhook:x",
            "telegram:abc",
            "discord:0:1",
            "discord:g1:c1",
            "discord:dm",
            "slack:T1",
            "slack:T1::x",
            "portal:",
            "portal:has space",
            "cron:job",
            "agent:",
            "agent:Main",
        ] {
            let error = ConversationId::parse(text).expect_err(text);
            assert!(!error.reason.is_empty(), "{text}");
        }
        assert!(ConversationId::portal(&"x".repeat(129)).is_err());
    }
}
