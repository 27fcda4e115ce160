//! `GET /api/usage`: tokens and cost by agent, model, process kind and day, priced with the
//! model catalog (the config's `[llm.pricing]` over built-in prices), and each agent's daily
//! budget.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ApiError, ApiState, find_agent};
use crate::llm::{ModelCatalog, UsageRow};

const DAY_MILLIS: i64 = 86_400_000;

#[derive(Deserialize)]
pub struct UsageParameters {
    /// Days back, today included (default 30).
    #[serde(default)]
    days: Option<u32>,
    #[serde(default)]
    agent: Option<String>,
}

/// Tokens and cost of a group of calls.
#[derive(Debug, Default, Clone, Serialize)]
struct Tally {
    calls: i64,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_write_tokens: i64,
    /// USD; calls of models without a known price count as 0 and are listed as unpriced.
    cost_usd: f64,
}

impl Tally {
    fn add(&mut self, row: &UsageRow, cost: Option<f64>) {
        self.calls += row.calls;
        self.input_tokens += row.input_tokens;
        self.output_tokens += row.output_tokens;
        self.cache_read_tokens += row.cache_read_tokens;
        self.cache_write_tokens += row.cache_write_tokens;
        self.cost_usd += cost.unwrap_or(0.0);
    }
}

/// The cost of a row in USD, if its model has a price.
fn cost(catalog: &ModelCatalog, row: &UsageRow) -> Option<f64> {
    let price = catalog.price(&row.model)?;
    let million = 1_000_000.0;
    Some(
        (row.input_tokens as f64 * price.input
            + row.output_tokens as f64 * price.output
            + row.cache_read_tokens as f64 * price.cache_read
            + row.cache_write_tokens as f64 * price.cache_write)
            / million,
    )
}

pub async fn report(
    State(state): State<ApiState>,
    Query(parameters): Query<UsageParameters>,
) -> Result<Json<Value>, ApiError> {
    let days = i64::from(parameters.days.unwrap_or(30).max(1));
    let today = crate::database::now_millis().div_euclid(DAY_MILLIS);
    let since = (today - days + 1) * DAY_MILLIS;
    let agents: Vec<_> = match &parameters.agent {
        Some(agent_id) => vec![find_agent(&state, agent_id)?],
        None => state.agents().values().cloned().collect(),
    };
    let catalog = state.llm.catalog();
    let mut rows = Vec::new();
    let mut total = Tally::default();
    let mut groups: BTreeMap<&str, BTreeMap<String, Tally>> = BTreeMap::new();
    let mut unpriced = std::collections::BTreeSet::new();
    let mut budgets = Vec::new();
    for entry in agents {
        let agent = &entry.runtime;
        let status = agent.status();
        budgets.push(json!({
            "agent": agent.id(),
            "daily_token_budget": status.daily_token_budget,
            "tokens_today": status.tokens_today,
            "budget_spent": status.budget_spent,
        }));
        for row in agent.usage(since).await? {
            let cost = cost(&catalog, &row);
            if cost.is_none() {
                unpriced.insert(row.model.clone());
            }
            total.add(&row, cost);
            for (dimension, key) in [
                ("agent", agent.id().to_string()),
                ("model", row.model.clone()),
                ("process_type", row.process_type.clone()),
                ("day", row.day.clone()),
            ] {
                groups
                    .entry(dimension)
                    .or_default()
                    .entry(key)
                    .or_default()
                    .add(&row, cost);
            }
            let mut value = serde_json::to_value(&row).unwrap_or_default();
            value["agent"] = json!(agent.id());
            value["cost_usd"] = json!(cost);
            rows.push(value);
        }
    }
    Ok(Json(json!({
        "days": days,
        "currency": "USD",
        "total": total,
        "by_agent": groups.remove("agent").unwrap_or_default(),
        "by_model": groups.remove("model").unwrap_or_default(),
        "by_process_type": groups.remove("process_type").unwrap_or_default(),
        "by_day": groups.remove("day").unwrap_or_default(),
        "unpriced_models": unpriced,
        "budgets": budgets,
        "rows": rows,
    })))
}
