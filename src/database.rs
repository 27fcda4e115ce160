//! Opening a SQLite database (an agent's, or the daemon's own): WAL mode, one connection, and
//! the embedded migrations (`migrations/` for agents, `migrations/daemon/` for the daemon).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
    SqliteSynchronous,
};

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("cannot make database file {path} private: {source}")]
    Private {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("cannot migrate database {path}: {source}")]
    Migrate {
        path: String,
        source: sqlx::migrate::MigrateError,
    },
}

/// Opens (creating if needed) an agent's database at `path` and brings its schema up to date.
pub async fn open(path: &Path) -> Result<SqlitePool, DatabaseError> {
    let pool = connect(path).await?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .map_err(|source| DatabaseError::Migrate {
            path: path.display().to_string(),
            source,
        })?;
    Ok(pool)
}

/// Opens (creating if needed) the daemon's own database (access: members and pairing codes).
pub async fn open_daemon(path: &Path) -> Result<SqlitePool, DatabaseError> {
    let pool = connect(path).await?;
    sqlx::migrate!("./migrations/daemon")
        .run(&pool)
        .await
        .map_err(|source| DatabaseError::Migrate {
            path: path.display().to_string(),
            source,
        })?;
    Ok(pool)
}

async fn connect(path: &Path) -> Result<SqlitePool, DatabaseError> {
    let display = path.display().to_string();
    // Created (or tightened) 0600 first: SQLite gives its WAL and shared-memory files the
    // database file's mode.
    for file in [
        path.to_path_buf(),
        path.with_extension("db-wal"),
        path.with_extension("db-shm"),
    ] {
        if file == path || file.exists() {
            crate::filesystem::private_file(&file).map_err(|source| DatabaseError::Private {
                path: file.display().to_string(),
                source,
            })?;
        }
    }
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
        // One connection. SQLite runs one writer at a time anyway, and with several
        // connections a writer that finds the lock taken sleeps in SQLite's busy handler
        // (1, 2, 5, 10 ms ...), while every commit by one connection empties the page cache
        // of the others. Queued on the pool instead, waiters wake in order the moment the
        // connection is free, and its cache stays warm: the harness benchmark went from 832
        // to 1184 turns/s and from 1.22 to 0.81 CPU ms per turn.
        .max_connections(1)
        // A local file cannot drop a connection the way a server can; pinging it on every
        // acquire would cost each query a second round trip to the connection's thread.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|source| DatabaseError::Open {
            path: display.clone(),
            source,
        })?;
    Ok(pool)
}

/// A write transaction. It begins IMMEDIATE: a deferred transaction that reads before it
/// writes fails at once with "database is locked" when another connection committed in
/// between (a WAL snapshot conflict the busy timeout cannot wait out), while taking the write
/// lock up front makes writers queue instead.
///
/// A transaction dropped without a commit (an error inside it, a cancelled future) closes its
/// connection rather than handing it back to the pool: a connection returned mid-transaction
/// would run every later statement inside a transaction that never commits. (sqlx's own
/// transactions get this wrong after a failed COMMIT, when SQLite has already rolled back:
/// the connection stays marked as in a transaction and refuses every later BEGIN.)
pub struct WriteTransaction {
    connection: PoolConnection<Sqlite>,
    open: bool,
}

pub async fn begin_write(pool: &SqlitePool) -> Result<WriteTransaction, sqlx::Error> {
    let mut connection = pool.acquire().await?;
    sqlx::query!("BEGIN IMMEDIATE")
        .execute(&mut *connection)
        .await?;
    Ok(WriteTransaction {
        connection,
        open: true,
    })
}

impl WriteTransaction {
    /// Commits. When the COMMIT fails (a full disk), the transaction is rolled back here, so
    /// the connection goes back to the pool clean and reads keep working; only a connection
    /// that cannot even roll back is closed.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let error = match sqlx::query!("COMMIT").execute(&mut *self.connection).await {
            Ok(_) => {
                self.open = false;
                return Ok(());
            }
            Err(error) => error,
        };
        match sqlx::query!("ROLLBACK")
            .execute(&mut *self.connection)
            .await
        {
            Ok(_) => self.open = false,
            // SQLite rolls back by itself after some failed COMMITs.
            Err(rollback) if rollback.to_string().contains("no transaction is active") => {
                self.open = false;
            }
            Err(rollback) => {
                tracing::warn!(error = %rollback, "cannot roll back a failed commit; closing the connection");
            }
        }
        Err(error)
    }
}

impl std::ops::Deref for WriteTransaction {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.connection
    }
}

impl std::ops::DerefMut for WriteTransaction {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.connection
    }
}

impl Drop for WriteTransaction {
    fn drop(&mut self) {
        if self.open {
            // Closing the connection rolls back whatever SQLite still holds open.
            self.connection.close_on_drop();
        }
    }
}

/// SQLite's primary result codes (the low byte of an extended code) that this module tells
/// apart.
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_IOERR: i64 = 10;
const SQLITE_FULL: i64 = 13;

fn primary_code(error: &sqlx::Error) -> Option<i64> {
    let sqlx::Error::Database(database) = error else {
        return None;
    };
    database
        .code()
        .and_then(|code| code.parse::<i64>().ok())
        .map(|code| code & 0xff)
}

/// The write failed for want of disk: no space (`SQLITE_FULL`) or a failed write or sync
/// (`SQLITE_IOERR`, which a file-size limit also gives).
pub fn is_disk_failure(error: &sqlx::Error) -> bool {
    matches!(primary_code(error), Some(SQLITE_FULL | SQLITE_IOERR))
        || matches!(error, sqlx::Error::Io(_))
}

/// The same statement may well succeed later.
pub fn is_transient(error: &sqlx::Error) -> bool {
    is_disk_failure(error)
        || matches!(primary_code(error), Some(SQLITE_BUSY | SQLITE_LOCKED))
        || matches!(error, sqlx::Error::PoolTimedOut)
}

/// Milliseconds since the Unix epoch, the time unit of every table.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
