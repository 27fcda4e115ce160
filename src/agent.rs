//! One agent at run time: its home directory, its database, and the channel task of every
//! conversation it is in, created on the first message.

pub mod channel;
pub mod identity;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::AgentConfig;
use crate::conversation::{ConversationStore, MessageStatus, NewMessage, Role, StoreError};
use crate::event::{EventBus, ProcessEvent};
use crate::llm::{LlmManager, UsageRecorder};
use crate::messaging::{InboundMessage, MessagingManager};
use crate::prompts::Prompts;
use crate::tools::ToolSet;
use channel::{Channel, ChannelInput};
pub use identity::Identity;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent `{0}` is shutting down and accepts no new messages")]
    ShuttingDown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of a routed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOutcome {
    /// Stored and queued on its channel.
    Accepted { message_id: String },
    /// Already received (same platform message id); nothing was done.
    Duplicate,
}

/// Everything a channel of this agent shares with its siblings.
pub struct AgentContext {
    pub agent_id: String,
    pub config: AgentConfig,
    pub home: PathBuf,
    pub pool: SqlitePool,
    pub store: ConversationStore,
    pub usage: UsageRecorder,
    pub events: EventBus,
    pub llm: Arc<LlmManager>,
    pub prompts: Arc<Prompts>,
    pub channel_tools: Arc<ToolSet>,
    /// The agent's long-term memory (branch tools write it, the channel prompt shows it).
    pub memory: Arc<crate::memory::MemoryStore>,
    pub messaging: Arc<MessagingManager>,
    pub identity: Identity,
    pub inbox_capacity: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentStatus {
    pub id: String,
    pub display_name: String,
    pub default: bool,
    pub active_channels: usize,
    pub channel_model: String,
}

pub struct AgentRuntime {
    context: Arc<AgentContext>,
    channels: Mutex<HashMap<String, mpsc::Sender<ChannelInput>>>,
    tasks: TaskTracker,
    /// Cancelled when the shutdown deadline passes: channels still in a turn are stopped.
    abort: CancellationToken,
    accepting: AtomicBool,
}

impl AgentRuntime {
    pub fn new(context: AgentContext) -> Self {
        Self {
            context: Arc::new(context),
            channels: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            abort: CancellationToken::new(),
            accepting: AtomicBool::new(true),
        }
    }

    pub fn id(&self) -> &str {
        &self.context.agent_id
    }

    pub fn context(&self) -> &AgentContext {
        &self.context
    }

    pub fn status(&self) -> AgentStatus {
        AgentStatus {
            id: self.context.agent_id.clone(),
            display_name: self.context.config.display_name.clone(),
            default: self.context.config.default,
            active_channels: self.channels.lock().map_or(0, |channels| channels.len()),
            channel_model: self.context.config.routing.channel.to_string(),
        }
    }

    /// Stores an inbound message, then queues it on its conversation's channel. Waits while the
    /// channel's inbox is full rather than dropping anything.
    pub async fn route(&self, message: InboundMessage) -> Result<RouteOutcome, AgentError> {
        if !self.accepting.load(Ordering::Acquire) {
            return Err(AgentError::ShuttingDown(self.context.agent_id.clone()));
        }
        let stored = self
            .context
            .store
            .insert(&NewMessage {
                id: &message.id,
                conversation_id: &message.conversation_id,
                role: Role::User,
                sender: &message.sender,
                content: &message.content,
                platform_message_id: message.platform_message_id.as_deref(),
                status: MessageStatus::Pending,
            })
            .await?;
        let Some(stored) = stored else {
            tracing::debug!(conversation_id = %message.conversation_id, "duplicate inbound message ignored");
            return Ok(RouteOutcome::Duplicate);
        };
        self.context.events.publish(ProcessEvent::MessageReceived {
            agent_id: self.context.agent_id.clone(),
            conversation_id: stored.conversation_id.clone(),
            message_id: stored.id.clone(),
            sender: stored.sender.clone(),
            content: stored.content.clone(),
        });
        let message_id = stored.id.clone();
        let conversation_id = stored.conversation_id.clone();
        self.dispatch(&conversation_id, ChannelInput::Message(stored))
            .await;
        Ok(RouteOutcome::Accepted { message_id })
    }

    /// Starts a channel for every conversation with messages still owed an answer (after a
    /// restart).
    pub async fn resume_pending(&self) -> Result<usize, AgentError> {
        let conversations = self.context.store.conversations_with_pending().await?;
        for conversation_id in &conversations {
            tracing::info!(agent_id = %self.context.agent_id, %conversation_id, "answering messages received before the restart");
            self.dispatch(conversation_id, ChannelInput::Wake).await;
        }
        Ok(conversations.len())
    }

    async fn dispatch(&self, conversation_id: &str, mut input: ChannelInput) {
        // A send fails only when the channel task has ended; the message is already stored
        // as pending, so a fresh channel picks it up.
        for _ in 0..3 {
            let Some(sender) = self.channel_sender(conversation_id) else {
                return;
            };
            match sender.send(input).await {
                Ok(()) => return,
                Err(mpsc::error::SendError(returned)) => {
                    input = returned;
                    if let Ok(mut channels) = self.channels.lock() {
                        channels.remove(conversation_id);
                    }
                }
            }
        }
        tracing::error!(%conversation_id, "channel keeps failing to start; the message stays pending");
    }

    fn channel_sender(&self, conversation_id: &str) -> Option<mpsc::Sender<ChannelInput>> {
        let mut channels = self.channels.lock().ok()?;
        if let Some(sender) = channels.get(conversation_id) {
            return Some(sender.clone());
        }
        if !self.accepting.load(Ordering::Acquire) {
            return None;
        }
        let (sender, receiver) = mpsc::channel(self.context.inbox_capacity);
        let channel = Channel::new(self.context.clone(), conversation_id.to_string(), receiver);
        let span = tracing::info_span!(
            "channel",
            agent_id = %self.context.agent_id,
            conversation_id = %conversation_id,
        );
        let abort = self.abort.clone();
        self.tasks.spawn(
            async move {
                tokio::select! {
                    () = channel.run() => {}
                    () = abort.cancelled() => tracing::warn!("turn stopped at the shutdown deadline"),
                }
            }
            .instrument(span),
        );
        channels.insert(conversation_id.to_string(), sender.clone());
        Some(sender)
    }

    /// Stops intake, lets every channel finish what it has queued, and waits up to `grace`.
    /// Messages not answered by then stay pending and are answered after the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.accepting.store(false, Ordering::Release);
        if let Ok(mut channels) = self.channels.lock() {
            // Dropping the senders closes every inbox; channels drain and exit.
            channels.clear();
        }
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(agent_id = %self.context.agent_id, grace_secs = grace.as_secs(), "turns still running at the shutdown deadline; their messages will be answered after restart");
            self.abort.cancel();
            self.tasks.wait().await;
        }
        self.context.pool.close().await;
    }
}

/// Creates an agent's home (`agents/{id}/` with `workspace/` and the identity files).
pub async fn prepare_home(
    agents_root: &Path,
    config: &AgentConfig,
    prompts: &Prompts,
) -> std::io::Result<PathBuf> {
    let home = agents_root.join(&config.id);
    tokio::fs::create_dir_all(home.join("workspace")).await?;
    identity::seed(&home, &config.display_name, prompts).await?;
    Ok(home)
}
