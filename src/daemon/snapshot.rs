//! The daemon's state at one scrape of `GET /metrics`: what runs, what waits, what is
//! connected, and what is stored, read from each part.

use std::path::Path;

use super::DaemonState;
use crate::messaging::AdapterState;
use crate::metrics::{AdapterSnapshot, Snapshot};

impl DaemonState {
    /// Reads every agent's processes, inboxes, pending messages, memories and jobs, every
    /// platform's connection and every database's size.
    pub async fn snapshot(&self) -> Snapshot {
        let agents = self.agents();
        let mut snapshot = Snapshot {
            uptime: self.started_at.elapsed(),
            open_breakers: self.llm.open_breakers().len() as u64,
            config_error: self
                .last_reload()
                .is_some_and(|report| report.outcome == super::ReloadOutcome::Failed),
            ..Snapshot::default()
        };
        for (id, entry) in agents.iter() {
            let mut gauges = entry.runtime.gauges().await;
            let (enabled, disabled) = match entry.cron.list().await {
                Ok(jobs) => {
                    let enabled = jobs.iter().filter(|job| job.enabled).count() as u64;
                    (enabled, jobs.len() as u64 - enabled)
                }
                Err(error) => {
                    tracing::warn!(%error, agent_id = %id, "cannot count cron jobs for the metrics");
                    (0, 0)
                }
            };
            gauges.cron_jobs_enabled = enabled;
            gauges.cron_jobs_disabled = disabled;
            snapshot.agents.push(gauges);
            let database = self.home.join("agents").join(id).join("spacebot.db");
            snapshot
                .databases
                .push((format!("agent:{id}"), database_size(&database).await));
        }
        snapshot.databases.push((
            "daemon".to_string(),
            database_size(&self.home.join("daemon.db")).await,
        ));
        snapshot.adapters = self
            .messaging
            .statuses()
            .into_iter()
            .map(|status| AdapterSnapshot {
                adapter: status.name,
                state: status.state.as_str(),
                states: &AdapterState::ALL,
                reconnects: u64::from(status.reconnects),
            })
            .collect();
        snapshot
    }
}

/// The database file with its write-ahead log and shared-memory index, in bytes.
async fn database_size(path: &Path) -> u64 {
    let mut total = 0;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        if let Ok(metadata) = tokio::fs::metadata(&name).await {
            total += metadata.len();
        }
    }
    total
}
