//! The channel: one task per conversation, the user-facing LLM process. It never blocks on
//! work: it replies, branches to think and spawns workers to act, and their results come back
//! through its inbox to re-trigger it. One turn runs at a time; each delivers one answer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use rig::message::Message;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::turn::{self, Handled, LoopEnd};
use super::{AgentContext, branch, compactor, worker};
use crate::conversation::{
    ContextBody, ContextItem, MessageStatus, NewMessage, Role, StoreError, StoredMessage,
    TurnRecord,
};
use crate::cron::RunReport;
use crate::event::{ProcessEvent, ProcessId, TurnOutcome, WorkerState};
use crate::llm::LlmRequest;
use crate::messaging::{OutboundContent, OutboundResponse, new_message_id};
use crate::tools::{ToolEffect, ToolOutput};

/// Finished results listed in the status block at most, and for how long.
const COMPLETED_SHOWN: usize = 10;
const COMPLETED_KEPT: Duration = Duration::from_secs(3600);
/// Running processes listed in the status block at most.
const RUNNING_SHOWN: usize = 10;
/// Characters of a description or result shown in the status block.
const STATUS_EXCERPT: usize = 300;
/// Retrying a turn's record that could not be written: the first wait, doubling to the last.
const RECORD_RETRY_FIRST: Duration = Duration::from_millis(500);
const RECORD_RETRY_MAX: Duration = Duration::from_secs(30);

/// What a channel's inbox carries. Everything owed to a channel travels here (mpsc), never
/// over the lossy event bus.
#[derive(Debug)]
pub enum ChannelInput {
    /// A stored user message. Direct messages start a turn at once; group messages coalesce.
    Message {
        message: StoredMessage,
        direct: bool,
    },
    /// Look in the store for messages still owed an answer.
    Wake,
    /// A branch or worker reporting back.
    Result(ProcessResult),
    /// A background summary finished (or failed).
    Compacted(Compaction),
    /// `/new`: forget the context held so far (the store is already reset).
    Reset,
    /// Something was sent to the conversation from outside a turn (a cron job's outcome);
    /// these context items, already stored, record it.
    Announced(Vec<ContextItem>),
    /// Stop after the current turn (a cron run is over).
    Close,
}

/// A branch's or worker's report to its channel.
#[derive(Debug, Clone)]
pub enum ProcessResult {
    BranchConcluded {
        process_id: ProcessId,
        prompt: String,
        conclusion: String,
    },
    WorkerFinished {
        process_id: ProcessId,
        task: String,
        state: WorkerState,
        result: String,
    },
    /// An interactive worker said something and waits for a follow-up (`route`).
    WorkerWaiting {
        process_id: ProcessId,
        task: String,
        message: String,
    },
}

impl ProcessResult {
    /// One line for the model: which process, what it was for, what came of it.
    fn describe(&self) -> String {
        match self {
            ProcessResult::BranchConcluded {
                process_id,
                prompt,
                conclusion,
            } => format!(
                "{process_id} (\"{}\") concluded: {conclusion}",
                excerpt(prompt, 120)
            ),
            ProcessResult::WorkerFinished {
                process_id,
                task,
                state,
                result,
            } => format!(
                "{process_id} (\"{}\") {}: {result}",
                excerpt(task, 120),
                state.as_str()
            ),
            ProcessResult::WorkerWaiting {
                process_id,
                task,
                message,
            } => format!(
                "{process_id} (\"{}\") is waiting for a follow-up (send it with `route`): {message}",
                excerpt(task, 120)
            ),
        }
    }
}

/// A finished background summary of the items `first..=last`.
#[derive(Debug)]
pub struct Compaction {
    first: i64,
    last: i64,
    count: usize,
    summary: Result<String, String>,
}

/// How a turn ended, before delivery.
enum Answer {
    Reply(String),
    Skip,
    Failed(String),
}

/// What starts a turn.
enum Trigger {
    Messages(Vec<StoredMessage>),
    Results(Vec<ProcessResult>),
}

