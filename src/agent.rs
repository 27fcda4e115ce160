//! One agent at run time: its home directory, its database, and the channel task of every
//! conversation it is in, created on the first message.

pub mod branch;
pub mod channel;
pub mod compactor;
pub mod cortex;
pub mod identity;
pub mod processes;
pub mod turn;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use rig::message::Message;

use crate::config::AgentConfig;
use crate::conversation::{
    ContextBody, ConversationStore, MessageStatus, NewMessage, Role, StoreError, TurnRecord,
};
use crate::cron::CronService;
use crate::event::{EventBus, ProcessEvent};
use crate::llm::{LlmManager, UsageRecorder};
use crate::messaging::{InboundMessage, MessagingManager, new_message_id};
use crate::prompts::Prompts;
use crate::sandbox::{Redactor, Workspace};
use crate::tools::ToolSet;
use channel::{Channel, ChannelDirectory, ChannelInput};
use cortex::CortexState;
pub use identity::Identity;
use processes::{ProcessRegistry, StopReason};

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
    pub workspace: Arc<Workspace>,
    pub redactor: Redactor,
    /// Running branches and workers.
    pub processes: ProcessRegistry,
    /// Scheduled jobs.
    pub cron: Arc<CronService>,
    /// What the cortex observed and did; read by the status block and the API.
    pub cortex: Arc<CortexState>,
    /// Every task of the agent (channels, branches, workers, summaries).
    pub tasks: TaskTracker,
    /// Cancelled at shutdown: channels finish their turn and stop, branches and workers are
    /// cancelled.
    pub closing: CancellationToken,
    /// Cancelled at the shutdown deadline: turns still running are cut off.
    pub abort: CancellationToken,
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
    channels: ChannelDirectory,
    accepting: AtomicBool,
}

impl AgentRuntime {
    pub fn new(context: AgentContext) -> Self {
        Self {
            context: Arc::new(context),
            channels: ChannelDirectory::default(),
            accepting: AtomicBool::new(true),
        }
    }

    pub fn id(&self) -> &str {
        &self.context.agent_id
    }

    pub fn context(&self) -> &AgentContext {
        &self.context
    }

    /// Starts the agent's cortex (supervised; it stops at shutdown).
    pub fn start_cortex(&self) {
        cortex::start(&self.context);
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
        let direct = message.is_direct;
        let conversation_known = self
            .channels
            .lock()
            .is_ok_and(|channels| channels.contains_key(&message.conversation_id));
        if !self.accepting.load(Ordering::Acquire) {
            return Err(AgentError::ShuttingDown(self.context.agent_id.clone()));
        }
        let stored = self
            .context
            .store
            .insert(
                &NewMessage {
                    id: &message.id,
                    conversation_id: &message.conversation_id,
                    role: Role::User,
                    sender: &message.sender,
                    content: &message.content,
                    platform_message_id: message.platform_message_id.as_deref(),
                    status: MessageStatus::Pending,
                },
                conversation_known,
            )
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
        self.dispatch(
            &conversation_id,
            ChannelInput::Message {
                message: stored,
                direct,
            },
        )
        .await;
        Ok(RouteOutcome::Accepted { message_id })
    }

    /// Starts a fresh context for a conversation (`/new`): the stored history before now is no
    /// longer loaded, and a running channel forgets what it holds after its current turn.
    pub async fn reset_conversation(&self, conversation_id: &str) -> Result<(), AgentError> {
        self.context.store.reset_context(conversation_id).await?;
        let sender = self
            .channels
            .lock()
            .ok()
            .and_then(|channels| channels.get(conversation_id).cloned());
        if let Some(sender) = sender {
            // A channel that has just ended reloads from the store, which is already reset.
            let _ = sender.send(ChannelInput::Reset).await;
        }
        Ok(())
    }

