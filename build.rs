//! Build script: applies every `migrations/*.sql` and `migrations/daemon/*.sql` (each in name
//! order) to a fresh scratch SQLite file in `OUT_DIR` and points the sqlx query macros at it,
//! so each `query!` is checked against the schema the migrations produce, with no database,
//! env var or tool to set up.

use std::ffi::{CStr, CString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

// The SQLite that sqlx-sqlite already links (same crate, version and features).
use libsqlite3_sys as ffi;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("build.rs: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let manifest_directory = PathBuf::from(variable("CARGO_MANIFEST_DIR")?);
    let out_directory = PathBuf::from(variable("OUT_DIR")?);
    // A directory is watched with everything in it: an added migration reruns this script.
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=migrations/daemon");

    let schema = out_directory.join("schema.db");
    let partial = out_directory.join("schema.db.partial");
    remove_if_present(&partial)?;
    let database = Database::create(&partial)?;
    // A scratch file: nothing to lose in a crash, so no syncing.
    database.execute("PRAGMA synchronous = OFF")?;
    // The agents' migrations, then the daemon database's: their tables do not overlap, so one
    // scratch schema checks the queries of both.
    let agent_migrations = migrations(&manifest_directory.join("migrations"))?;
    let daemon_migrations = migrations(&manifest_directory.join("migrations/daemon"))?;
    for migration in agent_migrations.into_iter().chain(daemon_migrations) {
        let sql = fs::read_to_string(&migration)
            .map_err(|error| format!("cannot read {}: {error}", migration.display()))?;
        database
            .execute(&sql)
            .map_err(|error| format!("migration {} failed: {error}", migration.display()))?;
    }
    database.close()?;
    fs::rename(&partial, &schema).map_err(|error| {
        format!(
            "cannot move {} to {}: {error}",
            partial.display(),
            schema.display()
        )
    })?;

    // The macros read these from the environment of the rustc process, where `rustc-env`
    // overrides the caller's environment, and they take precedence over a `.env` file.
    println!(
        "cargo:rustc-env=DATABASE_URL=sqlite://{}?mode=ro",
        url_path(&schema)?
    );
    println!("cargo:rustc-env=SQLX_OFFLINE=false");
    // Online macros write query data to SQLX_OFFLINE_DIR when it is set, and fail when it
    // names a missing directory; keep that in OUT_DIR too.
    let offline_directory = out_directory.join("sqlx-query-data");
    fs::create_dir_all(&offline_directory)
        .map_err(|error| format!("cannot create {}: {error}", offline_directory.display()))?;
    println!(
        "cargo:rustc-env=SQLX_OFFLINE_DIR={}",
        offline_directory.display()
    );
    Ok(())
}

fn variable(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|error| format!("{name}: {error}"))
}

fn remove_if_present(path: &Path) -> Result<(), String> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(format!("cannot remove {}: {error}", path.display())),
    }
}

/// The migration scripts in name order (the order sqlx applies them); the `.down.sql` half of
/// a reversible migration is not part of the schema.
fn migrations(directory: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = fs::read_dir(directory)
        .map_err(|error| format!("cannot list {}: {error}", directory.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|error| format!("cannot list {}: {error}", directory.display()))?
            .path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        if path.is_file() && name.ends_with(".sql") && !name.ends_with(".down.sql") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(format!("no migrations in {}", directory.display()));
    }
    Ok(files)
}

/// `path` for a `sqlite://` URL: sqlx percent-decodes it, so every byte that could end the
/// path or start an escape (`?`, `#`, `%`, spaces ...) is percent-encoded.
fn url_path(path: &Path) -> Result<String, String> {
    let text = path
        .to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()))?;
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(encoded)
}

/// An open SQLite connection; closed on drop.
struct Database {
    handle: *mut ffi::sqlite3,
}

impl Database {
    fn create(path: &Path) -> Result<Self, String> {
        let name = path
            .to_str()
            .and_then(|name| CString::new(name).ok())
            .ok_or_else(|| format!("{} cannot be passed to SQLite", path.display()))?;
        let mut handle = std::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated and outlives the call; `handle` is a valid out
        // pointer; a null VFS name selects the default VFS.
        let code = unsafe {
            ffi::sqlite3_open_v2(
                name.as_ptr(),
                &mut handle,
                ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE,
                std::ptr::null(),
            )
        };
        // SQLite hands out a handle even when opening fails; it must be closed either way.
        let database = Database { handle };
        if code != ffi::SQLITE_OK {
            return Err(format!(
                "cannot create {}: {}",
                path.display(),
                database.last_error()
            ));
        }
        Ok(database)
    }

    /// Runs every statement of `sql`.
    fn execute(&self, sql: &str) -> Result<(), String> {
        let sql = CString::new(sql).map_err(|error| error.to_string())?;
        // SAFETY: the handle is open; `sql` is NUL-terminated and outlives the call; there is
        // no row callback and no error out pointer.
        let code = unsafe {
            ffi::sqlite3_exec(
                self.handle,
                sql.as_ptr(),
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if code == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(self.last_error())
        }
    }

    fn last_error(&self) -> String {
        // SAFETY: `sqlite3_errmsg` accepts any handle SQLite returned (even null) and gives a
        // NUL-terminated string that stays valid until the next call on the handle; it is
        // copied at once.
        unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.handle)) }
            .to_string_lossy()
            .into_owned()
    }

    fn close(mut self) -> Result<(), String> {
        // SAFETY: the handle is open and `sqlite3_exec` left no statement unfinalized.
        let code = unsafe { ffi::sqlite3_close(self.handle) };
        if code != ffi::SQLITE_OK {
            return Err(format!(
                "cannot close the scratch database: {}",
                self.last_error()
            ));
        }
        self.handle = std::ptr::null_mut();
        Ok(())
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: the handle is open or null, and closing null does nothing.
        unsafe {
            ffi::sqlite3_close(self.handle);
        }
    }
}
