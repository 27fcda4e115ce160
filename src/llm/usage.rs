//! Token usage of every LLM call, written to the agent's `token_usage` table in batches by a
//! background writer, so accounting never sits on a turn's critical path.

use std::time::Duration;

use rig::completion::Usage;
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use crate::config::ModelId;
use crate::database::now_millis;
use crate::event::ProcessId;

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
    created_at: i64,
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
}

impl UsageRecorder {
    /// Starts the writer task; it ends when every recorder is dropped.
    pub fn new(pool: SqlitePool) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(pool.clone(), receiver));
        Self { pool, sender }
    }

    /// Queues one call's usage; it is written within a fraction of a second.
    pub fn record(&self, process_id: &ProcessId, model: &ModelId, usage: &Usage) {
        let record = Record {
            process_type: process_id.process_type().as_str(),
            process_id: process_id.to_string(),
            model: model.to_string(),
            input_tokens: i64::try_from(usage.input_tokens).unwrap_or(i64::MAX),
            output_tokens: i64::try_from(usage.output_tokens).unwrap_or(i64::MAX),
            created_at: now_millis(),
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
                                      created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
            record.process_type,
            record.process_id,
            record.model,
            record.input_tokens,
            record.output_tokens,
            record.created_at,
        )
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await
}
