//! How `spacebot usage` prints `GET /api/usage`: totals, then tokens and cost by agent,
//! model, process kind and day, then each agent's daily budget.

use serde_json::Value;

/// The report as aligned text tables.
pub fn render(report: &Value) -> String {
    let mut out = String::new();
    let days = report["days"].as_i64().unwrap_or(0);
    let total = &report["total"];
    out.push_str(&format!(
        "Last {days} day(s): {} calls, {} tokens in ({} cached read, {} cache write), {} out, ${:.4}\n",
        number(&total["calls"]),
        number(&total["input_tokens"]),
        number(&total["cache_read_tokens"]),
        number(&total["cache_write_tokens"]),
        number(&total["output_tokens"]),
        total["cost_usd"].as_f64().unwrap_or(0.0),
    ));
    for (title, key) in [
        ("agent", "by_agent"),
        ("model", "by_model"),
        ("process", "by_process_type"),
        ("day", "by_day"),
    ] {
        let Some(groups) = report[key].as_object().filter(|groups| !groups.is_empty()) else {
            continue;
        };
        let width = groups
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max(title.len());
        out.push_str(&format!(
            "\n{title:<width$}  {:>7}  {:>12}  {:>12}  {:>12}  {:>10}\n",
            "calls", "input", "cached", "output", "cost USD"
        ));
        for (name, tally) in groups {
            let cached = tally["cache_read_tokens"].as_i64().unwrap_or(0)
                + tally["cache_write_tokens"].as_i64().unwrap_or(0);
            out.push_str(&format!(
                "{name:<width$}  {:>7}  {:>12}  {:>12}  {:>12}  {:>10.4}\n",
                number(&tally["calls"]),
                number(&tally["input_tokens"]),
                cached,
                number(&tally["output_tokens"]),
                tally["cost_usd"].as_f64().unwrap_or(0.0),
            ));
        }
    }
    let unpriced: Vec<&str> = report["unpriced_models"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !unpriced.is_empty() {
        out.push_str(&format!(
            "\nNo price known (counted as $0; set [llm.pricing.\"MODEL\"]): {}\n",
            unpriced.join(", ")
        ));
    }
    for budget in report["budgets"].as_array().into_iter().flatten() {
        let Some(limit) = budget["daily_token_budget"].as_u64() else {
            continue;
        };
        let spent = if budget["budget_spent"].as_bool() == Some(true) {
            " (spent: turns are refused until midnight UTC)"
        } else {
            ""
        };
        out.push_str(&format!(
            "\nBudget of {}: {} of {limit} tokens today{spent}\n",
            budget["agent"].as_str().unwrap_or("?"),
            number(&budget["tokens_today"]),
        ));
    }
    out
}

fn number(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}
