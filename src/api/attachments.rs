//! `GET /api/agents/{id}/conversations/{conversation}/attachments`: what files the last
//! messages of a conversation carried (name, kind, size, where the workspace keeps them, why
//! one was not received, a voice note's transcript), for the dashboard's transcripts. The
//! files themselves stay in the workspace.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiState, find_agent};

#[derive(Deserialize)]
pub struct AttachmentsQuery {
    /// The messages looked at: the conversation's last `limit` (as its transcript).
    #[serde(default)]
    limit: Option<usize>,
}

pub async fn list(
    State(state): State<ApiState>,
    Path((agent_id, conversation_id)): Path<(String, String)>,
    Query(query): Query<AttachmentsQuery>,
) -> Result<Json<Value>, ApiError> {
    let agent = find_agent(&state, &agent_id)?;
    let messages = agent
        .runtime
        .transcript(&conversation_id, query.limit.unwrap_or(100).min(1000))
        .await?;
    let ids: Vec<String> = messages.into_iter().map(|message| message.id).collect();
    let attachments = agent.runtime.attachments(&ids).await?;
    Ok(Json(
        json!({ "conversation_id": conversation_id, "attachments": attachments }),
    ))
}
