//! `GET /api/health`, `GET /api/status`, `GET /api/agents` and `POST /api/reload`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::ApiState;
use crate::daemon::ReloadOutcome;

pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn status(State(state): State<ApiState>) -> Json<Value> {
    let config = state.config();
    let access = state.access.config();
    let running = state.agents();
    let mut agents = Vec::with_capacity(running.len());
    for entry in running.values() {
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
        "config_path": config.path.as_ref().map(|path| path.display().to_string()),
        "reload": state.last_reload(),
        "home": state.home.display().to_string(),
        "llm": {
            "configured": state.llm.is_configured(),
            "providers": state.llm.provider_statuses(),
            "tool_less_models": state.llm.tool_less_models(),
            "hint": state.llm_hint(),
        },
        "memory": state.embedder.status(),
        "sandbox": state.sandbox.status(),
        "mcp_servers": state.mcp.statuses(),
        // What a client may attach to a message (the dashboard's chat checks before sending).
        "media": {
            "max_file_bytes": config.media.max_file_bytes,
            "max_attachments": super::files::MAX_ATTACHMENTS,
        },
        "agents": agents,
        "messaging": state.messaging.statuses(),
        "access": {
            "owners": access.owners.len(),
            "members": access.members.len(),
            "warnings": state.access.warnings(),
        },
    }))
}

/// `POST /api/reload`: reads the config file again and applies what changed; answers how it
/// went (422 when the file was refused, with the error naming file, line and key).
pub async fn reload(State(state): State<ApiState>) -> (StatusCode, Json<Value>) {
    let report = state.reload().await;
    let status = match report.outcome {
        ReloadOutcome::Failed => StatusCode::UNPROCESSABLE_ENTITY,
        ReloadOutcome::Applied | ReloadOutcome::Unchanged => StatusCode::OK,
    };
    (status, Json(json!({ "reload": report })))
}

pub async fn agents(State(state): State<ApiState>) -> Json<Value> {
    let agents: Vec<_> = state
        .agents()
        .values()
        .map(|entry| entry.runtime.status())
        .collect();
    Json(json!({ "agents": agents }))
}
