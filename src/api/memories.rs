//! An agent's memories: `GET/POST /api/agents/{id}/memories`, `GET .../memories/search?q=`
//! and `DELETE .../memories/{memory_id}` (soft delete).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiState, find_agent};
use crate::memory::{
    Audience, ListOrder, MemoryError, MemoryType, NewAssociation, NewMemory, Origin, RecallMode,
    RecallQuery,
};

impl From<MemoryError> for ApiError {
    fn from(error: MemoryError) -> Self {
        match error {
            MemoryError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, error.to_string()),
            MemoryError::Invalid(_) => ApiError::new(StatusCode::BAD_REQUEST, error.to_string()),
            MemoryError::Database { .. } | MemoryError::Task(_) => ApiError::internal(error),
        }
    }
}

fn memory_type(text: Option<&str>) -> Result<Option<MemoryType>, ApiError> {
    text.filter(|text| !text.is_empty())
        .map(str::parse::<MemoryType>)
        .transpose()
        .map_err(ApiError::from)
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default, rename = "type")]
    memory_type: Option<String>,
    #[serde(default)]
    order: Option<ListOrder>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    offset: Option<usize>,
}

pub async fn list(
    State(state): State<ApiState>,
    Path(agent_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    let (memories, total) = agent
        .runtime
        .memory()
        .list(
            memory_type(query.memory_type.as_deref())?,
            query.order.unwrap_or_default(),
            query.limit.unwrap_or(50).min(1000),
            query.offset.unwrap_or(0),
        )
        .await?;
    Ok(Json(json!({"memories": memories, "total": total})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMemory {
    content: String,
    #[serde(rename = "type")]
    memory_type: String,
    #[serde(default)]
    importance: Option<f64>,
    #[serde(default)]
    associations: Vec<NewAssociation>,
    #[serde(default)]
    source: Option<String>,
}

pub async fn create(
    State(state): State<ApiState>,
    Path(agent_id): Path<String>,
    Json(request): Json<CreateMemory>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    let memory = NewMemory {
        content: request.content,
        memory_type: request.memory_type.parse()?,
        importance: request.importance,
        source: request.source.unwrap_or_else(|| "api".to_string()),
        // Saved by an owner through the API or CLI.
        origin: Origin::owner(),
        associations: request.associations,
    };
    let outcome = agent.runtime.memory().save(memory).await?;
    let status = if outcome.merged {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(json!(outcome))))
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default, rename = "type")]
    memory_type: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

pub async fn search(
    State(state): State<ApiState>,
    Path(agent_id): Path<String>,
    Query(query): Query<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    let recall = RecallQuery {
        text: query.q,
        max_results: query.limit.unwrap_or(10),
        memory_type: memory_type(query.memory_type.as_deref())?,
        mode: match query.mode.as_deref().filter(|mode| !mode.is_empty()) {
            Some(mode) => mode.parse()?,
            None => RecallMode::Hybrid,
        },
        // The API answers owners: every memory.
        audience: Audience::Everything,
    };
    let result = agent.runtime.memory().recall(&recall).await?;
    Ok(Json(json!(result)))
}

pub async fn get(
    State(state): State<ApiState>,
    Path((agent_id, memory_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    let store = &agent.runtime.memory();
    let memory = store.get(&memory_id).await?;
    let associations = store.associations(&memory_id).await?;
    Ok(Json(
        json!({"memory": memory, "associations": associations}),
    ))
}

pub async fn forget(
    State(state): State<ApiState>,
    Path((agent_id, memory_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    let memory = agent.runtime.memory().forget(&memory_id).await?;
    Ok(Json(json!({"forgotten": true, "memory": memory})))
}
