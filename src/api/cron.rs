//! Cron jobs over HTTP: `/api/agents/{id}/cron` (list, create), `/cron/{job}` (show with its
//! history, delete), `/cron/{job}/run` (trigger now) and `/cron/{job}/enable|disable`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{ApiError, ApiState, find_agent};
use crate::cron::{CronError, CronService, HISTORY_SHOWN, JobRecord, JobSource, Switch};
use crate::schedule::{JobDraft, format_instant};

impl From<CronError> for ApiError {
    fn from(error: CronError) -> Self {
        let status = match &error {
            CronError::Invalid(_) => StatusCode::BAD_REQUEST,
            CronError::NotFound(_) => StatusCode::NOT_FOUND,
            CronError::Exists(_) | CronError::FromConfig(_) => StatusCode::CONFLICT,
            CronError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            CronError::Store(_) => return ApiError::internal(error),
        };
        ApiError::new(status, error.to_string())
    }
}

/// A job as the API shows it: the stored record, its zone, and its next run in that zone.
fn view(service: &CronService, job: &JobRecord) -> Value {
    let zone = job
        .spec()
        .timing(service.zone())
        .map_or(service.zone(), |timing| timing.zone);
    let mut value = serde_json::to_value(job).unwrap_or_default();
    value["zone"] = json!(zone.name());
    value["next_run"] = json!(
        job.next_run_at
            .filter(|_| job.enabled)
            .map(|next| format_instant(next, zone))
    );
    value
}

pub async fn list(
    State(state): State<ApiState>,
    Path(agent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let service = &find_agent(&state, &agent_id)?.cron;
    let mut jobs = Vec::new();
    for job in service.list().await? {
        let mut value = view(service, &job);
        let last = service
            .store()
            .executions(&job.id, 1)
            .await
            .map_err(CronError::from)?;
        value["last_execution"] = json!(last.first());
        jobs.push(value);
    }
    Ok(Json(json!({ "jobs": jobs })))
}

pub async fn create(
    State(state): State<ApiState>,
    Path(agent_id): Path<String>,
    Json(draft): Json<JobDraft>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let service = &find_agent(&state, &agent_id)?.cron;
    let job = service.create(draft, JobSource::Api, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "job": view(service, &job) })),
    ))
}

pub async fn show(
    State(state): State<ApiState>,
    Path((agent_id, job_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let service = &find_agent(&state, &agent_id)?.cron;
    let job = service.get(&job_id).await?;
    let executions = service
        .store()
        .executions(&job_id, HISTORY_SHOWN)
        .await
        .map_err(CronError::from)?;
    Ok(Json(
        json!({ "job": view(service, &job), "executions": executions }),
    ))
}

pub async fn delete(
    State(state): State<ApiState>,
    Path((agent_id, job_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let service = &find_agent(&state, &agent_id)?.cron;
    service.delete(&job_id).await?;
    Ok(Json(json!({ "deleted": job_id })))
}

pub async fn run(
    State(state): State<ApiState>,
    Path((agent_id, job_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let service = &find_agent(&state, &agent_id)?.cron;
    let execution = service.trigger(&job_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "execution": execution })),
    ))
}

pub async fn enable(
    State(state): State<ApiState>,
    Path((agent_id, job_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    switch(&state, &agent_id, &job_id, Switch::Enable).await
}

pub async fn disable(
    State(state): State<ApiState>,
    Path((agent_id, job_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    switch(&state, &agent_id, &job_id, Switch::Disable).await
}

async fn switch(
    state: &ApiState,
    agent_id: &str,
    job_id: &str,
    switch: Switch,
) -> Result<Json<Value>, ApiError> {
    let service = &find_agent(state, agent_id)?.cron;
    let job = service.switch(job_id, switch).await?;
    Ok(Json(json!({ "job": view(service, &job) })))
}
