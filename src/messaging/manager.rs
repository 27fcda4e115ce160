//! The MessagingManager: runs each configured platform adapter as a supervised task that
//! reconnects with capped exponential backoff, fans their messages into one bounded queue
//! routed to agents (commands answered first), keeps typing indicators alive during turns, and
//! sends outbound responses, split and retried, to the adapter named by the conversation id.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::adapter::InboundEnvelope;
use super::adapter::{Adapter, AdapterError, AdapterState, AdapterStatus, Health, Inbound};
use super::bindings::{Bindings, Resolution};
use super::{
    InboundMessage, MessagingError, OutboundContent, OutboundResponse, Portal, commands,
    platform_of, split_message,
};
use crate::config::MessagingConfig;

/// Inbound messages waiting to be stored; adapters wait when it is full.
const INBOUND_CAPACITY: usize = 256;
/// Reconnect backoff of a lost platform connection: doubled per failure up to the cap, and
/// reset after a connection stayed up for `HEALTHY_AFTER`.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAXIMUM_BACKOFF: Duration = Duration::from_secs(60);
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// Attempts per outbound chunk (the first try plus retries on transient errors).
const SEND_ATTEMPTS: u32 = 5;
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
const SEND_BACKOFF: Duration = Duration::from_millis(500);
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(60);
/// A typing indicator is never kept alive longer than this, whatever happens to the turn.
const LONGEST_TYPING: Duration = Duration::from_secs(600);
const FIRST_TYPING_TIMEOUT: Duration = Duration::from_secs(2);
/// How long shutdown waits for adapter tasks to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

const PLATFORMS: [&str; 3] = ["discord", "telegram", "slack"];

/// Routes messages between the platforms and the agents.
pub struct MessagingManager {
    portal: Portal,
    adapters: BTreeMap<&'static str, Arc<dyn Adapter>>,
    health: BTreeMap<&'static str, Health>,
    /// The platform message each conversation's next reply is threaded under.
    reply_targets: Mutex<HashMap<String, String>>,
    typing: Mutex<HashMap<String, CancellationToken>>,
    intake: CancellationToken,
    adapter_tasks: TaskTracker,
    background: TaskTracker,
}

impl Default for MessagingManager {
    fn default() -> Self {
        Self::with_adapters(Vec::new())
    }
}

impl MessagingManager {
    /// A manager with only the portal.
    pub fn new() -> Self {
        Self::default()
    }

    /// A manager with an adapter for every platform configured under `[messaging]`.
    pub fn from_config(config: &MessagingConfig) -> Result<Self, MessagingError> {
        let mut adapters: Vec<Arc<dyn Adapter>> = Vec::new();
        if let Some(discord) = config.discord.as_ref().filter(|discord| discord.enabled) {
            adapters.push(Arc::new(super::discord::DiscordAdapter::new(discord)?));
        }
        if let Some(telegram) = config.telegram.as_ref().filter(|telegram| telegram.enabled) {
            adapters.push(Arc::new(super::telegram::TelegramAdapter::new(telegram)?));
        }
        if let Some(slack) = config.slack.as_ref().filter(|slack| slack.enabled) {
            adapters.push(Arc::new(super::slack::SlackAdapter::new(slack)?));
        }
        Ok(Self::with_adapters(adapters))
    }

    pub fn with_adapters(adapters: Vec<Arc<dyn Adapter>>) -> Self {
        let adapters: BTreeMap<&'static str, Arc<dyn Adapter>> = adapters
            .into_iter()
            .map(|adapter| (adapter.name(), adapter))
            .collect();
        let health = PLATFORMS
            .iter()
            .chain(adapters.keys())
            .map(|&name| {
                let state = if adapters.contains_key(name) {
                    AdapterState::Connecting
                } else {
                    AdapterState::Disabled
                };
                (name, Health::new(name, state))
            })
            .collect();
        Self {
            portal: Portal::default(),
            adapters,
            health,
            reply_targets: Mutex::new(HashMap::new()),
            typing: Mutex::new(HashMap::new()),
            intake: CancellationToken::new(),
            adapter_tasks: TaskTracker::new(),
            background: TaskTracker::new(),
        }
    }

