//! The daemon's files are its user's alone: directories under `$SPACEBOT_HOME` are created (or
//! tightened, when an earlier version made them) with mode 0700, files with 0600. The config
//! holds tokens and keys, and the databases hold every conversation.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

const DIRECTORY_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Creates `path` (and missing parents) readable by the owner alone, or tightens it.
pub fn private_directory(path: &Path) -> std::io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIRECTORY_MODE)
        .create(path)?;
    restrict(path, DIRECTORY_MODE)
}

/// Writes a new file readable by the owner alone; an existing file is an error.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Makes an existing file readable by the owner alone; a missing one is created empty that
/// way (so that SQLite, which copies a database's mode to its journal files, keeps it).
pub fn private_file(path: &Path) -> std::io::Result<()> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)?;
    restrict(path, FILE_MODE)
}

fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn directories_and_files_are_created_and_tightened_for_the_owner_alone() {
        let root = tempfile::tempdir().expect("tempdir");
        let nested = root.path().join("a/b");
        private_directory(&nested).expect("create");
        assert_eq!(mode(&nested), 0o700);
        std::fs::set_permissions(&nested, Permissions::from_mode(0o755)).expect("loosen");
        private_directory(&nested).expect("tighten");
        assert_eq!(mode(&nested), 0o700);

        let config = nested.join("config.toml");
        write_private_file(&config, b"x").expect("write");
        assert_eq!(mode(&config), 0o600);
        assert!(
            write_private_file(&config, b"y").is_err(),
            "never overwritten"
        );
        std::fs::set_permissions(&config, Permissions::from_mode(0o644)).expect("loosen");
        private_file(&config).expect("tighten");
        assert_eq!(mode(&config), 0o600);
        assert_eq!(std::fs::read(&config).expect("read"), b"x");
        let database = nested.join("spacebot.db");
        private_file(&database).expect("create");
        assert_eq!(mode(&database), 0o600);
    }
}
