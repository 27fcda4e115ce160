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

async fn content_hash(path: &Path) -> Option<u64> {
    let content = tokio::fs::read(path).await.ok()?;
    let mut hasher = DefaultHasher::new();
    content.hash(&mut hasher);
    Some(hasher.finish())
}

/// Watches the config file until the daemon shuts down.
pub(super) fn start(state: &Arc<DaemonState>, tasks: &TaskTracker) {
    let state = state.clone();
    let span = tracing::info_span!("config_watch");
    tasks.spawn(async move { watch(state).await }.instrument(span));
}

async fn watch(state: Arc<DaemonState>) {
    let path = state.reloader.config_path().to_path_buf();
    let mut seen = stamp(&path).await;
    let mut applied = content_hash(&path).await;
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