/// The running channels of an agent, by conversation id: where a message finds its channel.
pub type ChannelDirectory = Arc<std::sync::Mutex<HashMap<String, mpsc::Sender<ChannelInput>>>>;

pub struct Channel {
    context: Arc<AgentContext>,
    directory: ChannelDirectory,
    conversation_id: String,
    process_id: ProcessId,
    inbox: mpsc::Receiver<ChannelInput>,
    /// Given to branches and workers so their results come back here.
    results: mpsc::Sender<ChannelInput>,
    /// What the model sees, oldest first.
    context_items: VecDeque<ContextItem>,
    pending: Vec<StoredMessage>,
    pending_direct: bool,
    first_pending_at: Option<Instant>,
    last_pending_at: Option<Instant>,
    results_waiting: Vec<ProcessResult>,
    first_result_at: Option<Instant>,
    /// Results since the last turn, for the status block.
    completed: VecDeque<(Instant, String)>,
    retriggers_since_user: usize,
    /// Ids taken from the store, so an inbox copy of the same message is not run twice.
    loaded: HashSet<String>,
    /// Identity and instructions; the status block is appended per turn.
    system_prompt: String,
    summary_running: bool,
    /// A cron firing: answers go to the run waiting for them, which also hears when the
    /// conversation has settled.
    is_cron: bool,
    /// A turn ran since the run last heard that the conversation settled.
    awaiting_settlement: bool,
    closed: bool,
    /// The last input or turn; a channel idle for `channel_idle_secs` stops.
    last_activity: Instant,
}

impl Channel {
    pub fn new(
        context: Arc<AgentContext>,
        directory: ChannelDirectory,
        conversation_id: String,
        inbox: mpsc::Receiver<ChannelInput>,
        results: mpsc::Sender<ChannelInput>,
    ) -> Self {
        let is_cron = crate::cron::is_cron_conversation(&conversation_id);
        Self {
            process_id: ProcessId::Channel(conversation_id.clone()),
            context,
            directory,
            conversation_id,
            inbox,
            results,
            context_items: VecDeque::new(),
            pending: Vec::new(),
            pending_direct: false,
            first_pending_at: None,
            last_pending_at: None,
            results_waiting: Vec::new(),
            first_result_at: None,
            completed: VecDeque::new(),
            retriggers_since_user: 0,
            loaded: HashSet::new(),
            system_prompt: String::new(),
            summary_running: false,
            is_cron,
            awaiting_settlement: false,
            closed: false,
            last_activity: Instant::now(),
        }
    }

