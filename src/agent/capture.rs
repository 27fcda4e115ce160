//! Automatic memory capture: a silent background pass that reads what a conversation said
//! since the last pass and saves what will still matter (facts, preferences, decisions,
//! events, goals) as typed memories, linking each to the known memory it replaces with
//! `updates`. The channel starts one every `[memory] capture_every` user messages, before
//! the compactor folds history away, and when it goes idle; it never waits for it. What is
//! captured carries its origin: the conversation, the speaker when there was one, and
//! whether it was the owner's word (memories from anyone else's are shown as quoted data).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rig::message::{AssistantContent, Message};
use serde::Deserialize;
use tracing::Instrument;

use super::Agent;
use crate::conversation::{Role, StoreError, StoredMessage, UncapturedSpan};
use crate::conversation_id::{ConversationId, Platform};
use crate::event::ProcessId;
use crate::llm::{LlmError, LlmRequest};
use crate::memory::{
    Audience, MemoryError, MemoryType, NewAssociation, NewMemory, Origin, RecallQuery, Relation,
};
use crate::message::Authority;

/// Messages read by one call of the model.
const SPAN_MESSAGES: usize = 80;
/// Calls one pass makes at most; a longer backlog waits for the next occasion.
const MOST_CALLS: usize = 3;
/// Characters of one message shown to the model.
const MESSAGE_EXCERPT: usize = 1_500;
/// Known memories shown so that the model can say what a new one replaces.
const KNOWN_MEMORIES: usize = 12;
/// Memories one call may save.
const MOST_ITEMS: usize = 12;
/// The longest memory a pass saves, in characters.
const LONGEST_MEMORY: usize = 600;
/// A pass that takes longer is stopped; its messages are read again next time.
const PASS_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a pass was started (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureReason {
    /// `capture_every` user messages arrived since the last pass.
    Interval,
    /// The compactor is about to summarise or drop old history.
    Compaction,
    /// The channel went idle and stops.
    Idle,
}

/// The conversations whose pass is running, and whether another was asked for meanwhile
/// (the running pass read its span when it began): it then runs once more.
#[derive(Debug, Default)]
pub struct Captures {
    running: Mutex<HashMap<String, bool>>,
}

impl Captures {
    fn claim(self: &Arc<Self>, conversation: &str) -> Option<Claim> {
        let mut running = self.running.lock().ok()?;
        if let Some(again) = running.get_mut(conversation) {
            *again = true;
            return None;
        }
        running.insert(conversation.to_string(), false);
        Some(Claim(self.clone(), conversation.to_string()))
    }
}

/// A running pass's hold on its conversation, released when the pass ends however it ends.
struct Claim(Arc<Captures>, String);

impl Claim {
    /// Whether another pass was asked for while this one ran (and clears the request).
    fn asked_again(&self) -> bool {
        self.0
            .running
            .lock()
            .ok()
            .and_then(|mut running| running.get_mut(&self.1).map(std::mem::take))
            .unwrap_or(false)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut running) = self.0.running.lock() {
            running.remove(&self.1);
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum CaptureError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(transparent)]
    Llm(#[from] LlmError),
}

/// Starts a pass over `conversation` in the background, unless capture is off, one is
/// running, or the conversation is a scheduled run (its output is the job's, not a person's).
pub fn spawn(agent: &Arc<Agent>, conversation: &ConversationId, reason: CaptureReason) {
    if agent.config.capture_every == 0 || conversation.platform() == Platform::Cron {
        return;
    }
    let Some(claim) = agent.captures.claim(conversation.as_str()) else {
        return;
    };
    let span = tracing::info_span!(
        parent: None,
        "capture",
        agent_id = %agent.config.id,
        conversation_id = %conversation,
        process_id = %ProcessId::Capture(conversation.to_string()),
    );
    let abort = agent.lifecycle.abort.clone();
    let agent = agent.clone();
    let conversation = conversation.clone();
    agent.lifecycle.tasks.clone().spawn(
        async move {
            tracing::debug!(?reason, "memory capture starts");
            loop {
                tokio::select! {
                    outcome = tokio::time::timeout(PASS_TIMEOUT, run(&agent, &conversation)) => match outcome {
                        Ok(Ok(0)) => tracing::debug!("memory capture found nothing new"),
                        Ok(Ok(saved)) => tracing::info!(saved, "memory capture saved memories"),
                        // The mark stays: the same messages are read at the next occasion.
                        Ok(Err(error)) => {
                            tracing::warn!(%error, "memory capture failed; it is tried again later");
                            break;
                        }
                        Err(_) => {
                            tracing::warn!("memory capture timed out; it is tried again later");
                            break;
                        }
                    },
                    () = abort.cancelled() => break,
                }
                if !claim.asked_again() {
                    break;
                }
            }
        }
        .instrument(span),
    );
}

/// Reads the backlog after the mark, a span per call; returns how many memories it saved.
async fn run(agent: &Agent, conversation: &ConversationId) -> Result<usize, CaptureError> {
    let store = &agent.stores.conversations;
    let mut saved = 0;
    for _ in 0..MOST_CALLS {
        let span = store
            .uncaptured(conversation.as_str(), SPAN_MESSAGES)
            .await?;
        if span.messages.is_empty() {
            break;
        }
        saved += capture_span(agent, conversation, &span).await?;
        store
            .mark_captured(conversation.as_str(), span.through)
            .await?;
        if span.messages.len() < SPAN_MESSAGES {
            break;
        }
    }
    Ok(saved)
}

async fn capture_span(
    agent: &Agent,
    conversation: &ConversationId,
    span: &UncapturedSpan,
) -> Result<usize, CaptureError> {
    let said: Vec<StoredMessage> = span
        .messages
        .iter()
        .filter(|message| message.role == Role::User)
        .cloned()
        .collect();
    if said.is_empty() {
        return Ok(0);
    }
    let standing = super::channel::standing_of(&said, conversation);
    let audience = Audience::of(standing, conversation.as_str());
    let mut query = RecallQuery::new(excerpt_of(&said), KNOWN_MEMORIES);
    query.audience = audience;
    let known = agent.stores.memory.recall(&query).await?.memories;
    let known_ids: HashSet<&str> = known.iter().map(|item| item.memory.id.as_str()).collect();
    let tool_loop = &agent.tool_loop;
    let system = tool_loop.render(
        "capture",
        minijinja::context! {
            agent_name => &agent.config.display_name,
            max_items => MOST_ITEMS,
            types => MemoryType::ALL.map(MemoryType::as_str),
        },
    );
    let input = tool_loop.render(
        "capture_input",
        minijinja::context! {
            known => known.iter().map(|item| minijinja::context! {
                id => &item.memory.id,
                type => item.memory.memory_type.as_str(),
                content => &item.memory.content,
            }).collect::<Vec<_>>(),
            lines => span.messages.iter().map(|message| minijinja::context! {
                date => date_of(message.created_at),
                sender => &message.sender,
                role => message.role,
                content => shorten(&message.content, MESSAGE_EXCERPT),
            }).collect::<Vec<_>>(),
        },
    );
    let request = LlmRequest {
        system,
        messages: vec![Message::user(input)],
        tools: Arc::from([]),
    };
    let response = tool_loop
        .complete(
            &ProcessId::Capture(conversation.to_string()),
            &request,
            &mut (),
        )
        .await?;
    let text: String = response
        .content
        .iter()
        .filter_map(|part| match part {
            AssistantContent::Text(text) => Some(text.text.as_str()),
            AssistantContent::ToolCall(_)
            | AssistantContent::Reasoning(_)
            | AssistantContent::Image(_) => None,
        })
        .collect();
    let Some(items) = parse_items(&text) else {
        // Asking again would most likely get the same answer: these messages are passed.
        tracing::warn!(
            answer = %shorten(&text, 300),
            "the capture model did not answer with a JSON array; these messages are skipped"
        );
        return Ok(0);
    };
    let origin = Origin::conversation(
        conversation.to_string(),
        single_sender(&said),
        standing.authority == Authority::Owner,
    );
    let mut saved = 0;
    for item in items.into_iter().take(MOST_ITEMS) {
        let content = item.content.trim();
        if content.is_empty() || content.chars().count() > LONGEST_MEMORY {
            continue;
        }
        let associations = item
            .updates
            .iter()
            .filter(|id| known_ids.contains(id.as_str()))
            .map(|id| NewAssociation {
                target_id: id.clone(),
                relation: Relation::Updates,
                weight: None,
            })
            .collect();
        agent
            .stores
            .memory
            .save(NewMemory {
                content: content.to_string(),
                memory_type: item.memory_type,
                importance: item.importance.map(|importance| importance.clamp(0.0, 1.0)),
                source: "capture".to_string(),
                origin: origin.clone(),
                associations,
            })
            .await?;
        saved += 1;
    }
    Ok(saved)
}

/// One memory as the capture model writes it.
#[derive(Debug, Deserialize)]
struct CapturedItem {
    content: String,
    #[serde(rename = "type")]
    memory_type: MemoryType,
    #[serde(default)]
    importance: Option<f64>,
    #[serde(default)]
    updates: Vec<String>,
}

/// The items of the first JSON array in `text` (models wrap it in prose or a code fence). An
/// item that does not fit the shape is skipped; `None` when there is no array at all.
fn parse_items(text: &str) -> Option<Vec<CapturedItem>> {
    let start = text.find('[')?;
    let end = text.rfind(']')?;
    let values: Vec<serde_json::Value> = serde_json::from_str(text.get(start..=end)?).ok()?;
    Some(
        values
            .into_iter()
            .filter_map(|value| serde_json::from_value(value).ok())
            .collect(),
    )
}

/// Who said everything in `said`, when it was one person.
fn single_sender(said: &[StoredMessage]) -> Option<String> {
    let first = said.first()?;
    let name = |message: &StoredMessage| {
        message
            .sender_id
            .clone()
            .unwrap_or_else(|| message.sender.clone())
    };
    let sender = name(first);
    said.iter()
        .all(|message| name(message) == sender)
        .then_some(sender)
}

/// What the known memories are looked up by: the newest words said, within a bound.
fn excerpt_of(said: &[StoredMessage]) -> String {
    let mut excerpt = String::new();
    for message in said.iter().rev() {
        if excerpt.len() + message.content.len() > 2_000 {
            break;
        }
        excerpt.push_str(&message.content);
        excerpt.push('\n');
    }
    excerpt
}

fn date_of(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|instant| instant.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn shorten(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_array_is_read_out_of_prose_and_fences_and_bad_items_are_skipped() {
        let answer = "Here you go:\n```json\n[{\"content\": \"Ana's cat is Miso.\", \"type\": \"fact\"},\
                      {\"content\": \"x\", \"type\": \"not-a-type\"},\
                      {\"content\": \"Ana prefers tea now.\", \"type\": \"preference\", \"importance\": 0.7, \"updates\": [\"m1\"]}]\n```";
        let items = parse_items(answer).expect("an array");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].memory_type, MemoryType::Fact);
        assert_eq!(items[1].updates, vec!["m1"]);
        assert!(parse_items("I found nothing worth keeping.").is_none());
        assert_eq!(parse_items("[]").map(|items| items.len()), Some(0));
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        assert_eq!(shorten("héllo", 2), "hé…");
        assert_eq!(shorten("hi", 5), "hi");
    }
}
