//! The registry of an agent's running branches and workers: what the status block shows, what
//! `route` and `cancel` find, and what the processes API lists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::event::{ProcessId, ProcessType};

/// Why a process was stopped from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Someone asked: the `cancel` tool, a cron run that ended, shutdown.
    Cancelled,
    /// The cortex stopped it: past its wall-clock limit or without progress for too long.
    TimedOut(String),
}

/// A process's stop switch: the token its task waits on, and the reason, set once by
/// whoever stops it first. Cancelling the parent token (shutdown) stops it as `Cancelled`.
#[derive(Debug, Clone)]
pub struct StopSignal {
    token: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
}

impl StopSignal {
    pub fn child_of(parent: &CancellationToken) -> Self {
        Self {
            token: parent.child_token(),
            reason: Arc::new(OnceLock::new()),
        }
    }

    pub fn stop(&self, reason: StopReason) {
        if self.reason.set(reason).is_err() {
            tracing::debug!("already stopping; the first reason stands");
        }
        self.token.cancel();
    }

    /// Waits until the process is stopped, and says why.
    pub async fn stopped(&self) -> StopReason {
        self.token.cancelled().await;
        self.reason.get().cloned().unwrap_or(StopReason::Cancelled)
    }
}

/// A running branch or worker.
pub struct ProcessEntry {
    pub process_id: ProcessId,
    pub conversation_id: String,
    /// The branch prompt or the worker task.
    pub description: String,
    pub status: String,
    pub interactive: bool,
    pub started_at: Instant,
    pub stop: StopSignal,
    /// Follow-ups for an interactive worker.
    pub input: Option<mpsc::Sender<String>>,
    /// An interactive worker waiting for a follow-up (not stalled).
    pub waiting: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessSummary {
    pub process_id: ProcessId,
    pub conversation_id: String,
    pub kind: ProcessType,
    pub description: String,
    pub status: String,
    pub interactive: bool,
    pub waiting: bool,
    pub age_secs: u64,
    #[serde(skip)]
    pub started_at: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("no running process `{0}` in this conversation")]
    NotFound(String),
    #[error("`{0}` matches more than one process; give more of the id")]
    Ambiguous(String),
    #[error("`{0}` is not an interactive worker")]
    NotInteractive(String),
    #[error("worker `{0}` is busy; try again when it reports back")]
    Busy(String),
}

#[derive(Default)]
pub struct ProcessRegistry {
    entries: Mutex<HashMap<ProcessId, ProcessEntry>>,
}