    pub async fn run(mut self) {
        if let Err(error) = self.load().await {
            tracing::error!(%error, "cannot load the conversation; the channel stops and its messages stay pending");
            return;
        }
        let closing = self.context.closing.clone();
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
            if self.closed {
                break;
            }
            if self.idle_deadline().is_some_and(|at| at <= Instant::now()) && self.retire().await {
                break;
            }
            if let Some(trigger) = self.ready() {
                // Boxed: the turn's large future (LLM client, tools) lives on the heap only
                // while a turn runs, so an idle channel stays small.
                Box::pin(self.run_turn(trigger)).await;
                Box::pin(self.compact()).await;
                self.last_activity = Instant::now();
                self.awaiting_settlement = self.is_cron;
            }
            if self.awaiting_settlement && self.settled().await {
                self.awaiting_settlement = false;
                self.context
                    .cron
                    .report(&self.conversation_id, RunReport::Settled);
            }
        }
        tracing::debug!("channel stopped");
    }

    async fn load(&mut self) -> Result<(), StoreError> {
        let store = &self.context.store;
        let mut items = store.load_context(&self.conversation_id).await?;
        let limit = self.context.config.history_messages.max(1) * 4;
        if items.len() > limit {
            items.drain(..items.len() - limit);
        }
        self.context_items = items.into();
        self.pending = store.pending(&self.conversation_id).await?;
        self.loaded = self
            .pending
            .iter()
            .map(|message| message.id.clone())
            .collect();
        if !self.pending.is_empty() {
            // Whether they may start at once is learnt from their inbox copy (a new message)
            // or from a `Wake` (owed from before a restart).
            let now = Instant::now();
            self.first_pending_at = Some(now);
            self.last_pending_at = Some(now);
        }
        let identity = &self.context.identity;
        self.system_prompt = self
            .context
            .prompts
            .render(
                "channel",
                minijinja::context! {
                    agent_name => &self.context.config.display_name,
                    conversation_id => &self.conversation_id,
                    soul => &identity.soul,
                    identity => &identity.identity,
                    role => &identity.role,
                },
            )
            .unwrap_or_else(|error| {
                tracing::error!(%error, "cannot render the channel prompt");
                String::new()
            });
        Ok(())
    }

    async fn accept(&mut self, input: ChannelInput) {
        self.last_activity = Instant::now();
        match input {
            ChannelInput::Message { message, direct } => {
                if self.loaded.contains(&message.id) {
                    self.pending_direct |= direct;
                } else {
                    self.queue_message(message, direct);
                }
            }
            ChannelInput::Wake => match self.context.store.pending(&self.conversation_id).await {
                Ok(stored) => {
                    // Messages owed from before a restart are answered without waiting.
                    self.pending_direct |= !self.pending.is_empty();
                    for message in stored {
                        let known = self.loaded.contains(&message.id)
                            || self.pending.iter().any(|queued| queued.id == message.id);
                        if !known {
                            self.loaded.insert(message.id.clone());
                            self.queue_message(message, true);
                        }
                    }
                }
                Err(error) => tracing::error!(%error, "cannot read pending messages"),
            },
            ChannelInput::Result(result) => {
                self.first_result_at.get_or_insert_with(Instant::now);
                self.results_waiting.push(result);
            }
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
        if self.context.processes.count_in(&self.conversation_id) > 0 {
            return false;
        }
        while let Ok(input) = self.inbox.try_recv() {
            self.accept(input).await;
        }
        self.pending.is_empty() && self.results_waiting.is_empty()
    }

    fn queue_message(&mut self, message: StoredMessage, direct: bool) {
        let now = Instant::now();
        self.first_pending_at.get_or_insert(now);
        self.last_pending_at = Some(now);
        self.pending_direct |= direct;
        self.pending.push(message);
    }

    /// When the next queued thing becomes ready, if anything is waiting.
    fn next_deadline(&self) -> Option<Instant> {
        if !self.pending.is_empty() {
            return Some(self.pending_ready_at(Instant::now()));
        }
        self.first_result_at
            .map(|first| first + self.retrigger_batch())
            .or_else(|| self.idle_deadline())
    }

    /// When this channel, with nothing queued or running, may stop to free its memory.
    fn idle_deadline(&self) -> Option<Instant> {
        let idle = self.context.config.limits.channel_idle_secs;
        let busy = !self.pending.is_empty()
            || self.first_result_at.is_some()
            || self.summary_running
            || self.awaiting_settlement;
        // A cron conversation ends when its run does.
        (idle > 0 && !busy && !self.is_cron).then(|| self.last_activity + Duration::from_secs(idle))
    }

    /// Stops an idle channel without losing an input sent to it meanwhile. Under the
    /// directory's lock the channel leaves it (so the next message starts a successor) and
    /// closes its inbox; it then drains what was sent before the close. Those inputs are
    /// stored messages or reloads, which a successor reads from the store; if none has
    /// started, this channel takes its place again and handles them. Returns whether it
    /// stopped.
    async fn retire(&mut self) -> bool {
        if !self
            .context
            .processes
            .list(Some(&self.conversation_id))
            .is_empty()
        {
            self.last_activity = Instant::now();
            return false;
        }
        {
            let Ok(mut channels) = self.directory.lock() else {
                return false;
            };
            if channels
                .get(&self.conversation_id)
                .is_some_and(|sender| sender.same_channel(&self.results))
            {
                channels.remove(&self.conversation_id);
            }
            self.inbox.close();
        }
        let mut leftovers = Vec::new();
        while let Some(input) = self.inbox.recv().await {
            leftovers.push(input);
        }
        if leftovers.is_empty() {
            tracing::debug!("idle; the channel stops");
            return true;
        }
        let (sender, inbox) = mpsc::channel(self.context.inbox_capacity);
        {
            let Ok(mut channels) = self.directory.lock() else {
                return true;
            };
            if channels.contains_key(&self.conversation_id) {
                return true;
            }
            channels.insert(self.conversation_id.clone(), sender.clone());
        }
        self.inbox = inbox;
        self.results = sender;
        for input in leftovers {
            self.accept(input).await;
        }
        false
    }

    /// When the queued messages may start a turn: `now` for direct messages, else when the
    /// burst has been quiet for the debounce time or has waited the maximum.
    fn pending_ready_at(&self, now: Instant) -> Instant {
        let coalesce = &self.context.config.coalesce;
        if self.pending_direct || !coalesce.enabled {
            return now;
        }
        let last = self.last_pending_at.unwrap_or(now);
        let first = self.first_pending_at.unwrap_or(now);
        (last + Duration::from_millis(coalesce.debounce_ms))
            .min(first + Duration::from_millis(coalesce.max_wait_ms))
    }

    fn retrigger_batch(&self) -> Duration {
        Duration::from_millis(self.context.config.limits.retrigger_batch_ms)
    }

    /// The turn to run now, if any. User messages come first; results re-trigger the channel
    /// only a limited number of times per user message, and past that wait, listed in the
    /// status block, for the next user turn.
    fn ready(&mut self) -> Option<Trigger> {
        let now = Instant::now();
        if !self.pending.is_empty() {
            if self.pending_ready_at(now) > now {
                return None;
            }
            self.first_pending_at = None;
            self.last_pending_at = None;
            self.pending_direct = false;
            self.retriggers_since_user = 0;
            self.move_results_to_completed();
            return Some(Trigger::Messages(std::mem::take(&mut self.pending)));
        }
        let first = self.first_result_at?;
        if first + self.retrigger_batch() > now {
            return None;
        }
        if self.retriggers_since_user >= self.context.config.limits.max_retriggers {
            tracing::debug!("re-trigger cap reached; results wait for the next user turn");
            self.move_results_to_completed();
            return None;
        }
        self.retriggers_since_user += 1;
        self.first_result_at = None;
        Some(Trigger::Results(std::mem::take(&mut self.results_waiting)))
    }

    fn move_results_to_completed(&mut self) {
        let now = Instant::now();
        for result in self.results_waiting.drain(..) {
            self.completed.push_back((now, result.describe()));
        }
        self.first_result_at = None;
        while self.completed.len() > COMPLETED_SHOWN {
            self.completed.pop_front();
        }
    }

    async fn run_turn(&mut self, trigger: Trigger) {
        self.context.messaging.typing(&self.conversation_id).await;
        let (input, batch) = match trigger {
            Trigger::Messages(batch) => (user_input(&batch), batch),
            Trigger::Results(results) => {
                let lines: Vec<String> = results.iter().map(ProcessResult::describe).collect();
                let input = self
                    .context
                    .prompts
                    .render("retrigger", minijinja::context! { results => lines })
                    .unwrap_or_else(|_| lines.join("\n"));
                (input, Vec::new())
            }
        };
        // The memory block is cached by the store until its memories change.
        let memories = self
            .context
            .memory
            .prompt_block(&self.context.prompts)
            .await;
        let mut system = self.system_with_status();
        if !memories.is_empty() {
            system = format!("{system}\n\n{memories}");
        }
        let mut request = LlmRequest {
            system,
            messages: self.history(),
            tools: self.context.channel_tools.definitions(),
        };
        request.messages.push(Message::user(input));
        let turn_start = request.messages.len() - 1;
        self.completed.clear();
        let answer = AssertUnwindSafe(self.converse(&mut request))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                tracing::error!("the turn panicked");
                Answer::Failed("an internal error interrupted this turn".to_string())
            });
        let new_context = request.messages.split_off(turn_start);
        self.deliver(batch, answer, new_context).await;
    }

    /// The system prompt with the status block: running processes and results since the
    /// last turn. Rendered only when there is something to show.
    fn system_with_status(&mut self) -> String {
        let now = Instant::now();
        self.completed
            .retain(|(at, _)| now.duration_since(*at) < COMPLETED_KEPT);
        let running: Vec<_> = self
            .context
            .processes
            .list(Some(&self.conversation_id))
            .into_iter()
            .rev()
            .take(RUNNING_SHOWN)
            .map(|process| {
                minijinja::context! {
                    kind => process.kind.as_str(),
                    id => process.process_id.to_string(),
                    age => format!("{}s", process.age_secs),
                    description => excerpt(&process.description, STATUS_EXCERPT),
                    status => excerpt(&process.status, STATUS_EXCERPT),
                }
            })
            .collect();
        let completed: Vec<String> = self
            .completed
            .iter()
            .map(|(_, line)| excerpt(line, STATUS_EXCERPT))
            .collect();
        let warnings = super::cortex::degraded(&self.context);
        if running.is_empty() && completed.is_empty() && warnings.is_empty() {
            return self.system_prompt.clone();
        }
        match self.context.prompts.render(
            "status",
            minijinja::context! { running => running, completed => completed, warnings => warnings },
        ) {
            Ok(status) => format!("{}\n\n{status}", self.system_prompt),
            Err(error) => {
                tracing::error!(%error, "cannot render the status block");
                self.system_prompt.clone()
            }
        }
    }

    /// The context as LLM messages, opening with a user message as some providers require.
    fn history(&self) -> Vec<Message> {
        let mut messages: Vec<Message> = self
            .context_items
            .iter()
            .map(|item| item.body.to_message())
            .skip_while(|message| !matches!(message, Message::User { .. }))
            .collect();
        // A conversation whose history opens with a tool result lost its call to a cut.
        while matches!(messages.first(), Some(message) if is_tool_result(message)) {
            messages.remove(0);
        }
        messages
    }

    async fn converse(&self, request: &mut LlmRequest) -> Answer {
        let context = &self.context;
        let mut answered = false;
        let end = turn::run(
            context,
            &self.process_id,
            &self.conversation_id,
            request,
            &context.channel_tools,
            context.config.max_turns,
            |effect, output, history| self.apply(effect, output, history, &mut answered),
        )
        .await;
        match end {
            LoopEnd::Finished(answer) => answer,
            LoopEnd::Text(text) if text.is_empty() => Answer::Skip,
            LoopEnd::Text(text) => Answer::Reply(text),
            LoopEnd::TurnLimit => Answer::Failed(format!(
                "the model did not answer within {} steps",
                context.config.max_turns
            )),
            LoopEnd::Failed(error) => {
                tracing::error!(%error, "LLM call failed");
                Answer::Failed(error.to_string())
            }
        }
    }

    /// Carries out a channel tool's effect; the text returned is what the model reads.
    fn apply(
        &self,
        effect: ToolEffect,
        output: ToolOutput,
        history: &[Message],
        answered: &mut bool,
    ) -> Handled<Answer> {
        let context = &self.context;
        let conversation_id = self.conversation_id.as_str();
        match effect {
            ToolEffect::Reply { .. } | ToolEffect::Skip { .. } if *answered => {
                Handled::continue_with(ToolOutput::error(
                    "this turn is already answered; a turn gets one reply or skip",
                ))
            }
            ToolEffect::Reply { content } => {
                *answered = true;
                Handled::finish(ToolOutput::success("sent"), Answer::Reply(content))
            }
            ToolEffect::Skip { reason } => {
                *answered = true;
                tracing::debug!(%reason, "skipping");
                Handled::finish(output, Answer::Skip)
            }
            ToolEffect::Branch { prompt } => Handled::continue_with(
                match branch::spawn(
                    context,
                    conversation_id,
                    self.results.clone(),
                    history,
                    prompt,
                ) {
                    Ok(id) => ToolOutput::success(format!(
                        "branch `{id}` started; its conclusion will come back to you"
                    )),
                    Err(error) => ToolOutput::error(error),
                },
            ),
            ToolEffect::SpawnWorker { task, interactive } => Handled::continue_with(
                match worker::spawn(
                    context,
                    conversation_id,
                    self.results.clone(),
                    task,
                    interactive,
                ) {
                    Ok(id) => ToolOutput::success(format!(
                        "worker `{id}` started; its result will come back to you"
                    )),
                    Err(error) => ToolOutput::error(error),
                },
            ),
            ToolEffect::Route { worker_id, message } => Handled::continue_with(
                match context
                    .processes
                    .route(conversation_id, &worker_id, message)
                {
                    Ok(id) => ToolOutput::success(format!("sent to `{id}`")),
                    Err(error) => ToolOutput::error(error.to_string()),
                },
            ),
            ToolEffect::Cancel { process_id } => Handled::continue_with(
                match context.processes.cancel(conversation_id, &process_id) {
                    Ok(id) => ToolOutput::success(format!(
                        "cancelling `{id}`; you will hear when it has stopped"
                    )),
                    Err(error) => ToolOutput::error(error.to_string()),
                },
            ),
            ToolEffect::Status { .. } => {
                Handled::continue_with(ToolOutput::error("set_status is for workers"))
            }
            ToolEffect::Cron(request) => Handled::later(Box::pin(crate::tools::apply_cron(
                context.cron.clone(),
                request,
                conversation_id.to_string(),
            ))),
        }
    }

    /// Sends the turn's answer, then records it with the turn's context. The triggering
    /// messages are closed only after the send, so a crash before it leaves them pending.
    async fn deliver(&mut self, batch: Vec<StoredMessage>, answer: Answer, mut new: Vec<Message>) {
        let context = self.context.clone();
        let in_reply_to: Vec<String> = batch.iter().map(|message| message.id.clone()).collect();
        let mut failure = None;
        let (content, answered_status, outcome) = match answer {
            Answer::Reply(text) => (
                OutboundContent::Text(text),
                MessageStatus::Answered,
                TurnOutcome::Replied,
            ),
            Answer::Skip => (
                OutboundContent::Skip,
                MessageStatus::Skipped,
                TurnOutcome::Skipped,
            ),
            Answer::Failed(error) => {
                context.events.publish(ProcessEvent::TurnFailed {
                    agent_id: context.agent_id.clone(),
                    conversation_id: self.conversation_id.clone(),
                    error: error.clone(),
                });
                let text = format!("Sorry, I could not answer: {error}");
                failure = Some(error);
                new.push(Message::assistant(text.clone()));
                (
                    OutboundContent::Text(text),
                    MessageStatus::Failed,
                    TurnOutcome::Failed,
                )
            }
        };
        let response = OutboundResponse {
            agent_id: context.agent_id.clone(),
            conversation_id: self.conversation_id.clone(),
            in_reply_to: in_reply_to.clone(),
            content,
        };
        let content = &response.content;
        let delivered = if self.is_cron {
            let report = match (failure, content) {
                (Some(error), _) => RunReport::Failed(error),
                (None, OutboundContent::Text(text)) => RunReport::Answer(text.clone()),
                (None, OutboundContent::Skip) => RunReport::Skipped,
            };
            if !context.cron.report(&self.conversation_id, report) {
                tracing::warn!("no cron run waits for this answer any more; it is only recorded");
            }
            Ok(())
        } else {
            context.messaging.deliver(&response).await
        };
        let reply_id = new_message_id();
        let (reply, answered_status) = match (&delivered, content) {
            (Ok(()), OutboundContent::Text(text)) => (
                Some(NewMessage {
                    id: &reply_id,
                    conversation_id: &self.conversation_id,
                    role: Role::Assistant,
                    sender: &context.config.display_name,
                    content: text,
                    platform_message_id: None,
                    status: MessageStatus::Sent,
                }),
                answered_status,
            ),
            (Ok(()), OutboundContent::Skip) => (None, answered_status),
            (Err(error), _) => {
                tracing::error!(%error, "cannot deliver the answer; the messages are marked failed");
                (None, MessageStatus::Failed)
            }
        };
        let record = TurnRecord {
            conversation_id: &self.conversation_id,
            reply,
            answered: &in_reply_to,
            answered_status,
            context: new.into_iter().map(ContextBody::Message).collect(),
        };
        let recorded = record_until_stored(&context, &record).await;
        context.messaging.turn_recorded(&response);
        for message in &batch {
            self.loaded.remove(&message.id);
        }
        if let Some((stored, items)) = recorded {
            self.context_items.extend(items);
            if let Some(stored) = stored {
                context.events.publish(ProcessEvent::MessageSent {
                    agent_id: context.agent_id.clone(),
                    conversation_id: self.conversation_id.clone(),
                    message_id: stored.id,
                    in_reply_to: in_reply_to.clone(),
                    content: stored.content,
                });
            }
        }
        if delivered.is_ok() {
            context.events.publish(ProcessEvent::TurnCompleted {
                agent_id: context.agent_id.clone(),
                conversation_id: self.conversation_id.clone(),
                in_reply_to,
                outcome,
            });
        }
    }

    /// Runs the compactor's plan after a turn: a drop happens now, a summary in the
    /// background while the channel keeps answering.
    async fn compact(&mut self) {
        // Planned on the history in place: this runs after every turn, and nearly always
        // finds nothing to do.
        let items = self.context_items.make_contiguous();
        let plan = compactor::plan(
            items,
            self.system_prompt.len() / 4,
            self.context.config.limits.context_window,
            self.summary_running,
        );
        let count = match plan {
            compactor::Plan::Nothing => return,
            compactor::Plan::Drop { count } | compactor::Plan::Summarise { count } => count,
        };
        let span = &items[..count];
        let (first, last) = (span[0].seq, span[count - 1].seq);
        let tokens = span.iter().map(|item| item.tokens).sum();
        let span = matches!(plan, compactor::Plan::Summarise { .. }).then(|| span.to_vec());
        self.context
            .events
            .publish(ProcessEvent::CompactionStarted {
                agent_id: self.context.agent_id.clone(),
                conversation_id: self.conversation_id.clone(),
                items: count,
                tokens,
            });
        let Some(span) = span else {
            tracing::warn!(
                items = count,
                "context nearly full; dropping the oldest history"
            );
            let marker = ContextBody::Marker(
                "earlier conversation dropped to fit the context window".to_string(),
            );
            self.replace_span(first, last, count, marker, true).await;
            return;
        };
        self.summary_running = true;
        let context = self.context.clone();
        let results = self.results.clone();
        self.context.tasks.spawn(async move {
            let summary = compactor::summarise(&context, &span)
                .await
                .map_err(|error| error.to_string());
            let compaction = Compaction {
                first,
                last,
                count,
                summary,
            };
            // The channel may have stopped; the history is then simply not compacted.
            let _ = results.send(ChannelInput::Compacted(compaction)).await;
        });
    }

    async fn apply_summary(&mut self, compaction: Compaction) {
        self.summary_running = false;
        match compaction.summary {
            Ok(summary) if !summary.is_empty() => {
                self.replace_span(
                    compaction.first,
                    compaction.last,
                    compaction.count,
                    ContextBody::Summary(summary),
                    false,
                )
                .await;
            }
            Ok(_) => tracing::warn!("the compactor returned an empty summary; history kept"),
            Err(error) => {
                tracing::warn!(%error, "summary failed; history kept, will retry after the next turn")
            }
        }
    }

    async fn replace_span(
        &mut self,
        first: i64,
        last: i64,
        count: usize,
        replacement: ContextBody,
        dropped: bool,
    ) {
        let replaced = self
            .context
            .store
            .replace_context(&self.conversation_id, first, last, count, replacement)
            .await;
        match replaced {
            Ok(Some(item)) => {
                let position = self
                    .context_items
                    .iter()
                    .position(|existing| existing.seq >= first)
                    .unwrap_or(0);
                self.context_items
                    .retain(|existing| existing.seq < first || existing.seq > last);
                self.context_items.insert(position, item);
                self.context
                    .events
                    .publish(ProcessEvent::CompactionCompleted {
                        agent_id: self.context.agent_id.clone(),
                        conversation_id: self.conversation_id.clone(),
                        removed_items: count,
                        dropped,
                    });
            }
            Ok(None) => tracing::debug!("the compacted span changed meanwhile; summary discarded"),
            Err(error) => tracing::error!(%error, "cannot compact the history"),
        }
    }
}

