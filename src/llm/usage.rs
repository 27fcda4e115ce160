//! Token usage of every LLM call, written to the agent's `token_usage` table.

use rig::completion::Usage;
use sqlx::SqlitePool;

use crate::config::ModelId;
use crate::database::now_millis;
use crate::event::ProcessId;

/// Records token usage into one agent's database.
#[derive(Debug, Clone)]
pub struct UsageRecorder {
    pool: SqlitePool,
}

impl UsageRecorder {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Usage is accounting, not conversation state: a failed write is logged, never fatal.
    pub async fn record(&self, process_id: &ProcessId, model: &ModelId, usage: &Usage) {
        let result = sqlx::query(
            "INSERT INTO token_usage (process_type, process_id, model, input_tokens, output_tokens,
                                      created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(process_id.process_type().as_str())
        .bind(process_id.to_string())
        .bind(model.to_string())
        .bind(i64::try_from(usage.input_tokens).unwrap_or(i64::MAX))
        .bind(i64::try_from(usage.output_tokens).unwrap_or(i64::MAX))
        .bind(now_millis())
        .execute(&self.pool)
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, "cannot record token usage");
        }
    }

    /// Total (input, output) tokens recorded so far.
    pub async fn totals(&self) -> Result<(i64, i64), sqlx::Error> {
        sqlx::query_as(
            "SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0) FROM token_usage",
        )
        .fetch_one(&self.pool)
        .await
    }
}
