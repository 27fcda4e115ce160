//! `GET /api/health`, `GET /api/status` and `GET /api/agents`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::ApiState;

pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn status(State(state): State<ApiState>) -> Json<Value> {
    let mut agents = Vec::with_capacity(state.agents.len());
    for entry in state.agents.values() {
        let agent = &entry.runtime;
        let mut value = serde_json::to_value(agent.status()).unwrap_or_default();
        // Jobs the daemon disabled say why (failures in a row, ran once).
        match entry.cron.list().await {
            Ok(jobs) => {
                let disabled: Vec<Value> = jobs
                    .iter()
                    .filter(|job| !job.enabled)
                    .map(|job| json!({"id": job.id, "reason": job.disabled_reason}))
                    .collect();
                value["cron"] = json!({"jobs": jobs.len(), "disabled": disabled});
            }
            Err(error) => tracing::error!(%error, agent_id = %agent.id(), "cannot list cron jobs"),
        }
        value["degraded"] = json!(agent.degraded());
        agents.push(value);
    }
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": state.started_at.elapsed().as_secs(),
        "config_path": state.config.path.as_ref().map(|path| path.display().to_string()),
        "home": state.home.display().to_string(),
        "llm": {
            "configured": state.llm.is_configured(),
            "providers": state.llm.provider_statuses(),
            "tool_less_models": state.llm.tool_less_models(),
            "hint": state.llm_hint(),
        },
        "memory": state.embedder.status(),
        "sandbox": state.sandbox.status(),
        "agents": agents,
        "messaging": state.messaging.statuses(),
        "access": {
            "owners": state.access.config().owners.len(),
            "members": state.access.config().members.len(),
            "warnings": state.access.warnings(),
        },
    }))
}

pub async fn agents(State(state): State<ApiState>) -> Json<Value> {
    let agents: Vec<_> = state
        .agents
        .values()
        .map(|entry| entry.runtime.status())
        .collect();
    Json(json!({ "agents": agents }))
}
