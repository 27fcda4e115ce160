//! Access over HTTP: `GET /api/access` (owners, members, approved members, waiting pairing
//! codes), `POST /api/access/approve` (`{"code"}`: the person becomes a member and is told
//! so) and `POST /api/access/revoke` (`{"user_id"}`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiState};
use crate::access::AccessError;
use crate::conversation_id::ConversationId;
use crate::message::{Authority, OutboundContent, OutboundResponse, Outbox};

impl From<AccessError> for ApiError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::UnknownCode(_) => ApiError::new(StatusCode::NOT_FOUND, error.to_string()),
            AccessError::Store(_) => ApiError::internal(error),
        }
    }
}

pub async fn show(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let access = &state.access;
    let config = access.config();
    Ok(Json(json!({
        "owners": config.owners,
        "members": config.members,
        "groups": config.groups,
        "approved": access.approved().await?,
        "pending": access.pending().await?,
        "warnings": access.warnings(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    code: String,
    /// Approve them as an owner instead of a member.
    #[serde(default)]
    owner: bool,
}

pub async fn approve(
    State(state): State<ApiState>,
    Json(request): Json<Approve>,
) -> Result<Json<Value>, ApiError> {
    let authority = if request.owner {
        Authority::Owner
    } else {
        Authority::Member
    };
    let pairing = state.access.approve(&request.code, authority).await?;
    // Tell them, in the conversation they were given the code in.
    if let (Ok(conversation), Some(agent)) = (
        ConversationId::parse(&pairing.conversation_id),
        state.default_agent(),
    ) {
        let welcome = OutboundResponse {
            agent_id: agent.runtime.id().to_string(),
            conversation,
            in_reply_to: Vec::new(),
            reply_to: None,
            content: OutboundContent::Text {
                text: if request.owner {
                    "You are in, as an owner: you can ask me to act (run tasks, schedule \
                     jobs, remember)."
                } else {
                    "You are in: my owner approved you. You can talk with me now."
                }
                .to_string(),
            },
            usage: Default::default(),
            turn_answer: false,
        };
        if let Err(error) = state.messaging.deliver(&welcome).await {
            tracing::warn!(%error, "the approved member could not be told");
        }
    }
    Ok(Json(json!({ "approved": pairing })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    user_id: String,
}

pub async fn revoke(
    State(state): State<ApiState>,
    Json(request): Json<Revoke>,
) -> Result<Json<Value>, ApiError> {
    if !state.access.revoke(&request.user_id).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "`{}` is not an approved member (members named in the config are removed \
                 there)",
                request.user_id
            ),
        ));
    }
    Ok(Json(json!({ "revoked": request.user_id })))
}
