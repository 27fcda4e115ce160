//! The MessagingManager: owns the adapters (the configured chat platforms and the portal),
//! runs each as a supervised task that reconnects with capped exponential backoff and hands
//! its messages in through `Inbound`, and reports each platform's health.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
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
    /// Every running adapter, the portal included, by the platform it carries. A config
    /// reload replaces one platform's entry while the others run on.
    running: RwLock<BTreeMap<Platform, Running>>,
    health: BTreeMap<Platform, Health>,
    /// Where inbound messages go; set by `start`.
    handler: OnceLock<Arc<dyn InboundHandler>>,
    /// The typing indicator each conversation shows until its next answer.
    pub(super) typing: Mutex<HashMap<String, CancellationToken>>,
    intake: CancellationToken,
    /// Typing refreshes.
    pub(super) background: TaskTracker,
    /// Answers being written into an editable message, by conversation.
    pub(super) drafts: LiveDrafts,
}

/// One platform's adapter with its connection task and the switch that stops it.
#[derive(Clone)]
struct Running {
    adapter: Arc<dyn Adapter>,
    /// A child of `intake`: stopping one adapter leaves the others running.
    stop: CancellationToken,
    task: TaskTracker,
}

impl Running {
    fn new(adapter: Arc<dyn Adapter>, intake: &CancellationToken) -> Self {
        Self {
            adapter,
            stop: intake.child_token(),
            task: TaskTracker::new(),
        }
    }

    /// Stops taking messages and waits for the connection task to end.
    async fn stop_intake(&self) -> bool {
        self.stop.cancel();
        self.task.close();
        tokio::time::timeout(STOP_TIMEOUT, self.task.wait())
            .await
            .is_ok()
    }
}

/// The adapter the config asks for on each chat platform (`None`: not configured, or
/// `enabled = false`). Building one can fail (a malformed URL); nothing runs yet.
pub fn configured_adapters(
    config: &MessagingConfig,
) -> Result<BTreeMap<Platform, Option<Arc<dyn Adapter>>>, MessagingError> {
    let mut adapters: BTreeMap<Platform, Option<Arc<dyn Adapter>>> = Platform::CHAT
        .iter()
        .map(|&platform| (platform, None))
        .collect();
    if let Some(discord) = config.discord.as_ref().filter(|discord| discord.enabled) {
        adapters.insert(
            Platform::Discord,
            Some(Arc::new(super::discord::DiscordAdapter::new(
                discord,
                config.max_file_bytes,
            )?)),
        );
    }
    if let Some(telegram) = config.telegram.as_ref().filter(|telegram| telegram.enabled) {
        adapters.insert(
            Platform::Telegram,
            Some(Arc::new(super::telegram::TelegramAdapter::new(
                telegram,
                config.max_file_bytes,
            )?)),
        );
    }
    if let Some(slack) = config.slack.as_ref().filter(|slack| slack.enabled) {
        adapters.insert(
            Platform::Slack,
            Some(Arc::new(super::slack::SlackAdapter::new(
                slack,
                config.max_file_bytes,
            )?)),
        );
    }
    Ok(adapters)
}

impl MessagingManager {
    /// A manager with an adapter for every platform configured under `[messaging]`.
    pub fn from_config(config: &MessagingConfig) -> Result<Self, MessagingError> {
        Ok(Self::with_adapters(
            configured_adapters(config)?
                .into_values()
                .flatten()
                .collect(),
        ))
    }

