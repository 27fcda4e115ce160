//! `GET /api/agents/{id}/cortex`: what the agent's cortex observed and did: recent actions,
//! tripped breakers (tools of this agent, models of the daemon) and the processes it watches.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::{ApiError, ApiState, find_agent};

pub async fn show(
    State(state): State<ApiState>,
    Path(agent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    let snapshot = agent.runtime.cortex();
    let mut value = serde_json::to_value(&snapshot).map_err(ApiError::internal)?;
    value["model_breakers"] = json!(state.llm.open_breakers());
    Ok(Json(value))
}
