//! `GET /metrics`: the daemon's counters and its state at this moment, in the Prometheus
//! text format (or OpenMetrics when the scraper's `Accept` asks for it).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiState};
use crate::metrics::Format;

pub async fn scrape(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(
        headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok()),
    );
    let snapshot = state.snapshot().await;
    match state.metrics.render(&snapshot, format) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, format.content_type())],
            body,
        )
            .into_response(),
        Err(error) => ApiError::internal(error).into_response(),
    }
}
