//! Opening an agent's SQLite database: WAL mode, a small pool, and the embedded migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("cannot open database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("cannot migrate database {path}: {source}")]
    Migrate {
        path: String,
        source: sqlx::migrate::MigrateError,
    },
}

/// Opens (creating if needed) the database at `path` and brings its schema up to date.
pub async fn open(path: &Path) -> Result<SqlitePool, DatabaseError> {
    let display = path.display().to_string();
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{display}"))
        .map_err(|source| DatabaseError::Open {
            path: display.clone(),
            source,
        })?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL + NORMAL is durable across process crashes; only an OS crash can lose the
        // last transactions.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5))
        // Reads (the memory full-text index above all) come from mapped pages instead of
        // a 2 MB page cache refilled by read calls.
        .pragma("mmap_size", "268435456")
        .pragma("cache_size", "-16384");
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(|source| DatabaseError::Open {
            path: display.clone(),
            source,
        })?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .map_err(|source| DatabaseError::Migrate {
            path: display,
            source,
        })?;
    Ok(pool)
}

/// How every write transaction begins. A deferred transaction that reads before it writes
/// fails at once with "database is locked" when another connection committed in between
/// (WAL snapshot conflict, which the busy timeout cannot wait out); taking the write lock up
/// front makes writers queue on the busy timeout instead.
pub const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// Milliseconds since the Unix epoch, the time unit of every table.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
