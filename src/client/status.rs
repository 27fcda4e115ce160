//! How `spacebot status` prints `GET /api/status`.

use serde_json::Value;

/// The status as lines of text: version and uptime, providers, reload, access, memory, each
/// agent, then each chat platform.
pub fn render(status: &Value) -> String {
    let mut lines = Vec::new();
    lines.push(format!(
        "spacebot {}  up {}s",
        status["version"].as_str().unwrap_or("?"),
        status["uptime_secs"]
    ));
    if let Some(hint) = status["llm"]["hint"].as_str() {
        lines.push(format!("LLM: not configured. {hint}"));
    } else if let Some(providers) = status["llm"]["providers"].as_array() {
        for provider in providers {
            lines.push(format!(
                "LLM provider {} ({}) {}",
                provider["name"].as_str().unwrap_or("?"),
                provider["kind"].as_str().unwrap_or("?"),
                provider["base_url"].as_str().unwrap_or("default endpoint"),
            ));
        }
    }
    for model in status["llm"]["tool_less_models"]
        .as_array()
        .into_iter()
        .flatten()
    {
        lines.push(format!(
            "model {} is in tool-less mode (its server refused tools): its text is the reply",
            model.as_str().unwrap_or("?")
        ));
    }
    reload(&status["reload"], &mut lines);
    for warning in status["access"]["warnings"]
        .as_array()
        .into_iter()
        .flatten()
    {
        lines.push(format!("access: {}", warning.as_str().unwrap_or("?")));
    }
    let memory = &status["memory"];
    if memory.is_object() {
        lines.push(format!(
            "memory: {} recall ({}: {})",
            memory["recall"].as_str().unwrap_or("?").replace('_', " "),
            memory["state"].as_str().unwrap_or("?"),
            memory["detail"].as_str().unwrap_or(""),
        ));
    }
    for agent in status["agents"].as_array().into_iter().flatten() {
        let id = agent["id"].as_str().unwrap_or("?");
        lines.push(format!(
            "agent {id}{}  model {}  active channels {}  cron jobs {}",
            if agent["default"].as_bool() == Some(true) {
                " (default)"
            } else {
                ""
            },
            agent["channel_model"].as_str().unwrap_or("?"),
            agent["active_channels"],
            agent["cron"]["jobs"],
        ));
        if let Some(budget) = agent["daily_token_budget"].as_u64() {
            let spent = if agent["budget_spent"].as_bool() == Some(true) {
                " (spent: turns are refused until midnight UTC)"
            } else {
                ""
            };
            lines.push(format!(
                "  tokens today {} of {budget}{spent}",
                agent["tokens_today"]
            ));
        }
        for job in agent["cron"]["disabled"].as_array().into_iter().flatten() {
            lines.push(format!(
                "  cron job {} disabled{}",
                job["id"].as_str().unwrap_or("?"),
                job["reason"]
                    .as_str()
                    .map(|reason| format!(": {reason}"))
                    .unwrap_or_default()
            ));
        }
        for warning in agent["degraded"].as_array().into_iter().flatten() {
            lines.push(format!("  degraded: {}", warning.as_str().unwrap_or("?")));
        }
    }
    messaging(status, &mut lines);
    mcp_servers(status, &mut lines);
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// How the last config reload went: a refused edit with its error, and settings waiting for a
/// restart.
fn reload(reload: &Value, lines: &mut Vec<String>) {
    if !reload.is_object() {
        return;
    }
    let errors: Vec<&str> = reload["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match reload["outcome"].as_str() {
        Some("failed") => lines.push(format!(
            "config: the last edit was NOT applied (the previous config stays in force): {}",
            errors.join("; ")
        )),
        Some(_) if !errors.is_empty() => lines.push(format!(
            "config: reloaded with errors: {}",
            errors.join("; ")
        )),
        _ => {}
    }
    let restart: Vec<&str> = reload["restart_needed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !restart.is_empty() {
        lines.push(format!(
            "config: changed, effective after a restart: {}",
            restart.join(", ")
        ));
    }
}

/// One line per chat platform: connected, reconnecting (with the last error) or disabled.
fn messaging(status: &Value, lines: &mut Vec<String>) {
    for adapter in status["messaging"].as_array().into_iter().flatten() {
        let name = adapter["name"].as_str().unwrap_or("?");
        let state = adapter["state"].as_str().unwrap_or("?");
        match adapter["last_error"].as_str() {
            Some(error) if state == "reconnecting" => {
                lines.push(format!("{name}: {state} (last error: {error})"))
            }
            _ => lines.push(format!("{name}: {state}")),
        }
    }
}

/// One line per MCP server: its state, its tools, and why it last failed.
fn mcp_servers(status: &Value, lines: &mut Vec<String>) {
    for server in status["mcp_servers"].as_array().into_iter().flatten() {
        let tools = server["tools"].as_array().map_or(0, Vec::len);
        lines.push(format!(
            "mcp server {} ({}): {}, {tools} tools{}{}",
            server["name"].as_str().unwrap_or("?"),
            server["transport"].as_str().unwrap_or("?"),
            server["state"].as_str().unwrap_or("?"),
            match server["restarts"].as_u64() {
                Some(0) | None => String::new(),
                Some(restarts) => format!(", restarted {restarts} times"),
            },
            server["last_error"]
                .as_str()
                .map(|error| format!(" (last error: {error})"))
                .unwrap_or_default(),
        ));
        for skipped in server["skipped_tools"].as_array().into_iter().flatten() {
            lines.push(format!("  left out: {}", skipped.as_str().unwrap_or("?")));
        }
    }
}