    pub fn portal(&self) -> &Portal {
        &self.portal
    }

    /// Every platform's connection state, configured or not.
    pub fn statuses(&self) -> Vec<AdapterStatus> {
        self.health.values().filter_map(Health::snapshot).collect()
    }

    /// Starts every adapter and the task routing their messages to agents.
    pub fn start(self: &Arc<Self>, bindings: Bindings) {
        if self.adapters.is_empty() {
            return;
        }
        let (sender, receiver) = mpsc::channel(INBOUND_CAPACITY);
        for (&name, adapter) in &self.adapters {
            let Some(health) = self.health.get(name).cloned() else {
                continue;
            };
            let inbound = Inbound::new(sender.clone(), health.clone());
            let span = tracing::info_span!("adapter", adapter = name);
            self.adapter_tasks.spawn(
                run_adapter(adapter.clone(), inbound, health, self.intake.clone()).instrument(span),
            );
        }
        drop(sender);
        let manager = self.clone();
        self.adapter_tasks
            .spawn(async move { manager.route_inbound(receiver, bindings).await });
    }

    /// Stops taking messages from the platforms; replies can still be sent.
    pub async fn stop_intake(&self) {
        self.intake.cancel();
        self.adapter_tasks.close();
        if tokio::time::timeout(STOP_TIMEOUT, self.adapter_tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("platform adapters did not stop in time");
        }
    }

    /// Stops intake, typing indicators and the adapters, and releases portal waiters.
    pub async fn shutdown(&self) {
        self.stop_intake().await;
        if let Ok(mut typing) = self.typing.lock() {
            for (_, token) in typing.drain() {
                token.cancel();
            }
        }
        self.background.close();
        let _ = tokio::time::timeout(STOP_TIMEOUT, self.background.wait()).await;
        for adapter in self.adapters.values() {
            adapter.shutdown().await;
        }
        self.portal.close();
    }

    /// Sends a turn's answer: platform text is split to the platform's limit and each chunk
    /// sent with retries. `Skip` sends nothing, and neither does the portal, whose callers
    /// hear the answer once it is recorded (`turn_recorded`).
    pub async fn deliver(&self, response: &OutboundResponse) -> Result<(), MessagingError> {
        let conversation_id = response.conversation_id.clone();
        self.stop_typing(&conversation_id);
        let platform = platform_of(&conversation_id);
        if platform == "portal" {
            return Ok(());
        }
        let adapter = self
            .adapters
            .get(platform)
            .ok_or_else(|| MessagingError::NoAdapter(conversation_id.clone()))?;
        let reply_to = self
            .reply_targets
            .lock()
            .ok()
            .and_then(|mut targets| targets.remove(&conversation_id));
        match &response.content {
            OutboundContent::Skip => Ok(()),
            OutboundContent::Text(text) => {
                let span = tracing::info_span!("deliver", agent_id = %response.agent_id, conversation_id = %conversation_id);
                send_text(
                    adapter.as_ref(),
                    &conversation_id,
                    text,
                    reply_to.as_deref(),
                )
                .instrument(span)
                .await
            }
        }
    }

    /// The turn that sent `response` is written down (or will not be): portal callers
    /// waiting for it get the answer now, so the transcript they read next already holds it.
    pub fn turn_recorded(&self, response: &OutboundResponse) {
        if platform_of(&response.conversation_id) == "portal" {
            self.portal.release(response);
        }
    }

    /// Whether messages can be sent to a conversation: the portal always, a chat platform
    /// when its adapter is configured.
    pub fn can_send_to(&self, conversation_id: &str) -> bool {
        let platform = platform_of(conversation_id);
        platform == "portal" || self.adapters.contains_key(platform)
    }

