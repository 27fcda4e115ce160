//! Token usage of every LLM call, written to the agent's `token_usage` table in batches by a
//! background writer, so accounting never sits on a turn's critical path; the tokens spent
//! today (UTC) are also counted in memory for the daily budget. Read back grouped by day,
//! model and process kind for `GET /api/usage` and `spacebot usage`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use crate::config::ModelId;
use crate::database::now_millis;
use crate::event::ProcessId;
use crate::message::TokenUsage;

const DAY_MILLIS: i64 = 86_400_000;

/// Rows written per transaction at most.
const BATCH: usize = 256;
/// How long a record may wait for companions before it is written.
const LINGER: Duration = Duration::from_millis(200);

struct Record {
    process_type: &'static str,
    process_id: String,
    model: String,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_write_tokens: i64,
    created_at: i64,
}

/// Which usage to read: calls at or after `since` (Unix milliseconds).
#[derive(Debug, Clone, Copy)]
pub struct UsageQuery {
    pub since: i64,
}

/// Tokens of one day (UTC, `YYYY-MM-DD`), model and process kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    pub day: String,
    pub model: String,
    pub process_type: String,
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
}

enum Command {
    Record(Record),
    Flush(oneshot::Sender<()>),
}

/// Records token usage into one agent's database.
#[derive(Debug, Clone)]
pub struct UsageRecorder {
    pool: SqlitePool,
    sender: mpsc::UnboundedSender<Command>,
    /// (UTC day number, tokens recorded that day).
    today: Arc<Mutex<(i64, u64)>>,
}

impl UsageRecorder {
    /// Starts the writer task; it ends when every recorder is dropped.
    pub fn new(pool: SqlitePool) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(pool.clone(), receiver));
        Self {
            pool,
            sender,
            today: Arc::new(Mutex::new((0, 0))),
        }
    }

    /// Reads what was spent today so far (after a restart) into the in-memory count.
    pub async fn load_today(&self) -> Result<(), sqlx::Error> {
        let now = now_millis();
        let day = now.div_euclid(DAY_MILLIS);
        let start = day * DAY_MILLIS;
        let spent = sqlx::query_scalar!(
            r#"SELECT COALESCE(SUM(input_tokens + output_tokens + cache_read_tokens
                                   + cache_write_tokens), 0) AS "spent!: i64"
               FROM token_usage WHERE created_at >= ?"#,
            start
        )
        .fetch_one(&self.pool)
        .await?;
        if let Ok(mut today) = self.today.lock() {
            *today = (day, u64::try_from(spent).unwrap_or(0));
        }
        Ok(())
    }

    /// Tokens recorded today (UTC).
    pub fn spent_today(&self) -> u64 {
        let day = now_millis().div_euclid(DAY_MILLIS);
        match self.today.lock() {
            Ok(today) if today.0 == day => today.1,
            _ => 0,
        }
    }

    /// Queues one call's usage; it is written within a fraction of a second.
    pub fn record(&self, process_id: &ProcessId, model: &ModelId, usage: &TokenUsage) {
        let tokens = |count: u64| i64::try_from(count).unwrap_or(i64::MAX);
        let created_at = now_millis();
        if let Ok(mut today) = self.today.lock() {
            let day = created_at.div_euclid(DAY_MILLIS);
            if today.0 != day {
                *today = (day, 0);
            }
            today.1 = today.1.saturating_add(usage.total());
        }
        let record = Record {
            process_type: process_id.process_type().as_str(),
            process_id: process_id.to_string(),
            model: model.to_string(),
            input_tokens: tokens(usage.input),
            output_tokens: tokens(usage.output),
            cache_read_tokens: tokens(usage.cache_read),
            cache_write_tokens: tokens(usage.cache_write),
            created_at,
        };
        // The writer lives as long as any recorder; a send fails only during teardown.
        let _ = self.sender.send(Command::Record(record));
    }

    /// Waits until everything recorded so far is written (at shutdown).
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.sender.send(Command::Flush(done)).is_ok() {
            // The writer answers after writing; if it is gone there is nothing to wait for.
            let _ = written.await;
        }
    }

    /// Total (input, output) tokens recorded so far.
    pub async fn totals(&self) -> Result<(i64, i64), sqlx::Error> {
        self.flush().await;
        let totals = sqlx::query!(
            r#"SELECT COALESCE(SUM(input_tokens), 0) AS "input_tokens!: i64",
                      COALESCE(SUM(output_tokens), 0) AS "output_tokens!: i64"
               FROM token_usage"#
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((totals.input_tokens, totals.output_tokens))
    }

    /// Usage since `query.since`, by day, model and process kind.
    pub async fn report(&self, query: UsageQuery) -> Result<Vec<UsageRow>, sqlx::Error> {
        self.flush().await;
        sqlx::query_as!(
            UsageRow,
            r#"SELECT date(created_at / 1000, 'unixepoch') AS "day!: String",
                      model AS "model!: String",
                      process_type AS "process_type!: String",
                      COUNT(*) AS "calls!: i64",
                      COALESCE(SUM(input_tokens), 0) AS "input_tokens!: i64",
                      COALESCE(SUM(output_tokens), 0) AS "output_tokens!: i64",
                      COALESCE(SUM(cache_read_tokens), 0) AS "cache_read_tokens!: i64",
                      COALESCE(SUM(cache_write_tokens), 0) AS "cache_write_tokens!: i64"
               FROM token_usage
               WHERE created_at >= ?
               GROUP BY 1, 2, 3
               ORDER BY 1, 2, 3"#,
            query.since
        )
        .fetch_all(&self.pool)
        .await
    }
}

async fn write_batches(pool: SqlitePool, mut receiver: mpsc::UnboundedReceiver<Command>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut waiting = Vec::new();
    while let Some(command) = receiver.recv().await {
        let mut deadline = Box::pin(tokio::time::sleep(LINGER));
        let mut next = Some(command);
        loop {
            match next.take() {
                Some(Command::Record(record)) => batch.push(record),
                Some(Command::Flush(done)) => {
                    waiting.push(done);
                    break;
                }
                None => {}
            }
            if batch.len() >= BATCH {
                break;
            }
            tokio::select! {
                command = receiver.recv() => match command {
                    Some(command) => next = Some(command),
                    None => break,
                },
                () = &mut deadline => break,
            }
        }
        if let Err(error) = write(&pool, &batch).await {
            tracing::warn!(%error, rows = batch.len(), "cannot record token usage");
        }
        batch.clear();
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn write(pool: &SqlitePool, batch: &[Record]) -> Result<(), sqlx::Error> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut transaction = crate::database::begin_write(pool).await?;
    for record in batch {
        sqlx::query!(
            "INSERT INTO token_usage (process_type, process_id, model, input_tokens, output_tokens,
                                      cache_read_tokens, cache_write_tokens, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            record.process_type,
            record.process_id,
            record.model,
            record.input_tokens,
            record.output_tokens,
            record.cache_read_tokens,
            record.cache_write_tokens,
            record.created_at,
        )
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await
}
