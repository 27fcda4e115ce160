//! Who may talk to the agents and who may make them act. Deny by default: the owners and
//! members named in `[access]` and the members the owner approved are known; an unknown person
//! writing a direct message gets a pairing code and nothing else; a group is read only when a
//! binding or `[access] groups` names it, and then only messages that mention the bot unless
//! configured otherwise; one person's flood in a group is cut off after a rate.

mod store;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::config::AccessConfig;
use crate::conversation_id::{ConversationId, Place};
use crate::database::now_millis;
use crate::message::{Authority, InboundMessage};
pub use store::{AccessStore, ApprovedMember, Pairing};

/// Characters of a pairing code: no 0/O or 1/I/L to misread.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LENGTH: usize = 8;
const RATE_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("access store: {0}")]
    Store(#[from] sqlx::Error),
    #[error("no pairing code `{0}` is waiting (it may have expired)")]
    UnknownCode(String),
}

/// What to do with an inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Read it; the agent may act on it as far as this authority allows.
    Admit(Authority),
    /// A stranger's direct message: answer with the pairing code, nothing else.
    Pair(Pairing),
    /// Not read: a group nobody allowed, or a group message that does not mention the bot.
    Ignore(&'static str),
    /// The sender exceeded the group rate; `notify` is true the first time in the window.
    Throttle { notify: bool },
}

/// How a group is configured, from the binding that matched it (if any).
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupRule {
    /// A binding names the group with a scope (a guild, chat, team or channel).
    pub named: bool,
    /// The binding's `require_mention`, overriding `[access] require_mention`.
    pub require_mention: Option<bool>,
}

/// The access lists and the state behind them (approved members, pairings, group rates).
pub struct Access {
    /// `[access]` as configured; replaced whole by a config reload.
    config: RwLock<Arc<AccessConfig>>,
    /// The owners and the members, named in the config or approved (kept in step with the
    /// store); replaced together with the config.
    people: RwLock<People>,
    store: AccessStore,
    rates: Mutex<HashMap<String, Rate>>,
}

#[derive(Default)]
struct People {
    owners: HashSet<String>,
    members: HashSet<String>,
}

impl People {
    fn add(&mut self, user_id: String, authority: Authority) {
        match authority {
            Authority::Owner => self.owners.insert(user_id),
            Authority::Member | Authority::Guest => self.members.insert(user_id),
        };
    }
}

/// One person's messages in the current window.
struct Rate {
    started: Instant,
    count: u32,
    notified: bool,
}

impl Access {
    /// The lists of `config` with the members approved so far.
    pub async fn open(config: AccessConfig, store: AccessStore) -> Result<Self, AccessError> {
        let access = Self {
            config: RwLock::new(Arc::new(AccessConfig::default())),
            people: RwLock::new(People::default()),
            store,
            rates: Mutex::new(HashMap::new()),
        };
        access.reconfigure(config).await?;
        Ok(access)
    }

    /// Applies a new `[access]` (a config reload): owners, members, groups and the rules take
    /// effect for the next message. Approved members stay approved; pairing codes stay valid.
    pub async fn reconfigure(&self, config: AccessConfig) -> Result<(), AccessError> {
        let mut people = People {
            owners: config.owners.iter().cloned().collect(),
            members: config.members.iter().cloned().collect(),
        };
        for approved in self.store.members().await? {
            people.add(approved.user_id, approved.authority);
        }
        // Both locks are held only for the swap; a poisoned one is overwritten whole.
        match self.people.write() {
            Ok(mut current) => *current = people,
            Err(poisoned) => *poisoned.into_inner() = people,
        }
        match self.config.write() {
            Ok(mut current) => *current = Arc::new(config),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(config),
        }
        Ok(())
    }