    /// Ends a conversation's work: its branches and workers are stopped, its channel stops
    /// after the current turn, and messages it still owes an answer are closed as failed
    /// (a cron firing is over, and must not be run again after a restart).
    pub async fn close_conversation(&self, conversation_id: &str) {
        self.context
            .processes
            .stop_conversation(conversation_id, &StopReason::Cancelled);
        let sender = self
            .channels
            .lock()
            .ok()
            .and_then(|mut channels| channels.remove(conversation_id));
        if let Some(sender) = sender {
            // A channel that has already ended needs no telling.
            let _ = sender.send(ChannelInput::Close).await;
        }
        let store = &self.context.store;
        match store.pending(conversation_id).await {
            Ok(pending) if !pending.is_empty() => {
                let ids: Vec<String> = pending.into_iter().map(|message| message.id).collect();
                let closed = store
                    .record_turn(&TurnRecord {
                        conversation_id,
                        reply: None,
                        answered: &ids,
                        answered_status: MessageStatus::Failed,
                        context: Vec::new(),
                    })
                    .await;
                if let Err(error) = closed {
                    tracing::error!(%error, %conversation_id, "cannot close the messages of an ended conversation");
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, %conversation_id, "cannot read the messages of an ended conversation")
            }
        }
    }

    /// Records text that was sent to a conversation outside a turn (a cron job's outcome):
    /// in its transcript, in the context its channel's model sees, and on the event bus.
    pub async fn announce(&self, conversation_id: &str, text: &str) -> Result<(), AgentError> {
        let context = &self.context;
        let id = new_message_id();
        let stored = context
            .store
            .insert(
                &NewMessage {
                    id: &id,
                    conversation_id,
                    role: Role::Assistant,
                    sender: &context.config.display_name,
                    content: text,
                    platform_message_id: None,
                    status: MessageStatus::Sent,
                },
                false,
            )
            .await?;
        let (_, items) = context
            .store
            .record_turn(&TurnRecord {
                conversation_id,
                reply: None,
                answered: &[],
                answered_status: MessageStatus::Answered,
                context: vec![ContextBody::Message(Message::assistant(text))],
            })
            .await?;
        let sender = self
            .channels
            .lock()
            .ok()
            .and_then(|channels| channels.get(conversation_id).cloned());
        if let Some(sender) = sender {
            // A channel that has just ended loads the stored context when it starts again.
            let _ = sender.send(ChannelInput::Announced(items)).await;
        }
        if let Some(stored) = stored {
            context.events.publish(ProcessEvent::MessageSent {
                agent_id: context.agent_id.clone(),
                conversation_id: conversation_id.to_string(),
                message_id: stored.id,
                in_reply_to: Vec::new(),
                content: stored.content,
            });
        }
        Ok(())
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
                    // Only this ended channel's entry: a successor may already be there.
                    if let Ok(mut channels) = self.channels.lock()
                        && channels
                            .get(conversation_id)
                            .is_some_and(|current| current.same_channel(&sender))
                    {
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
        let channel = Channel::new(
            self.context.clone(),
            self.channels.clone(),
            conversation_id.to_string(),
            receiver,
            sender.clone(),
        );
        let span = tracing::info_span!(
            "channel",
            agent_id = %self.context.agent_id,
            conversation_id = %conversation_id,
        );
        let abort = self.context.abort.clone();
        self.context.tasks.spawn(
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

    /// Stops intake, lets running turns finish up to `grace`, cancels branches and workers.
    /// Messages not answered by then stay pending and are answered after the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.accepting.store(false, Ordering::Release);
        if let Ok(mut channels) = self.channels.lock() {
            channels.clear();
        }
        self.context.closing.cancel();
        let tasks = &self.context.tasks;
        tasks.close();
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            tracing::warn!(agent_id = %self.context.agent_id, grace_secs = grace.as_secs(), "turns still running at the shutdown deadline; their messages will be answered after restart");
            self.context.abort.cancel();
            tasks.wait().await;
        }
        self.context.usage.flush().await;
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
