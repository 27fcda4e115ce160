//! An agent's memories: `GET/POST /api/agents/{id}/memories`, `GET .../memories/search?q=`,
//! `DELETE .../memories/{memory_id}` (soft delete), and `GET .../memories/export` /
//! `POST .../memories/import` (JSON Lines: a header line, then one memory per line).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiState, find_agent};
use crate::memory::{
    Audience, ImportReport, ListOrder, MemoryError, MemoryRecord, MemoryType, NewAssociation,
    NewMemory, Origin, RecallMode, RecallQuery, RecordAssociation,
};

/// The first line of an export names its format.
const EXPORT_FORMAT: &str = "spacebot-memories";
/// Longest line an import reads (a record holds at most 4,000 characters of content and one
/// embedding), so a body without line breaks cannot fill the memory.
const MAXIMUM_LINE_BYTES: usize = 1 << 20;

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

/// Every remembered memory as JSON Lines, streamed page by page: a header line
/// (`{"format", "version", "agent", "embedding_model"}`), then one `MemoryRecord` per line.
pub async fn export(
    State(state): State<ApiState>,
    Path(agent_id): Path<String>,
) -> Result<Response, ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    let store = agent.runtime.memory().clone();
    let header = json!({
        "format": EXPORT_FORMAT,
        "version": 1,
        "agent": agent_id,
        "embedding_model": store.embedder().model_id(),
    });
    let first = futures::stream::once(async move {
        Ok::<Bytes, MemoryError>(Bytes::from(format!("{header}\n")))
    });
    let pages = futures::stream::unfold(Some(0i64), move |after| {
        let store = store.clone();
        async move {
            let after = after?;
            match store.export_page(after).await {
                Ok((records, next)) => {
                    let mut lines = String::new();
                    for record in &records {
                        lines.push_str(&json!(record).to_string());
                        lines.push('\n');
                    }
                    Some((Ok(Bytes::from(lines)), next))
                }
                Err(error) => {
                    tracing::error!(%error, "memory export failed part way");
                    Some((Err(error), None))
                }
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(first.chain(pages)),
    )
        .into_response())
}

/// Imports an export (JSON Lines; header lines are skipped), in batches: memories keep their
/// ids, times and origin, those already present are skipped, embeddings of another model
/// are made again. Associations are added at the end, once every memory is in.
pub async fn import(
    State(state): State<ApiState>,
    Path(agent_id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    let store = agent.runtime.memory().clone();
    let mut report = ImportReport::default();
    let mut edges: Vec<(String, RecordAssociation)> = Vec::new();
    let mut batch: Vec<MemoryRecord> = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut line_number = 0usize;
    let mut chunks = body.into_data_stream();
    let mut finished = false;
    while !finished {
        match chunks.next().await {
            Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
            Some(Err(error)) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("reading the import failed after line {line_number}: {error}"),
                ));
            }
            None => {
                finished = true;
                pending.push(b'\n');
            }
        }
        if !pending.contains(&b'\n') && pending.len() > MAXIMUM_LINE_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "line {} is longer than {MAXIMUM_LINE_BYTES} bytes; an export has one memory per line ({} memories before it were imported)",
                    line_number + 1,
                    report.imported
                ),
            ));
        }
        while let Some(end) = pending.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            line_number += 1;
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(text)
                .map_err(|error| invalid_line(line_number, &report, error))?;
            if value.get("format").is_some() {
                continue;
            }
            let record: MemoryRecord = serde_json::from_value(value)
                .map_err(|error| invalid_line(line_number, &report, error))?;
            edges.extend(
                record
                    .associations
                    .iter()
                    .map(|association| (record.id.clone(), association.clone())),
            );
            batch.push(record);
            if batch.len() >= crate::memory::IMPORT_BATCH {
                report.add(&store.import(std::mem::take(&mut batch)).await?);
            }
        }
    }
    if !batch.is_empty() {
        report.add(&store.import(batch).await?);
    }
    // Associations to memories of a later batch could not be added with their batch.
    report.associations += store.import_associations(&edges).await?;
    Ok(Json(json!(report)))
}

fn invalid_line(line: usize, report: &ImportReport, error: serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!(
            "line {line} is not a memory record: {error} ({} memories before it were imported)",
            report.imported
        ),
    )
}
