//! The channel: one task per conversation, the user-facing LLM process. It never blocks on
//! work: it replies, branches to think and spawns workers to act, and their results come back
//! through its inbox to re-trigger it. One turn runs at a time; each delivers one answer.
//!
//! This file is the task loop. Beside it: what the inbox carries (`inbox`), when a turn
//! starts (`scheduler`), running a turn (`turn`), sending and recording its answer
//! (`delivery`), the status block of the prompt (`status`), keeping the context inside the
//! window (`compaction`) and stopping when idle (`retire`).

mod capture;
mod compaction;
mod delivery;
mod inbox;
mod retire;
mod scheduler;
mod status;
mod stream;
mod turn;

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Agent;
use crate::conversation::{ContextItem, StoreError};
use crate::conversation_id::ConversationId;
use crate::event::ProcessId;
pub use inbox::{
    ChannelDirectory, ChannelGone, ChannelHandle, ChannelInput, ProcessReport, ProcessResult,
};
use scheduler::{Timing, Trigger, TurnScheduler};
pub use status::degraded;
pub(in crate::agent) use turn::standing_of;

pub struct Channel {
    agent: Arc<Agent>,
    directory: ChannelDirectory,
    conversation: ConversationId,
    process_id: ProcessId,
    inbox: mpsc::Receiver<ChannelInput>,
    /// Given to branches and workers so their results come back here.
    results: mpsc::Sender<ChannelInput>,
    /// Set when an input was not queued because the inbox was full: the store has it.
    stale: Arc<AtomicBool>,
    /// What the model sees, oldest first.
    context_items: VecDeque<ContextItem>,
    /// Messages and results waiting for a turn.
    scheduler: TurnScheduler,
    /// Results not shown to the model in a turn of their own, for the status block.
    completed: VecDeque<(Instant, String)>,
    /// Ids taken from the store, so an inbox copy of the same message is not run twice.
    loaded: HashSet<String>,
    /// Identity and instructions; the status block is appended per turn.
    system_prompt: String,
    summary_running: bool,
    /// A turn ran since the outbox last heard that the conversation settled.
    awaiting_settlement: bool,
    closed: bool,
    /// The last input or turn; a channel idle for `channel_idle_secs` stops.
    last_activity: Instant,
    /// User messages since memory capture last started; `None` until first counted.
    uncaptured: Option<u64>,
    /// The platform message the running turn answers (what `react` reacts to).
    answering: Option<String>,
}

impl Channel {
    pub fn new(
        agent: Arc<Agent>,
        directory: ChannelDirectory,
        conversation: ConversationId,
        inbox: mpsc::Receiver<ChannelInput>,
        results: mpsc::Sender<ChannelInput>,
        stale: Arc<AtomicBool>,
    ) -> Self {
        let config = &agent.config;
        let timing = Timing {
            coalesce: config.coalesce.clone(),
            retrigger_batch: Duration::from_millis(config.limits.retrigger_batch_ms),
            max_retriggers: config.limits.max_retriggers,
        };
        Self {
            process_id: ProcessId::Channel(conversation.to_string()),
            scheduler: TurnScheduler::new(timing),
            agent,
            directory,
            conversation,
            inbox,
            results,
            stale,
            context_items: VecDeque::new(),
            completed: VecDeque::new(),
            loaded: HashSet::new(),
            system_prompt: String::new(),
            summary_running: false,
            awaiting_settlement: false,
            closed: false,
            last_activity: Instant::now(),
            uncaptured: None,
            answering: None,
        }
    }

