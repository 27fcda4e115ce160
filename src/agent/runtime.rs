//! `AgentRuntime`: one agent as the daemon, the router, the scheduler and the API see it. It
//! opens the agent from its config, stores every inbound message before handing it to its
//! conversation's channel (started on the first message, stopped when idle), and answers
//! questions about the agent without exposing its internals.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rig::message::Message;
use sqlx::SqlitePool;
use tokio::sync::{broadcast, mpsc};
use tracing::Instrument;

use super::channel::{Channel, ChannelDirectory, ChannelGone, ChannelHandle, ChannelInput};
use super::cortex::{self, CortexState};
use super::processes::StopReason;
use super::stores::Stores;
use super::tool_loop::ToolLoop;
use super::{Agent, identity};

use crate::config::AgentConfig;
use crate::conversation::{ContextBody, MessageStatus, NewMessage, Role, StoreError, TurnRecord};
use crate::conversation_id::ConversationId;
use crate::event::{EventBus, ProcessEvent};
use crate::llm::LlmManager;
use crate::memory::{Embedder, MemoryStore};
use crate::message::{
    Authority, DeliveryError, InboundMessage, OutboundContent, OutboundResponse, Outbox,
    new_message_id,
};
use crate::prompts::Prompts;
use crate::sandbox::{Redactor, Sandbox, Workspace};
use crate::skills::Skills;
use crate::supervision::Lifecycle;
use crate::tools::{CronJobs, ToolServices, ToolSetError, Toolbox};
pub use report::AgentStatus;

mod outside_turns;
mod report;

