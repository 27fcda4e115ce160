//! `POST /api/agents/{id}/memories/{memory_id}/importance` (`{"importance": 0.8}`): the owner
//! says how much a memory matters (the dashboard's memory view edits it).

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiState, find_agent};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetImportance {
    importance: f64,
}

pub async fn set(
    State(state): State<ApiState>,
    Path((agent_id, memory_id)): Path<(String, String)>,
    Json(request): Json<SetImportance>,
) -> Result<Json<Value>, ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    let memory = agent
        .runtime
        .memory()
        .set_importance(&memory_id, request.importance)
        .await?;
    Ok(Json(json!({ "memory": memory })))
}