    /// A proactive message (a cron job's outcome): split and sent with retries to a platform
    /// conversation. A portal conversation has nothing to push to; its transcript and the
    /// event stream carry the message.
    pub async fn send_to(&self, conversation_id: &str, text: &str) -> Result<(), MessagingError> {
        if platform_of(conversation_id) == "portal" {
            return Ok(());
        }
        let span = tracing::info_span!("send", conversation_id = %conversation_id);
        self.broadcast(conversation_id, text).instrument(span).await
    }

    /// A proactive message to a platform conversation (not an answer to anything).
    pub async fn broadcast(&self, conversation_id: &str, text: &str) -> Result<(), MessagingError> {
        let adapter = self
            .adapters
            .get(platform_of(conversation_id))
            .ok_or_else(|| MessagingError::NoAdapter(conversation_id.to_string()))?;
        for chunk in split_message(text, adapter.message_limit()) {
            with_retries(conversation_id, || {
                adapter.broadcast(conversation_id, &chunk)
            })
            .await?;
        }
        Ok(())
    }

    /// Shows the typing indicator in a conversation (waiting briefly for the first one) and
    /// keeps refreshing it until the conversation's next answer is delivered.
    pub async fn typing(&self, conversation_id: &str) {
        let Some(adapter) = self.adapters.get(platform_of(conversation_id)).cloned() else {
            return;
        };
        let token = CancellationToken::new();
        if let Ok(mut typing) = self.typing.lock()
            && let Some(previous) = typing.insert(conversation_id.to_string(), token.clone())
        {
            previous.cancel();
        }
        let first = tokio::time::timeout(FIRST_TYPING_TIMEOUT, adapter.typing(conversation_id));
        if let Ok(Err(error)) = first.await {
            tracing::debug!(%error, %conversation_id, "typing indicator failed");
        }
        let conversation_id = conversation_id.to_string();
        self.background.spawn(async move {
            let until = Instant::now() + LONGEST_TYPING;
            while Instant::now() < until {
                tokio::select! {
                    () = tokio::time::sleep(adapter.typing_interval()) => {}
                    () = token.cancelled() => return,
                }
                tokio::select! {
                    result = adapter.typing(&conversation_id) => if let Err(error) = result {
                        tracing::debug!(%error, %conversation_id, "typing indicator failed");
                    },
                    () = token.cancelled() => return,
                }
            }
        });
    }

    fn stop_typing(&self, conversation_id: &str) {
        if let Ok(mut typing) = self.typing.lock()
            && let Some(token) = typing.remove(conversation_id)
        {
            token.cancel();
        }
    }

    async fn route_inbound(
        &self,
        mut receiver: mpsc::Receiver<InboundEnvelope>,
        bindings: Bindings,
    ) {
        while let Some(envelope) = receiver.recv().await {
            let span = tracing::info_span!(
                "inbound",
                conversation_id = %envelope.message.conversation_id,
            );
            let outcome = self
                .handle_inbound(&bindings, envelope.message)
                .instrument(span)
                .await;
            // The adapter may have given up waiting; the message is stored either way.
            let _ = envelope.stored.send(outcome);
        }
    }

    /// Stores and queues one message on its agent, or answers it when it is a command.
    async fn handle_inbound(
        &self,
        bindings: &Bindings,
        message: InboundMessage,
    ) -> Result<(), String> {
        let agent = match bindings.resolve(&message) {
            Resolution::Agent(agent) => agent,
            Resolution::NotAddressed => {
                tracing::debug!("not addressed to the bot; ignored");
                return Ok(());
            }
            Resolution::NoAgent => {
                tracing::error!("no agent for this message; check [[bindings]]");
                return Ok(());
            }
        };
        let conversation_id = message.conversation_id.clone();
        if let Some(command) = commands::parse(&message.content) {
            tracing::info!(agent_id = %agent.id(), ?command, "command");
            let answer = commands::run(command, agent, &conversation_id).await;
            if let Some(adapter) = self.adapters.get(platform_of(&conversation_id)) {
                let reply_to = message.platform_message_id.as_deref();
                if let Err(error) =
                    send_text(adapter.as_ref(), &conversation_id, &answer, reply_to).await
                {
                    tracing::error!(%error, "cannot answer the command");
                }
            }
            return Ok(());
        }
        if let (Some(platform_id), Ok(mut targets)) =
            (&message.platform_message_id, self.reply_targets.lock())
        {
            targets.insert(conversation_id.clone(), platform_id.clone());
        }
        agent
            .route(message)
            .await
            .map(|_| ())
            .map_err(|error| error.to_string())
    }
}