/// Records a delivered turn, retrying while the database cannot be written (a full disk, a
/// busy lock): until it is recorded its messages stay pending, and a restart would answer them
/// a second time. Gives up only on shutdown or on an error that retrying cannot cure.
async fn record_until_stored(
    context: &AgentContext,
    record: &TurnRecord<'_>,
) -> Option<(Option<StoredMessage>, Vec<ContextItem>)> {
    let mut delay = RECORD_RETRY_FIRST;
    loop {
        let error = match context.store.record_turn(record).await {
            Ok(recorded) => return Some(recorded),
            Err(error) => error,
        };
        if !error.is_transient() {
            tracing::error!(%error, "the turn was delivered but cannot be recorded; its messages stay pending");
            return None;
        }
        tracing::error!(%error, disk = error.is_disk_failure(), retry_in_ms = delay.as_millis() as u64, "the turn was delivered but cannot be recorded yet; retrying");
        tokio::select! {
            () = context.closing.cancelled() => {
                tracing::error!("shutting down before the turn could be recorded; its messages stay pending and will be answered again after a restart");
                return None;
            }
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(RECORD_RETRY_MAX);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The user message of a turn: one message as it is; several (a coalesced burst, or messages
/// queued during a turn) with a note of who said what when more than one person spoke.
fn user_input(batch: &[StoredMessage]) -> String {
    let several_senders = batch
        .iter()
        .any(|message| message.sender != batch[0].sender);
    batch
        .iter()
        .map(|message| {
            if several_senders {
                format!("[{}]: {}", message.sender, message.content)
            } else {
                message.content.clone()
            }
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn is_tool_result(message: &Message) -> bool {
    match message {
        Message::User { content } => content
            .iter()
            .any(|part| matches!(part, rig::message::UserContent::ToolResult(_))),
        Message::System { .. } | Message::Assistant { .. } => false,
    }
}

fn excerpt(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let cut: String = text.chars().take(limit).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(sender: &str, content: &str) -> StoredMessage {
        StoredMessage {
            id: new_message_id(),
            conversation_id: "portal:test".into(),
            role: Role::User,
            sender: sender.into(),
            content: content.into(),
            platform_message_id: None,
            status: MessageStatus::Pending,
            created_at: 0,
        }
    }

    #[test]
    fn a_burst_notes_who_said_what() {
        assert_eq!(
            user_input(&[message("ana", "one"), message("ana", "two")]),
            "one\n\ntwo"
        );
        assert_eq!(
            user_input(&[message("ana", "hi"), message("bo", "hello")]),
            "[ana]: hi\n\n[bo]: hello"
        );
    }
}
