//! `$SPACEBOT_HOME`: where it is, its private folders, and the default config written on the
//! first run.

use std::path::{Path, PathBuf};

use super::{DaemonError, Environment};
use crate::config::DEFAULT_CONFIG;

/// `$SPACEBOT_HOME`, else `~/.spacebot`.
pub fn default_home(environment: &Environment) -> PathBuf {
    if let Some(home) = environment("SPACEBOT_HOME").filter(|value| !value.is_empty()) {
        return PathBuf::from(home);
    }
    let user_home = environment("HOME").unwrap_or_else(|| ".".to_string());
    Path::new(&user_home).join(".spacebot")
}

/// Creates (or tightens) one of the daemon's directories: its user's alone.
pub(super) async fn create_dir(path: &Path) -> Result<(), DaemonError> {
    crate::filesystem::private_directory(path).map_err(|source| DaemonError::Home {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the embedded default config on first run; an existing file is never touched.
pub(super) async fn write_default_config(path: &Path) -> Result<(), DaemonError> {
    let exists = tokio::fs::try_exists(path)
        .await
        .map_err(|source| DaemonError::Home {
            path: path.to_path_buf(),
            source,
        })?;
    let written = if exists {
        crate::filesystem::private_file(path)
    } else {
        tracing::info!(path = %path.display(), "writing the default config");
        crate::filesystem::write_private_file(path, DEFAULT_CONFIG.as_bytes())
    };
    written.map_err(|source| DaemonError::Home {
        path: path.to_path_buf(),
        source,
    })
}