/// Runs one adapter until intake stops, reconnecting with capped exponential backoff.
async fn run_adapter(
    adapter: Arc<dyn Adapter>,
    inbound: Inbound,
    health: Health,
    stop: CancellationToken,
) {
    let mut backoff = INITIAL_BACKOFF;
    loop {
        let started = Instant::now();
        let outcome = AssertUnwindSafe(adapter.start(inbound.clone(), stop.clone()))
            .catch_unwind()
            .await;
        if stop.is_cancelled() {
            health.set(AdapterState::Stopped);
            return;
        }
        let error = match outcome {
            Ok(Ok(())) => "the connection ended".to_string(),
            Ok(Err(error)) => error.to_string(),
            Err(_) => "the adapter panicked".to_string(),
        };
        if started.elapsed() > HEALTHY_AFTER {
            backoff = INITIAL_BACKOFF;
        }
        tracing::warn!(%error, backoff_ms = backoff.as_millis() as u64, "platform connection lost; reconnecting");
        health.reconnecting(error);
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => {
                health.set(AdapterState::Stopped);
                return;
            }
        }
        backoff = (backoff * 2).min(MAXIMUM_BACKOFF);
    }
}

/// Splits `text` to the adapter's limit and sends the chunks in order; the first one is
/// threaded under `reply_to`.
async fn send_text(
    adapter: &dyn Adapter,
    conversation_id: &str,
    text: &str,
    reply_to: Option<&str>,
) -> Result<(), MessagingError> {
    for (index, chunk) in split_message(text, adapter.message_limit())
        .iter()
        .enumerate()
    {
        let reply_to = if index == 0 { reply_to } else { None };
        with_retries(conversation_id, || {
            adapter.respond(conversation_id, chunk, reply_to)
        })
        .await?;
    }
    Ok(())
}

/// Runs a send, retrying transient failures (after the platform's retry-after when it gave
/// one, else with exponential backoff) and failing fast on permanent ones.
async fn with_retries<'a, Attempt, Attempting>(
    conversation_id: &str,
    mut send: Attempt,
) -> Result<(), MessagingError>
where
    Attempt: FnMut() -> Attempting,
    Attempting: Future<Output = Result<(), AdapterError>> + 'a,
{
    let mut backoff = SEND_BACKOFF;
    let mut attempt = 1;
    loop {
        let error = match tokio::time::timeout(SEND_TIMEOUT, send()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => error,
            Err(_) => {
                AdapterError::transient(format!("no answer within {} s", SEND_TIMEOUT.as_secs()))
            }
        };
        let wait = match &error {
            AdapterError::Transient { retry_after, .. } if attempt < SEND_ATTEMPTS => {
                retry_after.unwrap_or(backoff).min(LONGEST_RETRY_AFTER)
            }
            _ => {
                tracing::error!(%conversation_id, %error, attempt, "sending failed");
                return Err(MessagingError::Send {
                    conversation_id: conversation_id.to_string(),
                    source: error,
                });
            }
        };
        tracing::warn!(%conversation_id, %error, attempt, wait_ms = wait.as_millis() as u64, "sending failed; retrying");
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(Duration::from_secs(8));
        attempt += 1;
    }
}
