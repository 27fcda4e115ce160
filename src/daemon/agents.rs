//! Opening, starting and retiring one agent: its database, its scheduled jobs in front of its
//! outbox, and the `CronHost` through which those jobs reach it.

use std::path::Path;
use std::sync::{Arc, Weak};

use super::{AgentEntry, DaemonError};
use crate::agent::{AgentLinks, AgentRuntime, SharedServices};
use crate::config::AgentConfig;
use crate::conversation_id::ConversationId;
use crate::cron::{CronHost, CronService, CronStore, HostError, RunOutbox};
use crate::message::{InboundMessage, Outbox};
use crate::supervision::Lifecycle;

/// Opens one agent on its database, with its scheduled jobs in front of its outbox. Nothing
/// runs until `start`.
pub(super) async fn open(
    config: &AgentConfig,
    agents_root: &Path,
    shared: &SharedServices,
    platforms: &Arc<dyn Outbox>,
) -> Result<AgentEntry, DaemonError> {
    let agent_error = |source| DaemonError::Agent {
        agent: config.id.clone(),
        source,
    };
    let home = agents_root.join(&config.id);
    super::home::create_dir(&home).await?;
    let database = crate::database::open(&home.join("spacebot.db")).await?;
    let lifecycle = Lifecycle::default();
    let cron = CronService::new(
        config,
        CronStore::new(database.clone()),
        shared.prompts.clone(),
        lifecycle.clone(),
        shared.metrics.clone(),
    );
    let links = AgentLinks {
        outbox: Arc::new(super::courier::LinkOutbox {
            agent_id: config.id.clone(),
            messenger: shared.messenger.clone(),
            inner: Arc::new(RunOutbox::new(cron.clone(), platforms.clone())),
        }),
        cron: cron.clone(),
        lifecycle,
    };
    let runtime = AgentRuntime::open(config, &home, database, shared, links)
        .await
        .map_err(agent_error)?;
    Ok(AgentEntry {
        runtime: Arc::new(runtime),
        cron,
    })
}

/// Starts an opened agent: its cortex, its scheduled jobs (before pending messages are
/// answered, so an interrupted scheduled run is closed instead of run again), then the
/// answers it still owes.
pub(super) async fn start(agent_id: &str, entry: &AgentEntry) -> Result<(), DaemonError> {
    entry.runtime.start();
    let host: Arc<dyn CronHost> = entry.runtime.clone();
    let host: Weak<dyn CronHost> = Arc::downgrade(&host);
    entry
        .cron
        .start(host, &entry.runtime.config().cron)
        .await
        .map_err(|source| DaemonError::Cron {
            agent: agent_id.to_string(),
            source,
        })?;
    entry
        .runtime
        .resume_pending()
        .await
        .map_err(|source| DaemonError::Agent {
            agent: agent_id.to_string(),
            source,
        })?;
    Ok(())
}

/// How scheduled jobs reach their agent.
#[async_trait::async_trait]
impl CronHost for AgentRuntime {
    async fn fire(&self, message: InboundMessage) -> Result<(), HostError> {
        self.route(message).await?;
        Ok(())
    }

    async fn close(&self, conversation: &ConversationId) {
        self.close_conversation(conversation).await;
    }

    async fn announce(&self, target: &ConversationId, text: &str) -> Result<(), HostError> {
        Ok(AgentRuntime::announce(self, target, text).await?)
    }

    fn reaches(&self, target: &ConversationId) -> bool {
        AgentRuntime::reaches(self, target)
    }
}
