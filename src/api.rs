//! The HTTP API (axum): health and status, config reload, Prometheus metrics, portal
//! messages, conversation history, memories, cron jobs, the cortex, token usage and cost, the
//! SSE event stream, an OpenAI-compatible chat endpoint and the dashboard (`dashboard.rs`).

mod access;
mod attachments;
mod cortex;
mod cron;
mod dashboard;
mod events;
mod files;
mod guard;
mod importance;
mod memories;
mod messages;
mod metrics;
mod openai;
mod status;
mod usage;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::daemon::{AgentEntry, DaemonState};
use crate::messaging::InboundError;

pub type ApiState = Arc<DaemonState>;

/// Every route. Every request passes `guard::same_site` (Host, Origin, a JSON body), and the
/// stored files `guard::own_pages_only` (no other site's page); the
/// bearer token, when configured, guards all but `/api/health` and the dashboard's page and
/// files (which hold no data and ask for the token) (`/metrics` included: a scraper sends it
/// as a bearer token).
pub fn router(state: ApiState) -> Router {
    // Attachments come base64-encoded in the JSON body: room for the largest file allowed,
    // its encoding (4/3) and the rest of the request.
    let message_body_limit =
        usize::try_from(state.config().media.max_file_bytes.saturating_mul(3) / 2 + (1 << 20))
            .unwrap_or(usize::MAX);
    let guarded = Router::new()
        .route("/api/status", get(status::status))
        .route("/api/agents", get(status::agents))
        .route(
            "/api/agents/{agent_id}/messages",
            post(messages::send_message)
                .layer(axum::extract::DefaultBodyLimit::max(message_body_limit)),
        )
        .route(
            "/api/agents/{agent_id}/conversations",
            get(messages::list_conversations),
        )
        .route(
            "/api/agents/{agent_id}/conversations/{conversation_id}/messages",
            get(messages::list_messages),
        )
        .route(
            "/api/agents/{agent_id}/files/{*path}",
            get(files::download).layer(middleware::from_fn(guard::own_pages_only)),
        )
        .route(
            "/api/agents/{agent_id}/conversations/{conversation_id}/attachments",
            get(attachments::list),
        )
        .route(
            "/api/agents/{agent_id}/conversations/{conversation_id}/attachments/{message_id}/{file}",
            get(attachments::download).layer(middleware::from_fn(guard::own_pages_only)),
        )
        .route(
            "/api/agents/{agent_id}/processes",
            get(messages::list_processes),
        )
        .route(
            "/api/agents/{agent_id}/cron",
            get(cron::list).post(cron::create),
        )
        .route(
            "/api/agents/{agent_id}/cron/{job_id}",
            get(cron::show).delete(cron::delete),
        )
        .route("/api/agents/{agent_id}/cron/{job_id}/run", post(cron::run))
        .route(
            "/api/agents/{agent_id}/cron/{job_id}/enable",
            post(cron::enable),
        )
        .route(
            "/api/agents/{agent_id}/cron/{job_id}/disable",
            post(cron::disable),
        )
        .route("/api/agents/{agent_id}/cortex", get(cortex::show))
        .route(
            "/api/agents/{agent_id}/memories",
            get(memories::list).post(memories::create),
        )
        .route(
            "/api/agents/{agent_id}/memories/search",
            get(memories::search),
        )
        .route(
            "/api/agents/{agent_id}/memories/export",
            get(memories::export),
        )
        .route(
            "/api/agents/{agent_id}/memories/import",
            // An export holds every memory with its embedding: read as a stream, unbounded.
            post(memories::import).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/api/agents/{agent_id}/memories/{memory_id}",
            get(memories::get).delete(memories::forget),
        )
        .route(
            "/api/agents/{agent_id}/memories/{memory_id}/importance",
            post(importance::set),
        )
        .route("/api/usage", get(usage::report))
        .route("/api/access", get(access::show))
        .route("/api/access/approve", post(access::approve))
        .route("/api/access/revoke", post(access::revoke))
        .route("/api/events", get(events::stream))
        .route("/api/reload", post(status::reload))
        .route("/metrics", get(metrics::scrape))
        .route("/v1/models", get(openai::models))
        .route(
            "/v1/chat/completions",
            post(openai::chat_completions)
                .layer(axum::extract::DefaultBodyLimit::max(message_body_limit)),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::token));
    Router::new()
        .route("/api/health", get(status::health))
        .route("/", get(dashboard::page))
        .route("/dashboard/{*path}", get(dashboard::asset))
        .merge(guarded)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::same_site,
        ))
        .with_state(state)
}

/// An error answer: `{"error": {"message": ...}}`, the shape OpenAI clients also read.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "API request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"message": self.message, "type": "spacebot_error", "code": self.status.as_u16()}});
        (self.status, Json(body)).into_response()
    }
}

impl From<crate::agent::AgentError> for ApiError {
    fn from(error: crate::agent::AgentError) -> Self {
        ApiError::internal(error)
    }
}

/// A message the daemon did not take: why, with the status a client can act on.
impl From<InboundError> for ApiError {
    fn from(error: InboundError) -> Self {
        let status = match &error {
            InboundError::UnknownAgent { .. } => StatusCode::NOT_FOUND,
            InboundError::ShuttingDown | InboundError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            InboundError::DiskFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            InboundError::Storage(_) => return ApiError::internal(error),
        };
        ApiError::new(status, error.to_string())
    }
}

fn find_agent(state: &ApiState, agent_id: &str) -> Result<AgentEntry, ApiError> {
    let agents = state.agents();
    agents.get(agent_id).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no agent `{agent_id}`; agents: {}",
                agents.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
    })
}