impl ProcessRegistry {
    pub fn register(&self, entry: ProcessEntry) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(entry.process_id.clone(), entry);
        }
    }

    pub fn remove(&self, process_id: &ProcessId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(process_id);
        }
    }

    pub fn set_status(&self, process_id: &ProcessId, status: &str) {
        if let Ok(mut entries) = self.entries.lock()
            && let Some(entry) = entries.get_mut(process_id)
        {
            entry.status = status.to_string();
        }
    }

    pub fn set_waiting(&self, process_id: &ProcessId, waiting: bool) {
        if let Ok(mut entries) = self.entries.lock()
            && let Some(entry) = entries.get_mut(process_id)
        {
            entry.waiting = waiting;
        }
    }

    /// Running processes of any kind in one conversation.
    pub fn count_in(&self, conversation_id: &str) -> usize {
        self.entries.lock().map_or(0, |entries| {
            entries
                .values()
                .filter(|entry| entry.conversation_id == conversation_id)
                .count()
        })
    }

    /// Stops one process; false when it is not running.
    pub fn stop(&self, process_id: &ProcessId, reason: StopReason) -> bool {
        let Ok(entries) = self.entries.lock() else {
            return false;
        };
        match entries.get(process_id) {
            Some(entry) => {
                entry.stop.stop(reason);
                true
            }
            None => false,
        }
    }

    /// Stops every process of a conversation; returns how many.
    pub fn stop_conversation(&self, conversation_id: &str, reason: &StopReason) -> usize {
        let Ok(entries) = self.entries.lock() else {
            return 0;
        };
        let mut stopped = 0;
        for entry in entries
            .values()
            .filter(|entry| entry.conversation_id == conversation_id)
        {
            entry.stop.stop(reason.clone());
            stopped += 1;
        }
        stopped
    }

    /// Running processes of one kind in one conversation.
    pub fn count(&self, conversation_id: &str, kind: ProcessType) -> usize {
        self.entries.lock().map_or(0, |entries| {
            entries
                .values()
                .filter(|entry| {
                    entry.conversation_id == conversation_id
                        && entry.process_id.process_type() == kind
                })
                .count()
        })
    }

    /// Running processes of one kind, in all conversations.
    pub fn count_all(&self, kind: ProcessType) -> usize {
        self.entries.lock().map_or(0, |entries| {
            entries
                .values()
                .filter(|entry| entry.process_id.process_type() == kind)
                .count()
        })
    }

    /// Running processes, oldest first, of one conversation or of all.
    pub fn list(&self, conversation_id: Option<&str>) -> Vec<ProcessSummary> {
        let Ok(entries) = self.entries.lock() else {
            return Vec::new();
        };
        let mut summaries: Vec<(Instant, ProcessSummary)> = entries
            .values()
            .filter(|entry| conversation_id.is_none_or(|wanted| entry.conversation_id == wanted))
            .map(|entry| {
                (
                    entry.started_at,
                    ProcessSummary {
                        process_id: entry.process_id.clone(),
                        conversation_id: entry.conversation_id.clone(),
                        kind: entry.process_id.process_type(),
                        description: entry.description.clone(),
                        status: entry.status.clone(),
                        interactive: entry.interactive,
                        waiting: entry.waiting,
                        age_secs: entry.started_at.elapsed().as_secs(),
                        started_at: entry.started_at,
                    },
                )
            })
            .collect();
        summaries.sort_by_key(|(started_at, _)| *started_at);
        summaries.into_iter().map(|(_, summary)| summary).collect()
    }

    /// Cancels a process of the conversation named by its id (full, or a unique prefix,
    /// with or without the `worker:`/`branch:` prefix).
    pub fn cancel(&self, conversation_id: &str, name: &str) -> Result<ProcessId, LookupError> {
        let entries = self
            .entries
            .lock()
            .map_err(|_| LookupError::NotFound(name.to_string()))?;
        let entry = find(&entries, conversation_id, name)?;
        entry.stop.stop(StopReason::Cancelled);
        Ok(entry.process_id.clone())
    }

    /// Hands a follow-up to an interactive worker of the conversation.
    pub fn route(
        &self,
        conversation_id: &str,
        name: &str,
        message: String,
    ) -> Result<ProcessId, LookupError> {
        let entries = self
            .entries
            .lock()
            .map_err(|_| LookupError::NotFound(name.to_string()))?;
        let entry = find(&entries, conversation_id, name)?;
        let input = entry
            .input
            .as_ref()
            .ok_or_else(|| LookupError::NotInteractive(name.to_string()))?;
        input
            .try_send(message)
            .map_err(|_| LookupError::Busy(name.to_string()))?;
        Ok(entry.process_id.clone())
    }
}

fn find<'a>(
    entries: &'a HashMap<ProcessId, ProcessEntry>,
    conversation_id: &str,
    name: &str,
) -> Result<&'a ProcessEntry, LookupError> {
    let wanted = name
        .trim()
        .trim_start_matches("worker:")
        .trim_start_matches("branch:")
        .to_ascii_lowercase();
    if wanted.len() < 4 {
        return Err(LookupError::NotFound(name.to_string()));
    }
    let mut matches = entries.values().filter(|entry| {
        entry.conversation_id == conversation_id
            && match &entry.process_id {
                ProcessId::Branch(id) | ProcessId::Worker(id) => {
                    id.to_string().starts_with(&wanted)
                }
                ProcessId::Channel(_)
                | ProcessId::Compactor(_)
                | ProcessId::Cortex(_)
                | ProcessId::Capture(_) => false,
            }
    });
    match (matches.next(), matches.next()) {
        (Some(entry), None) => Ok(entry),
        (Some(_), Some(_)) => Err(LookupError::Ambiguous(name.to_string())),
        (None, _) => Err(LookupError::NotFound(name.to_string())),
    }
}
