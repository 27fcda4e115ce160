//! The MessagingManager: owns the adapters (the configured chat platforms and the portal),
//! runs each as a supervised task that reconnects with capped exponential backoff and hands
//! its messages in through `Inbound`, and reports each platform's health.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::MessagingError;
use super::adapter::{Adapter, AdapterError, AdapterState, AdapterStatus, Health};
use super::inbound::{Inbound, InboundHandler};
use super::portal::Portal;
use super::streaming::LiveDrafts;
use crate::config::MessagingConfig;
use crate::conversation_id::Platform;
use crate::supervision::{RestartPolicy, TaskError, supervise};

/// Reconnect backoff of a lost platform connection: doubled per failure up to a minute, and
/// reset after a connection stayed up for a minute.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// How long shutdown waits for adapter tasks to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Moves messages between the platforms and the daemon.
pub struct MessagingManager {
    pub(super) portal: Arc<Portal>,
    /// Every adapter, the portal included, by the platform it carries.
    pub(super) adapters: BTreeMap<Platform, Arc<dyn Adapter>>,
    health: BTreeMap<Platform, Health>,
    /// The typing indicator each conversation shows until its next answer.
    pub(super) typing: Mutex<HashMap<String, CancellationToken>>,
    intake: CancellationToken,
    adapter_tasks: TaskTracker,
    /// Typing refreshes.
    pub(super) background: TaskTracker,
    /// Answers being written into an editable message, by conversation.
    pub(super) drafts: LiveDrafts,
}

impl MessagingManager {
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

    /// A manager with these chat platform adapters, and the portal.
    pub fn with_adapters(chat: Vec<Arc<dyn Adapter>>) -> Self {
        let portal = Arc::new(Portal::default());
        let mut adapters: BTreeMap<Platform, Arc<dyn Adapter>> = chat
            .into_iter()
            .map(|adapter| (adapter.platform(), adapter))
            .collect();
        adapters.insert(Platform::Portal, portal.clone());
        let health = Platform::CHAT
            .iter()
            .chain(adapters.keys())
            .map(|&platform| {
                let state = if adapters.contains_key(&platform) {
                    AdapterState::Connecting
                } else {
                    AdapterState::Disabled
                };
                (platform, Health::new(platform.as_str(), state))
            })
            .collect();
        Self {
            portal,
            adapters,
            health,
            typing: Mutex::new(HashMap::new()),
            intake: CancellationToken::new(),
            adapter_tasks: TaskTracker::new(),
            background: TaskTracker::new(),
            drafts: LiveDrafts::default(),
        }
    }

    /// The daemon's own platform, through which the HTTP API submits messages.
    pub fn portal(&self) -> &Portal {
        &self.portal
    }

    /// Every platform's connection state, configured or not.
    pub fn statuses(&self) -> Vec<AdapterStatus> {
        self.health.values().filter_map(Health::snapshot).collect()
    }

    /// Starts every adapter; their messages go to `handler`.
    pub fn start(&self, handler: Arc<dyn InboundHandler>) {
        for (&platform, adapter) in &self.adapters {
            let Some(health) = self.health.get(&platform).cloned() else {
                continue;
            };
            let inbound = Inbound::new(handler.clone(), health.clone());
            if platform == Platform::Portal {
                // Attached before the API can submit anything.
                self.portal.attach(inbound.clone());
            }
            let adapter = adapter.clone();
            let stop = self.intake.clone();
            let span = tracing::info_span!("adapter", adapter = platform.as_str());
            supervise(
                &self.adapter_tasks,
                "platform adapter",
                stop.clone(),
                RestartPolicy::from(INITIAL_BACKOFF),
                move || {
                    let adapter = adapter.clone();
                    let inbound = inbound.clone();
                    let health = health.clone();
                    let stop = stop.clone();
                    async move { connect(adapter.as_ref(), inbound, &health, stop).await }
                        .instrument(span.clone())
                },
            );
        }
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
        for (platform, health) in &self.health {
            if self.adapters.contains_key(platform) {
                health.set(AdapterState::Stopped);
            }
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
        self.drafts.stop_all();
        self.background.close();
        let _ = tokio::time::timeout(STOP_TIMEOUT, self.background.wait()).await;
        for adapter in self.adapters.values() {
            adapter.shutdown().await;
        }
        self.portal.close();
    }
}

/// One connection of an adapter, until intake stops (`Ok`) or the connection is lost (the
/// supervisor reconnects after its backoff); the health says which.
async fn connect(
    adapter: &dyn Adapter,
    inbound: Inbound,
    health: &Health,
    stop: CancellationToken,
) -> Result<(), TaskError> {
    let outcome = AssertUnwindSafe(adapter.start(inbound, stop.clone()))
        .catch_unwind()
        .await;
    if stop.is_cancelled() {
        return Ok(());
    }
    let error = match outcome {
        Ok(Ok(())) => AdapterError::transient("the connection ended"),
        Ok(Err(error)) => error,
        Err(_) => AdapterError::transient("the adapter panicked"),
    };
    tracing::warn!(%error, "platform connection lost; reconnecting");
    health.reconnecting(error.to_string());
    Err(error.into())
}