    pub async fn run(mut self) {
        if let Err(error) = self.load().await {
            tracing::error!(%error, "cannot load the conversation; the channel stops and its messages stay pending");
            return;
        }
        let closing = self.agent.lifecycle.closing.clone();
        // `closed` can also be set while checking for settlement; it is read before waiting.
        while !self.closed {
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                () = closing.cancelled() => break,
                input = self.inbox.recv() => match input {
                    Some(input) => self.accept(input).await,
                    None => break,
                },
                () = sleep_until(deadline), if deadline.is_some() => {}
            }
            while let Ok(input) = self.inbox.try_recv() {
                self.accept(input).await;
            }
            if self.stale.swap(false, Ordering::AcqRel) {
                self.reload().await;
            }
            if self.closed {
                break;
            }
            if self.idle_deadline().is_some_and(|at| at <= Instant::now()) && self.retire().await {
                break;
            }
            let (trigger, passed_over) = self.scheduler.ready(Instant::now());
            self.note_completed(passed_over);
            if let Some(trigger) = trigger {
                let said = match &trigger {
                    Trigger::Messages(batch) => batch.len(),
                    Trigger::Results(_) => 0,
                };
                // Boxed: the turn's large future (LLM client, tools) lives on the heap only
                // while a turn runs, so an idle channel stays small.
                Box::pin(self.run_turn(trigger)).await;
                Box::pin(self.compact()).await;
                self.count_for_capture(said).await;
                self.last_activity = Instant::now();
                self.awaiting_settlement = true;
            }
            if self.awaiting_settlement && self.settled().await {
                self.awaiting_settlement = false;
                self.agent.outbox.settled(&self.conversation);
            }
        }
        tracing::debug!("channel stopped");
    }

    async fn load(&mut self) -> Result<(), StoreError> {
        let store = &self.agent.stores.conversations;
        let conversation_id = self.conversation.as_str();
        let mut items = store.load_context(conversation_id).await?;
        let limit = self.agent.config.history_messages.max(1) * 4;
        if items.len() > limit {
            items.drain(..items.len() - limit);
        }
        self.context_items = items.into();
        // Whether they may start at once is learnt from their inbox copy (a new message) or
        // from a `Wake` (owed from before a restart).
        let now = Instant::now();
        for message in store.pending(conversation_id).await? {
            self.loaded.insert(message.id.clone());
            self.scheduler.queue_message(message, false, now);
        }
        let identity = &self.agent.identity;
        self.system_prompt = self.agent.tool_loop.render(
            "channel",
            minijinja::context! {
                agent_name => &self.agent.config.display_name,
                conversation_id => self.conversation.as_str(),
                soul => &identity.soul,
                identity => &identity.identity,
                role => &identity.role,
                mcp_servers => self.agent.tools.mcp.server_names(),
            },
        );
        Ok(())
    }

    /// Reads the context and the pending messages from the store again, after inputs were
    /// left out of a full inbox (their effects are all stored).
    async fn reload(&mut self) {
        let store = &self.agent.stores.conversations;
        let conversation_id = self.conversation.as_str();
        match store.load_context(conversation_id).await {
            Ok(mut items) => {
                let limit = self.agent.config.history_messages.max(1) * 4;
                if items.len() > limit {
                    items.drain(..items.len() - limit);
                }
                self.context_items = items.into();
            }
            Err(error) => tracing::error!(%error, "cannot reload the context"),
        }
        match store.pending(conversation_id).await {
            Ok(pending) => {
                let now = Instant::now();
                for message in pending {
                    let known =
                        self.loaded.contains(&message.id) || self.scheduler.is_pending(&message.id);
                    if !known {
                        self.loaded.insert(message.id.clone());
                        let direct = message.direct;
                        self.scheduler.queue_message(message, direct, now);
                    }
                }
            }
            Err(error) => tracing::error!(%error, "cannot read pending messages"),
        }
    }

    async fn accept(&mut self, input: ChannelInput) {
        self.last_activity = Instant::now();
        match input {
            ChannelInput::Message { message, direct } => {
                if self.loaded.contains(&message.id) {
                    self.scheduler.mark_direct(direct);
                } else {
                    self.scheduler
                        .queue_message(message, direct, Instant::now());
                }
            }
            ChannelInput::Wake => {
                match self
                    .agent
                    .stores
                    .conversations
                    .pending(self.conversation.as_str())
                    .await
                {
                    Ok(stored) => {
                        // Messages owed from before a restart are answered without waiting.
                        self.scheduler.hurry();
                        for message in stored {
                            let known = self.loaded.contains(&message.id)
                                || self.scheduler.is_pending(&message.id);
                            if !known {
                                self.loaded.insert(message.id.clone());
                                self.scheduler.queue_message(message, true, Instant::now());
                            }
                        }
                    }
                    Err(error) => tracing::error!(%error, "cannot read pending messages"),
                }
            }
            ChannelInput::Result(result) => self.scheduler.queue_result(result, Instant::now()),
            ChannelInput::Compacted(compaction) => self.apply_summary(compaction).await,
            ChannelInput::Reset => self.context_items.clear(),
            ChannelInput::Announced(items) => self.context_items.extend(items),
            ChannelInput::Close => self.closed = true,
        }
    }

    /// Nothing is left to do: no branch or worker of this conversation runs, and no message
    /// or result waits for a turn. Processes queue their result before they leave the
    /// registry, so the inbox is read after the registry.
    async fn settled(&mut self) -> bool {
        if self.agent.processes.count_in(self.conversation.as_str()) > 0 {
            return false;
        }
        while let Ok(input) = self.inbox.try_recv() {
            self.accept(input).await;
        }
        !self.scheduler.has_work()
    }

    /// When the loop must wake up next, if nothing arrives before.
    fn next_deadline(&self) -> Option<Instant> {
        self.scheduler
            .next_deadline(Instant::now())
            .or_else(|| self.idle_deadline())
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