    /// A manager with these chat platform adapters, and the portal.
    pub fn with_adapters(chat: Vec<Arc<dyn Adapter>>) -> Self {
        let portal = Arc::new(Portal::default());
        let intake = CancellationToken::new();
        let mut running: BTreeMap<Platform, Running> = chat
            .into_iter()
            .map(|adapter| (adapter.platform(), Running::new(adapter, &intake)))
            .collect();
        running.insert(Platform::Portal, Running::new(portal.clone(), &intake));
        let health = Platform::CHAT
            .iter()
            .chain(running.keys())
            .map(|&platform| {
                let state = if running.contains_key(&platform) {
                    AdapterState::Connecting
                } else {
                    AdapterState::Disabled
                };
                (platform, Health::new(platform.as_str(), state))
            })
            .collect();
        Self {
            portal,
            running: RwLock::new(running),
            health,
            handler: OnceLock::new(),
            typing: Mutex::new(HashMap::new()),
            intake,
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

    /// The adapter carrying `platform` now, if one is configured.
    pub(super) fn adapter(&self, platform: Platform) -> Option<Arc<dyn Adapter>> {
        self.running
            .read()
            .ok()?
            .get(&platform)
            .map(|running| running.adapter.clone())
    }

    fn all_running(&self) -> Vec<(Platform, Running)> {
        self.running
            .read()
            .map(|running| {
                running
                    .iter()
                    .map(|(platform, entry)| (*platform, entry.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Starts every adapter; their messages go to `handler`.
    pub fn start(&self, handler: Arc<dyn InboundHandler>) {
        if self.handler.set(handler).is_err() {
            tracing::warn!("messaging started twice; keeping the first handler");
        }
        for (platform, running) in self.all_running() {
            self.launch(platform, &running);
        }
    }

    /// Runs one adapter's connection under supervision.
    fn launch(&self, platform: Platform, running: &Running) {
        let (Some(handler), Some(health)) = (self.handler.get(), self.health.get(&platform)) else {
            return;
        };
        let health = health.clone();
        health.set(AdapterState::Connecting);
        let inbound = Inbound::new(handler.clone(), health.clone());
        if platform == Platform::Portal {
            // Attached before the API can submit anything.
            self.portal.attach(inbound.clone());
        }
        let adapter = running.adapter.clone();
        let stop = running.stop.clone();
        let span = tracing::info_span!("adapter", adapter = platform.as_str());
        supervise(
            &running.task,
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

    /// Puts `adapter` (or nothing) on a chat platform while the rest run on (a config reload
    /// changed its table): answers go to the new adapter at once; the old one stops taking
    /// messages, finishes what it was handing in (a platform that redelivers brings back
    /// anything it had not confirmed) and closes; then the new one connects.
    pub async fn replace(&self, platform: Platform, adapter: Option<Arc<dyn Adapter>>) {
        if platform == Platform::Portal || self.intake.is_cancelled() {
            return;
        }
        let fresh = adapter.map(|adapter| Running::new(adapter, &self.intake));
        let previous = match self.running.write() {
            Ok(mut running) => match &fresh {
                Some(fresh) => running.insert(platform, fresh.clone()),
                None => running.remove(&platform),
            },
            Err(_) => {
                tracing::error!(
                    adapter = platform.as_str(),
                    "the adapter table is poisoned; not replaced"
                );
                return;
            }
        };
        if let Some(previous) = previous {
            if !previous.stop_intake().await {
                tracing::warn!(
                    adapter = platform.as_str(),
                    "the old connection did not stop in time"
                );
            }
            previous.adapter.shutdown().await;
        }
        match &fresh {
            Some(fresh) => {
                tracing::info!(
                    adapter = platform.as_str(),
                    "platform adapter (re)started by a config reload"
                );
                self.launch(platform, fresh);
            }
            None => {
                tracing::info!(
                    adapter = platform.as_str(),
                    "platform adapter stopped by a config reload"
                );
                if let Some(health) = self.health.get(&platform) {
                    health.set(AdapterState::Disabled);
                }
            }
        }
    }

    /// Stops taking messages from the platforms; replies can still be sent.
    pub async fn stop_intake(&self) {
        self.intake.cancel();
        let running = self.all_running();
        let stopped =
            futures::future::join_all(running.iter().map(|(_, running)| running.stop_intake()))
                .await;
        if stopped.contains(&false) {
            tracing::warn!("platform adapters did not stop in time");
        }
        for (platform, _) in &running {
            if let Some(health) = self.health.get(platform) {
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
        for (_, running) in self.all_running() {
            running.adapter.shutdown().await;
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
