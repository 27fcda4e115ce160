//! What `AgentRuntime` tells the daemon, the API and the metrics about its agent: its status,
//! token usage, gauges, conversations and transcripts, running processes and what the cortex
//! saw, and the workspace files the API hands out. It only reads.

use crate::conversation::{ConversationSummary, StoredAttachment, StoredMessage};
use crate::event::ProcessType;
use crate::llm::{UsageQuery, UsageRow};
use crate::metrics::AgentSnapshot;

use super::{AgentError, AgentRuntime};
use crate::agent::cortex::CortexSnapshot;
use crate::agent::processes::ProcessSummary;

#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentStatus {
    pub id: String,
    pub display_name: String,
    pub default: bool,
    pub active_channels: usize,
    pub channel_model: String,
    /// Tokens spent today (UTC), and the daily budget when one is set.
    pub tokens_today: u64,
    pub daily_token_budget: Option<u64>,
    /// Today's budget is spent: turns answer so without calling a model.
    pub budget_spent: bool,
    /// The model voice notes are transcribed with; `None`: they are not heard.
    pub transcription_model: Option<String>,
}

impl AgentRuntime {
    pub fn status(&self) -> AgentStatus {
        let config = &self.agent.config;
        AgentStatus {
            id: config.id.clone(),
            display_name: config.display_name.clone(),
            default: config.default,
            active_channels: self.channels.lock().map_or(0, |channels| channels.len()),
            channel_model: self.agent.tool_loop.routing().channel.to_string(),
            tokens_today: self.agent.stores.usage.spent_today(),
            daily_token_budget: config.daily_token_budget,
            budget_spent: self.agent.tool_loop.budget_spent().is_some(),
            transcription_model: self
                .agent
                .tool_loop
                .routing()
                .transcription
                .as_ref()
                .map(ToString::to_string),
        }
    }

    /// Token usage since `since` (Unix milliseconds), by day, model and process kind.
    pub async fn usage(&self, since: i64) -> Result<Vec<UsageRow>, AgentError> {
        Ok(self.agent.stores.usage.report(UsageQuery { since }).await?)
    }

    /// Its running processes, channel inboxes, unanswered messages and memories (the
    /// scheduled jobs are the daemon's to count).
    pub async fn gauges(&self) -> AgentSnapshot {
        let mut gauges = AgentSnapshot {
            agent: self.id().to_string(),
            ..AgentSnapshot::default()
        };
        for process in self.agent.processes.list(None) {
            match process.kind {
                ProcessType::Branch => gauges.branches += 1,
                ProcessType::Worker => gauges.workers += 1,
                ProcessType::Channel
                | ProcessType::Compactor
                | ProcessType::Cortex
                | ProcessType::Capture => {}
            }
        }
        let depths: Vec<u64> = self
            .channels
            .lock()
            .map(|channels| {
                channels
                    .values()
                    .map(|channel| channel.depth() as u64)
                    .collect()
            })
            .unwrap_or_default();
        gauges.channels = depths.len() as u64;
        gauges.inbox_depth = depths.iter().sum();
        gauges.inbox_depth_max = depths.iter().copied().max().unwrap_or(0);
        match self.agent.stores.conversations.pending_count().await {
            Ok(count) => gauges.pending_messages = count,
            Err(error) => {
                tracing::warn!(%error, agent_id = %self.id(), "cannot count pending messages")
            }
        }
        match self.agent.stores.memory.counts_by_type().await {
            Ok(counts) => gauges.memories = counts,
            Err(error) => tracing::warn!(%error, agent_id = %self.id(), "cannot count memories"),
        }
        gauges
    }
    /// Conversations with their message counts, most recent first.
    pub async fn conversations(&self) -> Result<Vec<ConversationSummary>, AgentError> {
        Ok(self.agent.stores.conversations.list().await?)
    }

    /// The last `limit` messages of a conversation, oldest first.
    pub async fn transcript(
        &self,
        conversation_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, AgentError> {
        Ok(self
            .agent
            .stores
            .conversations
            .recent(conversation_id, limit)
            .await?)
    }

    /// The attachments of these messages, in the order they were stored.
    pub async fn attachments(
        &self,
        message_ids: &[String],
    ) -> Result<Vec<StoredAttachment>, AgentError> {
        Ok(self
            .agent
            .stores
            .conversations
            .attachments_of(message_ids)
            .await?)
    }

    /// Running branches and workers, of one conversation or of all.
    pub fn processes(&self, conversation_id: Option<&str>) -> Vec<ProcessSummary> {
        self.agent.processes.list(conversation_id)
    }

    /// What the cortex watches and did.
    pub fn cortex(&self) -> CortexSnapshot {
        self.agent.cortex.snapshot()
    }

    /// Tools and models that keep failing, one line each.
    pub fn degraded(&self) -> Vec<String> {
        crate::agent::channel::degraded(&self.agent)
    }

    /// A file of the agent's workspace (what `send_file` links to in the web chat and the
    /// API), up to the file size limit: its name and bytes.
    pub async fn workspace_file(&self, path: &str) -> Result<(String, Vec<u8>), AgentError> {
        let workspace = self.agent.workspace.clone();
        let limit = self.agent.media.max_file_bytes;
        let requested = path.to_string();
        let contents = tokio::task::spawn_blocking(move || workspace.read(&requested, limit))
            .await
            .map_err(|error| {
                AgentError::Attachment(crate::sandbox::SandboxError::Io {
                    path: path.to_string(),
                    source: std::io::Error::other(error.to_string()),
                })
            })?
            .map_err(AgentError::Attachment)?;
        let name = path.rsplit('/').next().unwrap_or(path).to_string();
        Ok((name, contents.bytes))
    }

    /// A file a message of `conversation_id` carried, as the workspace keeps it in that
    /// message's attachments folder under `file` (the last part of its stored path): its
    /// record and bytes. `None` when `file` is no plain file name or that message kept no such
    /// file. Read without following a link, a regular file only.
    pub async fn attachment_file(
        &self,
        conversation_id: &str,
        message_id: &str,
        file: &str,
    ) -> Result<Option<(StoredAttachment, Vec<u8>)>, AgentError> {
        if file.is_empty() || file.len() > 255 || crate::media::file_name(file) != file {
            return Ok(None);
        }
        let path = format!(
            "{}/{file}",
            crate::media::message_folder(conversation_id, message_id)
        );
        let Some(attachment) = self
            .agent
            .stores
            .conversations
            .attachment_at(conversation_id, message_id, &path)
            .await?
        else {
            return Ok(None);
        };
        let workspace = self.agent.workspace.clone();
        let limit = self
            .agent
            .media
            .max_file_bytes
            .max(u64::try_from(attachment.size).unwrap_or(0));
        let requested = path.clone();
        let contents = tokio::task::spawn_blocking(move || workspace.read(&requested, limit))
            .await
            .map_err(|error| {
                AgentError::StoredAttachment(crate::sandbox::SandboxError::Io {
                    path: path.clone(),
                    source: std::io::Error::other(error.to_string()),
                })
            })?
            .map_err(AgentError::StoredAttachment)?;
        if contents.size > contents.bytes.len() as u64 {
            return Err(AgentError::StoredAttachment(
                crate::sandbox::SandboxError::Io {
                    path,
                    source: std::io::Error::other(format!(
                        "the file grew to {} since it was received",
                        crate::media::human_size(contents.size)
                    )),
                },
            ));
        }
        Ok(Some((attachment, contents.bytes)))
    }
}
