//! Resolving `[access]` (owners, members, allowed groups, pairing) and `[sandbox]`, and what
//! the old `dm_allowed_users` keys mean now.

use toml::Spanned;

use super::raw::{RawAccess, RawMedia, RawMessaging, RawSandbox};
use super::{Invalid, Resolver};
use crate::config::{AccessConfig, ConfigError, MediaConfig, SandboxConfig};
use crate::conversation_id::Platform;
use crate::schedule::parse_duration;

/// A pairing code is valid this long unless `[access] pairing_ttl` says otherwise.
const DEFAULT_PAIRING_TTL_SECS: u64 = 3600;

impl Resolver<'_> {
    /// `[access]`, with the members the platforms' `dm_allowed_users` lists add. Notices say
    /// what changed for those lists and when nobody can make the agents act.
    pub(super) fn access(
        &self,
        raw: &RawAccess,
        messaging: &RawMessaging,
        notices: &mut Vec<String>,
    ) -> Result<AccessConfig, ConfigError> {
        let people = |values: &[Spanned<String>], key: &str| {
            values
                .iter()
                .enumerate()
                .map(|(index, value)| {
                    user_id(value.get_ref()).map_err(|message| {
                        self.error(
                            Some(value.span()),
                            &format!("access.{key}[{index}]"),
                            &message,
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let owners = people(&raw.owners, "owners")?;
        let mut members = people(&raw.members, "members")?;
        for (platform, list) in [
            (
                Platform::Telegram,
                messaging.telegram.as_ref().map(|raw| &raw.dm_allowed_users),
            ),
            (
                Platform::Discord,
                messaging.discord.as_ref().map(|raw| &raw.dm_allowed_users),
            ),
        ] {
            for entry in list.into_iter().flatten() {
                let text = entry.get_ref().trim();
                match user_id(&format!("{platform}:{text}")) {
                    Ok(id) => {
                        notices.push(format!(
                            "messaging.{platform}.dm_allowed_users: `{text}` is a member ({id}) \
                             now: they may chat, in direct messages and allowed groups"
                        ));
                        members.push(id);
                    }
                    Err(_) => notices.push(format!(
                        "messaging.{platform}.dm_allowed_users: `{text}` is ignored: only numeric \
                         user ids are trusted (usernames can change hands); put \
                         \"{platform}:<id>\" in [access] members"
                    )),
                }
            }
            if list.is_some_and(Vec::is_empty) {
                notices.push(format!(
                    "messaging.{platform}.dm_allowed_users is empty: that no longer lets \
                     everyone in; unknown people get a pairing code (`spacebot access approve`)"
                ));
            }
        }
        let groups = raw
            .groups
            .iter()
            .enumerate()
            .map(|(index, value)| {
                group(value.get_ref()).map_err(|message| {
                    self.error(
                        Some(value.span()),
                        &format!("access.groups[{index}]"),
                        &message,
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pairing_ttl_secs = match &raw.pairing_ttl {
            None => DEFAULT_PAIRING_TTL_SECS,
            Some(value) => parse_duration(value.get_ref())
                .map_err(|error| self.error(Some(value.span()), "access.pairing_ttl", error))?
                .as_secs(),
        };
        if owners.is_empty() {
            notices.push(
                "[access] owners is empty: nobody on a chat platform can make the agents act \
                 (start workers, schedule jobs, change memories) unless approved as an owner \
                 (`spacebot access approve CODE --owner`); the HTTP API and the CLI still can"
                    .to_string(),
            );
        }
        Ok(AccessConfig {
            owners,
            members,
            groups,
            require_mention: raw.require_mention.unwrap_or(true),
            pairing: raw.pairing.unwrap_or(true),
            pairing_ttl_secs,
            group_messages_per_minute: raw.group_messages_per_minute.unwrap_or(20),
        })
    }

    /// `[media]`: a file limit of at least 1 MB, an image side of at least 64 pixels.
    pub(super) fn media(&self, raw: &RawMedia) -> Result<MediaConfig, ConfigError> {
        let defaults = MediaConfig::default();
        let image_max_side = match &raw.image_max_side {
            None => defaults.image_max_side,
            Some(value) if *value.get_ref() >= 64 => *value.get_ref(),
            Some(value) => {
                return Err(self.error(
                    Some(value.span()),
                    "media.image_max_side",
                    "must be at least 64 (pixels)",
                ));
            }
        };
        Ok(MediaConfig {
            max_file_bytes: self.at_least_one(
                raw.max_file_mb.as_ref(),
                "media.max_file_mb",
                defaults.max_file_bytes >> 20,
            )? << 20,
            image_max_side,
            document_chars: self.at_least_one(
                raw.document_chars.as_ref(),
                "media.document_chars",
                defaults.document_chars,
            )?,
        })
    }

    pub(super) fn sandbox(&self, raw: &RawSandbox) -> Result<SandboxConfig, ConfigError> {
        let defaults = SandboxConfig::default();
        let megabytes = |value: &Option<Spanned<u64>>, key: &str, default: u64| {
            self.at_least_one(value.as_ref(), key, default >> 20)
                .map(|megabytes| megabytes << 20)
        };
        let bwrap = match &raw.bwrap {
            None => defaults.bwrap,
            Some(path) if path.get_ref().is_absolute() => path.get_ref().clone(),
            Some(path) => {
                return Err(self.error(
                    Some(path.span()),
                    "sandbox.bwrap",
                    format!(
                        "`{}` is not an absolute path (leave the key out to use bwrap from \
                         /usr/local/bin, /usr/bin or /bin)",
                        path.get_ref().display()
                    ),
                ));
            }
        };
        Ok(SandboxConfig {
            mode: raw.mode.unwrap_or(defaults.mode),
            bwrap,
            network: raw.network.unwrap_or(defaults.network),
            cpu_secs: self.at_least_one(
                raw.cpu_secs.as_ref(),
                "sandbox.cpu_secs",
                defaults.cpu_secs,
            )?,
            memory_bytes: megabytes(&raw.memory_mb, "sandbox.memory_mb", defaults.memory_bytes)?,
            file_bytes: megabytes(&raw.file_mb, "sandbox.file_mb", defaults.file_bytes)?,
            processes: self.at_least_one(
                raw.processes.as_ref(),
                "sandbox.processes",
                defaults.processes,
            )?,
        })
    }
}

/// A person as `platform:id` with the platform's stable id: Telegram and Discord numeric user
/// ids, Slack member ids (`U…` or `W…`). Usernames are refused: they can change hands.
fn user_id(text: &str) -> Result<String, Invalid> {
    let text = text.trim();
    let refuse = || {
        Invalid(format!(
            "`{text}` is not a stable user id; write telegram:<numeric id>, discord:<numeric id> \
             or slack:<member id such as U024BE7LH> (usernames can change hands)"
        ))
    };
    let (platform, id) = text.split_once(':').ok_or_else(refuse)?;
    let valid = match Platform::parse(platform) {
        Some(Platform::Telegram | Platform::Discord) => {
            id.parse::<u64>().is_ok_and(|number| number > 0)
        }
        Some(Platform::Slack) => {
            id.len() >= 2
                && (id.starts_with('U') || id.starts_with('W'))
                && id
                    .chars()
                    .all(|character| character.is_ascii_uppercase() || character.is_ascii_digit())
        }
        Some(Platform::Portal | Platform::Cron) | None => false,
    };
    if valid {
        Ok(format!("{platform}:{id}"))
    } else {
        Err(refuse())
    }
}

/// A group as `telegram:{chat}`, `discord:{guild}[:{channel}]` or `slack:{team}[:{channel}]`.
fn group(text: &str) -> Result<String, Invalid> {
    let text = text.trim();
    let parts: Vec<&str> = text.split(':').collect();
    let numeric = |part: &str| part.parse::<i64>().is_ok_and(|number| number != 0);
    let valid = match parts.as_slice() {
        ["telegram", chat] => numeric(chat),
        ["discord", guild] => numeric(guild),
        ["discord", guild, channel] => numeric(guild) && numeric(channel),
        ["slack", team] => !team.is_empty(),
        ["slack", team, channel] => !team.is_empty() && !channel.is_empty(),
        _ => false,
    };
    if valid {
        Ok(text.to_string())
    } else {
        Err(Invalid(format!(
            "`{text}` is not a group; write telegram:<chat id>, discord:<guild id> or \
             discord:<guild id>:<channel id>, slack:<team id> or slack:<team id>:<channel id>"
        )))
    }
}
