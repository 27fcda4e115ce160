//! `GET /api/events`: ProcessEvents as server-sent events, optionally filtered by agent and
//! conversation.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast;

use super::{ApiError, ApiState, find_agent};

#[derive(Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    conversation: Option<String>,
}

pub async fn stream(
    State(state): State<ApiState>,
    Query(query): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let receivers: Vec<_> = match &query.agent {
        Some(agent_id) => vec![find_agent(&state, agent_id)?.runtime.subscribe()],
        None => state
            .agents()
            .values()
            .map(|entry| entry.runtime.subscribe())
            .collect(),
    };
    let conversation = query.conversation;
    let streams = receivers.into_iter().map(|receiver| {
        futures::stream::unfold(receiver, |mut receiver| async move {
            match receiver.recv().await {
                Ok(event) => Some((Some(event), receiver)),
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::warn!(skipped, "event stream subscriber lagged; events skipped");
                    Some((None, receiver))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
        .boxed()
    });
    let events = futures::stream::select_all(streams)
        .filter_map(move |event| {
            let item = match event {
                None => Some(Event::default().event("lagged").data("{}")),
                Some(event) => {
                    let wanted = conversation
                        .as_deref()
                        .is_none_or(|wanted| event.conversation_id() == Some(wanted));
                    wanted.then(|| {
                        let data = serde_json::to_string(&event).unwrap_or_default();
                        Event::default().event(event.name()).data(data)
                    })
                }
            };
            std::future::ready(item.map(Ok))
        })
        .take_until(state.shutdown.clone().cancelled_owned());
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