/// Capacity of each agent's event bus; slower subscribers skip.
const EVENT_BUS_CAPACITY: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent `{0}` is shutting down and accepts no new messages")]
    ShuttingDown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot prepare {path}: {source}")]
    Home {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Memory(#[from] crate::memory::MemoryError),
    #[error(transparent)]
    Tools(#[from] ToolSetError),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error("cannot keep an attachment in the workspace: {0}")]
    Attachment(crate::sandbox::SandboxError),
    #[error("cannot read the stored attachment: {0}")]
    StoredAttachment(crate::sandbox::SandboxError),
    #[error("cannot read the token usage: {0}")]
    Usage(#[from] sqlx::Error),
}

/// What became of a routed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOutcome {
    /// Stored and queued on its channel.
    Accepted { message_id: String },
    /// Already received (same platform message id); nothing was done.
    Duplicate,
}

/// What every agent of the daemon shares.
pub struct SharedServices {
    pub llm: Arc<LlmManager>,
    pub prompts: Arc<Prompts>,
    /// Turns memories into vectors (one model for all agents).
    pub embedder: Arc<Embedder>,
    /// Every configured secret, kept out of what models and people see.
    pub redactor: Redactor,
    /// Where workers' shell commands run.
    pub sandbox: Arc<Sandbox>,
    /// The daemon's counters.
    pub metrics: crate::metrics::Metrics,
    /// `web_fetch` and `web_search` (`[web]`).
    pub web: Arc<crate::web::Web>,
    /// `$SPACEBOT_HOME/skills`: the skills every agent has.
    pub shared_skills: std::path::PathBuf,
    /// Carries `send_agent_message` between the daemon's agents.
    pub messenger: Arc<dyn crate::tools::AgentMessenger>,
    /// The limits on files received and sent (`[media]`).
    pub media: crate::config::MediaConfig,
    /// The daemon's MCP servers; each agent gets the tools of those enabled for it.
    pub mcp: Arc<crate::mcp::McpManager>,
}

/// What connects one agent to the rest of the daemon.
pub struct AgentLinks {
    /// Where the agent's answers go.
    pub outbox: Arc<dyn Outbox>,
    /// The agent's scheduled jobs, for its `cron` tool.
    pub cron: Arc<dyn CronJobs>,
    /// The agent's tasks and stop switches, shared with its scheduled jobs so that
    /// shutdown waits for their runs too.
    pub lifecycle: Lifecycle,
}

pub struct AgentRuntime {
    agent: Arc<Agent>,
    channels: ChannelDirectory,
    accepting: AtomicBool,
}

impl AgentRuntime {
    /// Opens an agent in its home directory (the workspace and identity files are created
    /// on first run) on its database (`database::open`): its stores, tools and cortex
    /// state. Nothing runs until `start`.
    pub async fn open(
        config: &AgentConfig,
        home: &Path,
        database: SqlitePool,
        shared: &SharedServices,
        links: AgentLinks,
    ) -> Result<Self, AgentError> {
        let home_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AgentError::Home { path, source }
        };
        let workspace_root = home.join("workspace");
        crate::filesystem::private_directory(&workspace_root)
            .map_err(home_error(&workspace_root))?;
        identity::seed(home, &config.display_name, &shared.prompts)
            .await
            .map_err(home_error(home))?;
        let workspace = Workspace::new(&workspace_root, shared.sandbox.workspace_owner())
            .map_err(home_error(&workspace_root))?;
        let events = EventBus::new(EVENT_BUS_CAPACITY);
        let stores = Stores::open(
            database,
            &config.id,
            shared.embedder.clone(),
            events.clone(),
        )
        .await?;
        let workspace = Arc::new(workspace);
        let skills_root = home.join("skills");
        crate::filesystem::private_directory(&skills_root).map_err(home_error(&skills_root))?;
        let skills = Skills::new(&shared.shared_skills, &skills_root);
        let tools = Toolbox::new(
            &shared.prompts,
            &ToolServices {
                conversations: stores.conversations.clone(),
                memory: stores.memory.clone(),
                workspace: workspace.clone(),
                sandbox: shared.sandbox.clone(),
                events: events.clone(),
                redactor: shared.redactor.clone(),
                cron: links.cron,
                web: shared.web.clone(),
                skills: skills.clone(),
                mcp: shared.mcp.for_agent(&config.id),
                messenger: shared.messenger.clone(),
                links: config.links.clone(),
                outbox: links.outbox.clone(),
                max_file_bytes: shared.media.max_file_bytes,
            },
        )?;
        let cortex = Arc::new(CortexState::new(config.cortex.clone()));
        let memory = stores.memory.clone();
        cortex.add_maintenance(
            "memory",
            Duration::from_secs(config.memory_maintenance_secs),
            Arc::new(move || {
                let memory = memory.clone();
                Box::pin(async move {
                    // Memories saved while no embedder worked get their vectors first.
                    let embedded = memory.backfill_embeddings().await?;
                    let report = memory.maintain(crate::database::now_millis()).await?;
                    Ok(format!("{report:?}, {embedded} embedded"))
                })
            }),
        );
        let agent = Agent {
            identity: identity::load(home).await,
            tool_loop: ToolLoop {
                agent_id: config.id.clone(),
                routing: std::sync::RwLock::new(Arc::new(config.routing.clone())),
                llm: shared.llm.clone(),
                usage: stores.usage.clone(),
                prompts: shared.prompts.clone(),
                redactor: shared.redactor.clone(),
                events,
                daily_token_budget: config.daily_token_budget,
            },
            config: config.clone(),
            stores,
            tools,
            processes: Default::default(),
            outbox: links.outbox,
            cortex,
            sandbox: shared.sandbox.clone(),
            workspace,
            media: shared.media.clone(),
            lifecycle: links.lifecycle,
            metrics: shared.metrics.clone(),
            captures: Default::default(),
            skills,
        };
        Ok(Self {
            agent: Arc::new(agent),
            channels: ChannelDirectory::default(),
            accepting: AtomicBool::new(true),
        })
    }

    /// Starts the agent's own tasks (the cortex). Channels start with their first message.
    pub fn start(&self) {
        cortex::start(&self.agent);
    }

    pub fn id(&self) -> &str {
        &self.agent.config.id
    }

    pub fn config(&self) -> &AgentConfig {
        &self.agent.config
    }

    /// The routing in force (the config's, or a reload's).
    pub fn routing(&self) -> Arc<crate::config::RoutingConfig> {
        self.agent.tool_loop.routing()
    }

    /// Applies what can change while the agent runs from a reloaded `config` (same id): the
    /// routing and fallbacks, from the next LLM call on.
    pub fn reconfigure(&self, config: &AgentConfig) {
        if *self.agent.tool_loop.routing() != config.routing {
            tracing::info!(agent_id = %self.id(), "routing reloaded");
            self.agent.tool_loop.replace_routing(config.routing.clone());
        }
    }

    /// The settings of `config` that differ from those the agent was opened with and are
    /// read only when it opens (a restart).
    pub fn settings_needing_restart(&self, config: &AgentConfig) -> Vec<&'static str> {
        let opened = &self.agent.config;
        [
            ("display_name", opened.display_name != config.display_name),
            ("max_turns", opened.max_turns != config.max_turns),
            (
                "history_messages",
                opened.history_messages != config.history_messages,
            ),
            ("limits", opened.limits != config.limits),
            ("coalesce", opened.coalesce != config.coalesce),
            (
                "channel_inbox",
                opened.channel_inbox != config.channel_inbox,
            ),
            ("cortex", opened.cortex != config.cortex),
            ("links", opened.links != config.links),
            (
                "memory_maintenance_secs",
                opened.memory_maintenance_secs != config.memory_maintenance_secs,
            ),
        ]
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
    }

    /// Stores an inbound message, then queues it on its conversation's channel. Waits while the
    /// channel's inbox is full rather than dropping anything.
    pub async fn route(&self, message: InboundMessage) -> Result<RouteOutcome, AgentError> {
        let direct = message.is_direct;
        let conversation_known = self
            .channels
            .lock()
            .is_ok_and(|channels| channels.contains_key(&message.conversation));
        if !self.accepting.load(Ordering::Acquire) {
            return Err(AgentError::ShuttingDown(self.id().to_string()));
        }
        let attachments = super::attachments::keep(
            &self.agent.workspace,
            &message,
            self.agent.media.max_file_bytes,
        )
        .await
        .map_err(AgentError::Attachment)?;
        let stored = self
            .agent
            .stores
            .conversations
            .insert_with_attachments(
                &NewMessage {
                    id: &message.id,
                    conversation_id: message.conversation.as_str(),
                    role: Role::User,
                    sender: &message.sender,
                    content: &message.content,
                    platform_message_id: message.platform_message_id.as_deref(),
                    status: MessageStatus::Pending,
                    sender_id: message.sender_id.as_deref(),
                    authority: message.authority,
                    direct: message.is_direct,
                },
                &attachments,
                conversation_known,
            )
            .await;
        let stored = match stored {
            Ok(stored) => stored,
            Err(error) => {
                if !message.attachments.is_empty() {
                    super::attachments::discard(&self.agent.workspace, &message);
                }
                return Err(error.into());
            }
        };
        let Some(stored) = stored else {
            if !message.attachments.is_empty() {
                super::attachments::discard(&self.agent.workspace, &message);
            }
            tracing::debug!(conversation_id = %message.conversation, "duplicate inbound message ignored");
            return Ok(RouteOutcome::Duplicate);
        };
        if let Some(notice) = super::attachments::refusal_notice(&attachments) {
            self.tell_refused(&message, notice);
        }
        self.agent
            .tool_loop
            .events
            .publish(ProcessEvent::MessageReceived {
                agent_id: self.id().to_string(),
                conversation_id: stored.conversation_id.clone(),
                message_id: stored.id.clone(),
                sender: stored.sender.clone(),
                content: stored.content.clone(),
            });
        let message_id = stored.id.clone();
        self.dispatch(
            &message.conversation,
            ChannelInput::Message {
                message: stored,
                direct,
            },
        )
        .await;
        Ok(RouteOutcome::Accepted { message_id })
    }

    /// Tells the sender at once that files of their message were not received (too large);
    /// the message itself is answered as usual.
    fn tell_refused(&self, message: &InboundMessage, notice: String) {
        let outbox = self.agent.outbox.clone();
        let response = OutboundResponse {
            agent_id: self.id().to_string(),
            conversation: message.conversation.clone(),
            in_reply_to: Vec::new(),
            reply_to: message.platform_message_id.clone(),
            content: OutboundContent::Text { text: notice },
            usage: Default::default(),
            turn_answer: false,
        };
        self.agent.lifecycle.tasks.spawn(async move {
            if let Err(error) = outbox.deliver(&response).await {
                tracing::warn!(%error, conversation_id = %response.conversation, "cannot tell the sender a file was too large");
            }
        });
    }

    /// Starts a fresh context for a conversation (`/new`): the stored history before now is no
    /// longer loaded, and a running channel forgets what it holds after its current turn.
    pub async fn reset_conversation(
        &self,
        conversation: &ConversationId,
    ) -> Result<(), AgentError> {
        self.agent
            .stores
            .conversations
            .reset_context(conversation.as_str())
            .await?;
        if let Some(channel) = self.running_channel(conversation) {
            // A channel that has just ended reloads from the store, which is already reset.
            let _ = channel.offer(ChannelInput::Reset);
        }
        Ok(())
    }

    /// Ends a conversation's work: its branches and workers are stopped, its channel stops
    /// after the current turn, and messages it still owes an answer are closed as failed
    /// (a scheduled run is over, and must not be run again after a restart).
    pub async fn close_conversation(&self, conversation: &ConversationId) {
        let conversation_id = conversation.as_str();
        self.agent
            .processes
            .stop_conversation(conversation_id, &StopReason::Cancelled);
        let sender = self
            .channels
            .lock()
            .ok()
            .and_then(|mut channels| channels.remove(conversation));
        if let Some(channel) = sender {
            // A channel that has already ended needs no telling.
            let _ = channel.send(ChannelInput::Close).await;
        }
        let store = &self.agent.stores.conversations;
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

    /// Stores an earlier exchange as the start of a new conversation's history (an
    /// OpenAI-compatible client sends the whole history with every request).
    pub async fn seed_history(
        &self,
        conversation: &ConversationId,
        messages: &[(Role, String)],
    ) -> Result<(), AgentError> {
        let store = &self.agent.stores.conversations;
        let conversation_id = conversation.as_str();
        let mut context = Vec::with_capacity(messages.len());
        for (role, text) in messages.iter().filter(|(_, text)| !text.is_empty()) {
            let (status, sender, message) = match role {
                Role::User => (MessageStatus::Answered, "user", Message::user(text.clone())),
                Role::Assistant => (
                    MessageStatus::Sent,
                    "assistant",
                    Message::assistant(text.clone()),
                ),
            };
            store
                .insert(
                    &NewMessage {
                        id: &new_message_id(),
                        conversation_id,
                        role: *role,
                        sender,
                        content: text,
                        platform_message_id: None,
                        status,
                        sender_id: None,
                        authority: Authority::Owner,
                        direct: true,
                    },
                    false,
                )
                .await?;
            context.push(ContextBody::Message(message));
        }
        store
            .record_turn(&TurnRecord {
                conversation_id,
                reply: None,
                answered: &[],
                answered_status: MessageStatus::Answered,
                context,
            })
            .await?;
        Ok(())
    }

    /// Starts a channel for every conversation with messages still owed an answer (after a
    /// restart).
    pub async fn resume_pending(&self) -> Result<usize, AgentError> {
        let conversations = self
            .agent
            .stores
            .conversations
            .conversations_with_pending()
            .await?;
        let mut resumed = 0;
        for conversation_id in &conversations {
            let Ok(conversation) = ConversationId::parse(conversation_id) else {
                tracing::error!(%conversation_id, "a stored conversation id cannot be read; its messages stay pending");
                continue;
            };
            tracing::info!(agent_id = %self.id(), %conversation_id, "answering messages received before the restart");
            self.dispatch(&conversation, ChannelInput::Wake).await;
            resumed += 1;
        }
        Ok(resumed)
    }

    /// The agent's long-term memory.
    pub fn memory(&self) -> &Arc<MemoryStore> {
        &self.agent.stores.memory
    }

    /// Whether answers can reach `conversation` (its platform is configured).
    pub fn reaches(&self, conversation: &ConversationId) -> bool {
        self.agent.outbox.reaches(conversation)
    }

    /// The agent's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ProcessEvent> {
        self.agent.tool_loop.events.subscribe()
    }

    fn running_channel(&self, conversation: &ConversationId) -> Option<ChannelHandle> {
        self.channels
            .lock()
            .ok()
            .and_then(|channels| channels.get(conversation).cloned())
    }

    /// Hands an input to the conversation's channel, starting it when none runs, without
    /// ever waiting for room in its inbox (the input's effect is already stored), so one
    /// conversation can never hold up another's messages.
    async fn dispatch(&self, conversation: &ConversationId, mut input: ChannelInput) {
        for _ in 0..3 {
            let Some(channel) = self.channel_handle(conversation) else {
                return;
            };
            match channel.offer(input) {
                Ok(()) => return,
                Err(ChannelGone(returned)) => {
                    input = *returned;
                    // Only this ended channel's entry: a successor may already be there.
                    if let Ok(mut channels) = self.channels.lock()
                        && channels
                            .get(conversation)
                            .is_some_and(|current| current.same_channel(&channel))
                    {
                        channels.remove(conversation);
                    }
                }
            }
        }
        tracing::error!(conversation_id = %conversation, "channel keeps failing to start; the message stays pending");
    }

    fn channel_handle(&self, conversation: &ConversationId) -> Option<ChannelHandle> {
        let mut channels = self.channels.lock().ok()?;
        if let Some(channel) = channels.get(conversation) {
            return Some(channel.clone());
        }
        if !self.accepting.load(Ordering::Acquire) {
            return None;
        }
        let (sender, receiver) = mpsc::channel(self.agent.config.channel_inbox);
        let stale = Arc::new(AtomicBool::new(false));
        let handle = ChannelHandle::new(sender.clone(), stale.clone());
        let channel = Channel::new(
            self.agent.clone(),
            self.channels.clone(),
            conversation.clone(),
            receiver,
            sender,
            stale,
        );
        // A root span: the channel outlives the message (and the adapter task) that started it.
        let span = tracing::info_span!(
            parent: None,
            "channel",
            agent_id = %self.id(),
            conversation_id = %conversation,
        );
        let abort = self.agent.lifecycle.abort.clone();
        self.agent.lifecycle.tasks.spawn(
            async move {
                tokio::select! {
                    () = channel.run() => {}
                    () = abort.cancelled() => tracing::warn!("turn stopped at the shutdown deadline"),
                }
            }
            .instrument(span),
        );
        channels.insert(conversation.clone(), handle.clone());
        Some(handle)
    }

    /// Stops intake, lets running turns finish up to `grace`, cancels branches and workers,
    /// then writes what is buffered and closes the database. Messages not answered by then
    /// stay pending and are answered after the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.accepting.store(false, Ordering::Release);
        if let Ok(mut channels) = self.channels.lock() {
            channels.clear();
        }
        if !self.agent.lifecycle.shut_down(grace).await {
            tracing::warn!(agent_id = %self.id(), grace_secs = grace.as_secs(), "turns still running at the shutdown deadline; their messages will be answered after restart");
        }
        self.agent.stores.close().await;
    }
}