    pub fn config(&self) -> Arc<AccessConfig> {
        match self.config.read() {
            Ok(config) => config.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The authority of a known person; `None` for a stranger.
    pub fn authority_of(&self, sender_id: Option<&str>) -> Option<Authority> {
        let sender_id = sender_id?;
        let people = self.people.read().ok()?;
        if people.owners.contains(sender_id) {
            return Some(Authority::Owner);
        }
        people
            .members
            .contains(sender_id)
            .then_some(Authority::Member)
    }

    /// Decides what becomes of a message from a chat platform. (Messages from the HTTP API
    /// carry the owner's authority without asking: the API is the owner's.)
    pub async fn admit(
        &self,
        message: &InboundMessage,
        group: GroupRule,
    ) -> Result<Admission, AccessError> {
        let known = self.authority_of(message.sender_id.as_deref());
        let config = self.config();
        if message.is_direct {
            return match known {
                Some(authority) => Ok(Admission::Admit(authority)),
                None if config.pairing => self.pairing(message).await.map(Admission::Pair),
                None => Ok(Admission::Ignore("a direct message from a stranger")),
            };
        }
        if !group.named && !allows_group(&config, &message.conversation) {
            return Ok(Admission::Ignore("a group nobody allowed"));
        }
        if group.require_mention.unwrap_or(config.require_mention) && !message.mentions_bot {
            return Ok(Admission::Ignore(
                "a group message that does not mention the bot",
            ));
        }
        let authority = known.unwrap_or(Authority::Guest);
        if authority != Authority::Owner
            && let Some(sender_id) = &message.sender_id
            && let Some(notify) = self.over_rate(sender_id, config.group_messages_per_minute)
        {
            return Ok(Admission::Throttle { notify });
        }
        Ok(Admission::Admit(authority))
    }

    /// Counts a message of `sender_id` in a group: `None` when under the rate (`limit` per
    /// minute), else whether this is the first message over it in the window (the one to
    /// answer).
    fn over_rate(&self, sender_id: &str, limit: u32) -> Option<bool> {
        if limit == 0 {
            return None;
        }
        let mut rates = self.rates.lock().ok()?;
        let now = Instant::now();
        let rate = rates.entry(sender_id.to_string()).or_insert(Rate {
            started: now,
            count: 0,
            notified: false,
        });
        if now.duration_since(rate.started) >= RATE_WINDOW {
            *rate = Rate {
                started: now,
                count: 0,
                notified: false,
            };
        }
        rate.count += 1;
        if rate.count <= limit {
            return None;
        }
        let notify = !rate.notified;
        rate.notified = true;
        Some(notify)
    }

    /// The stranger's pairing: the one given before if it is still valid, else a new one.
    async fn pairing(&self, message: &InboundMessage) -> Result<Pairing, AccessError> {
        let now = now_millis();
        let user_id = match &message.sender_id {
            Some(user_id) => user_id.clone(),
            None => format!("{}:unknown", message.conversation.platform()),
        };
        if let Some(pairing) = self.store.pairing_of(&user_id, now).await? {
            return Ok(pairing);
        }
        let ttl =
            i64::try_from(self.config().pairing_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let pairing = Pairing {
            code: new_code(),
            user_id,
            display_name: message.sender.clone(),
            conversation_id: message.conversation.to_string(),
            created_at: now,
            expires_at: now.saturating_add(ttl),
        };
        self.store.insert_pairing(&pairing).await?;
        tracing::info!(user_id = %pairing.user_id, name = %pairing.display_name, "pairing code given to a stranger");
        Ok(pairing)
    }

    /// Makes the person behind a pairing code a member, or an owner (how an owner who does
    /// not know their numeric id becomes one: they write to the bot, the owner of the machine
    /// approves their code as an owner).
    pub async fn approve(&self, code: &str, authority: Authority) -> Result<Pairing, AccessError> {
        let code = code.trim().to_ascii_uppercase();
        let authority = if authority == Authority::Owner {
            Authority::Owner
        } else {
            Authority::Member
        };
        let pairing = self
            .store
            .approve(&code, now_millis(), authority)
            .await?
            .ok_or(AccessError::UnknownCode(code))?;
        if let Ok(mut people) = self.people.write() {
            people.add(pairing.user_id.clone(), authority);
        }
        tracing::info!(user_id = %pairing.user_id, authority = authority.as_str(), "approved");
        Ok(pairing)
    }

    /// Removes an approved member; false when `user_id` was not one. Members named in the
    /// config stay until the config changes.
    pub async fn revoke(&self, user_id: &str) -> Result<bool, AccessError> {
        let removed = self.store.revoke(user_id).await?;
        let config = self.config();
        if removed && let Ok(mut people) = self.people.write() {
            if !config.members.iter().any(|member| member == user_id) {
                people.members.remove(user_id);
            }
            if !config.owners.iter().any(|owner| owner == user_id) {
                people.owners.remove(user_id);
            }
        }
        Ok(removed)
    }

    /// Approved members and waiting pairings, for `spacebot access list`.
    pub async fn approved(&self) -> Result<Vec<ApprovedMember>, AccessError> {
        Ok(self.store.members().await?)
    }

    pub async fn pending(&self) -> Result<Vec<Pairing>, AccessError> {
        Ok(self.store.pending(now_millis()).await?)
    }

    /// Lines for the status and the startup log: who can do what, and what is missing.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let no_owner = self
            .people
            .read()
            .map_or(true, |people| people.owners.is_empty());
        if no_owner {
            warnings.push(
                "no owners in [access] and none approved: nobody on a chat platform can make \
                 the agents act (write to the bot, then `spacebot access approve CODE --owner`)"
                    .to_string(),
            );
        }
        warnings
    }
}

/// Whether `[access] groups` names the conversation's group.
fn allows_group(config: &AccessConfig, conversation: &ConversationId) -> bool {
    let candidates: Vec<String> = match conversation.place() {
        Place::Telegram { chat } => vec![format!("telegram:{chat}")],
        Place::DiscordChannel { guild, channel } => {
            vec![
                format!("discord:{guild}"),
                format!("discord:{guild}:{channel}"),
            ]
        }
        Place::Slack { team, channel, .. } => {
            vec![format!("slack:{team}"), format!("slack:{team}:{channel}")]
        }
        Place::DiscordDirect { .. }
        | Place::Portal { .. }
        | Place::Cron { .. }
        | Place::Agent { .. } => Vec::new(),
    };
    candidates
        .iter()
        .any(|candidate| config.groups.contains(candidate))
}

/// A fresh, hard-to-guess pairing code.
fn new_code() -> String {
    let random = uuid::Uuid::new_v4();
    // Bytes 6 and 8 carry the UUID's version and variant bits, not randomness.
    random
        .as_bytes()
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != 6 && *index != 8)
        .map(|(_, byte)| byte)
        .take(CODE_LENGTH)
        .map(|byte| CODE_ALPHABET[usize::from(*byte) % CODE_ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests;
