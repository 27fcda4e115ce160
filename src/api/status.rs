//! `GET /api/health`, `GET /api/status` and `GET /api/agents`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::ApiState;

pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn status(State(state): State<ApiState>) -> Json<Value> {
    let agents: Vec<_> = state.agents.values().map(|agent| agent.status()).collect();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": state.started_at.elapsed().as_secs(),
        "config_path": state.config.path.as_ref().map(|path| path.display().to_string()),
        "home": state.home.display().to_string(),
        "llm": {
            "configured": state.llm.is_configured(),
            "providers": state.llm.provider_statuses(),
            "hint": state.llm_hint(),
        },
        "memory": state.embedder.status(),
        "agents": agents,
    }))
}

pub async fn agents(State(state): State<ApiState>) -> Json<Value> {
    let agents: Vec<_> = state.agents.values().map(|agent| agent.status()).collect();
    Json(json!({ "agents": agents }))
}
