//! Noticing edits of the config file. A lean poll rather than inotify: every
//! `[reload] interval_ms` the file's size, modification time and inode are looked at (an
//! editor that saves by renaming a new file over the old one changes the inode); when they
//! changed, the content is hashed, and an edit is applied once the content has stayed the
//! same for one more interval (a save in progress is never read half-written twice in a
//! row). It works the same on bind mounts and network filesystems, where change
//! notifications often do not arrive, and needs no crate.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::DaemonState;
use crate::config::{Config, ConfigError};

/// What identifies one version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    length: u64,
    modified: i64,
    modified_nanos: i64,
    inode: u64,
}

async fn stamp(path: &Path) -> Option<Stamp> {
    let metadata = tokio::fs::metadata(path).await.ok()?;
    Some(Stamp {
        length: metadata.len(),
        modified: metadata.mtime(),
        modified_nanos: metadata.mtime_nsec(),
        inode: metadata.ino(),
    })
}

fn hash_of(content: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    content.hash(&mut hasher);
    hasher.finish()
}

async fn content_hash(path: &Path) -> Option<u64> {
    tokio::fs::read(path)
        .await
        .ok()
        .map(|content| hash_of(&content))
}

/// The version of the file the daemon started on: the watch compares against it, so an edit
/// made while the daemon starts is not mistaken for the version it runs.
pub(super) struct Baseline {
    stamp: Option<Stamp>,
    hash: u64,
}

/// Reads and parses the config file, noting which version of it was read.
pub(super) async fn load(
    path: &Path,
    environment: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Baseline), ConfigError> {
    // Stamped before reading: an edit after this point changes the stamp and is seen.
    let stamp = stamp(path).await;
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let mut config = Config::parse(&text, &path.display().to_string(), environment)?;
    config.path = Some(path.to_path_buf());
    let hash = hash_of(text.as_bytes());
    Ok((config, Baseline { stamp, hash }))
}

/// Watches the config file until the daemon shuts down.
pub(super) fn start(state: &Arc<DaemonState>, tasks: &TaskTracker, baseline: Baseline) {
    let state = state.clone();
    let span = tracing::info_span!("config_watch");
    tasks.spawn(async move { watch(state, baseline).await }.instrument(span));
}

async fn watch(state: Arc<DaemonState>, baseline: Baseline) {
    let path = state.reloader.config_path().to_path_buf();
    let mut seen = baseline.stamp;
    let mut applied = Some(baseline.hash);
    let mut candidate: Option<u64> = None;
    loop {
        let config = state.config();
        let interval = Duration::from_millis(config.reload.interval_ms);
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = state.shutdown.cancelled() => return,
        }
        if !config.reload.watch {
            continue;
        }
        let now = stamp(&path).await;
        if now.is_none() || (now == seen && candidate.is_none()) {
            // Gone for a moment (being replaced), or untouched.
            continue;
        }
        seen = now;
        let Some(hash) = content_hash(&path).await else {
            continue;
        };
        if Some(hash) == applied {
            candidate = None;
            continue;
        }
        if candidate != Some(hash) {
            // Changed since the last look: apply it once it holds still.
            candidate = Some(hash);
            continue;
        }
        candidate = None;
        // Applied or refused, this content is dealt with: a broken edit is reported once,
        // not at every interval.
        applied = Some(hash);
        tracing::info!(path = %path.display(), "the config file changed; reloading");
        state.reload().await;
    }
}
