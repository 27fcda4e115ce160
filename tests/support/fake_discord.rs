//! A fake Discord on 127.0.0.1 for tests: REST under `/api/v10` (gateway URL, messages,
//! typing, DM channels) and a gateway WebSocket speaking HELLO, IDENTIFY/READY,
//! RESUME/RESUMED, heartbeats and MESSAGE_CREATE dispatches. Tests push messages onto the live
//! session, drop the connection, script REST failures, and read what was posted.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, patch, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub const BOT_ID: &str = "1000";
pub const TOKEN: &str = "DISCORDTESTTOKEN";

#[derive(Debug, Clone)]
pub struct Call {
    /// e.g. `POST /channels/3000/messages`
    pub route: String,
    pub body: Value,
    pub at: Instant,
}

enum Control {
    Dispatch(String, Value),
    Drop,
}

#[derive(Default)]
struct FakeState {
    calls: Vec<Call>,
    failures: VecDeque<(String, u16, Value)>,
    /// The live gateway session, if any.
    session: Option<mpsc::UnboundedSender<Control>>,
    /// Dispatches waiting for a session to be ready.
    queued: Vec<(String, Value)>,
    sequence: u64,
    connections: usize,
    identifies: usize,
    resumes: usize,
    next_id: u64,
    /// Attachment files by their URL path (`/attachments/{id}/{name}`).
    files: std::collections::HashMap<String, Vec<u8>>,
    /// URL paths of the attachments downloaded, in order.
    downloads: Vec<String>,
}

#[derive(Clone)]
pub struct FakeDiscord {
    address: SocketAddr,
    state: Arc<Mutex<FakeState>>,
}

pub fn user(id: &str, name: &str, bot: bool) -> Value {
    json!({"id": id, "username": name, "discriminator": "0", "global_name": null, "avatar": null, "bot": bot})
}

fn message(
    id: &str,
    channel: &str,
    guild: Option<&str>,
    author: Value,
    content: &str,
    mentions: Vec<Value>,
) -> Value {
    let mut message = json!({"id": id, "channel_id": channel, "author": author, "content": content,
        "timestamp": "2024-01-01T00:00:00.000000+00:00", "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": mentions, "mention_roles": [], "attachments": [],
        "embeds": [], "pinned": false, "type": 0});
    if let Some(guild) = guild {
        message["guild_id"] = json!(guild);
    }
    message
}

impl FakeDiscord {
    pub async fn start() -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake discord: bind");
        let address = listener.local_addr().expect("fake discord: address");
        let fake = FakeDiscord {
            address,
            state: Arc::new(Mutex::new(FakeState {
                next_id: 9000,
                ..FakeState::default()
            })),
        };
        let app = Router::new()
            .route("/api/v10/gateway", get(gateway_url))
            .route("/api/v10/channels/{channel}/messages", post(create_message))
            .route(
                "/api/v10/channels/{channel}/messages/{message}",
                patch(edit_message).delete(delete_message),
            )
            .route("/api/v10/channels/{channel}/typing", post(typing))
            .route("/api/v10/users/@me/channels", post(create_dm))
            .route("/api/v10/users/@me", get(current_user))
            .route("/gw", any(gateway))
            .route("/attachments/{id}/{name}", get(attachment))
            .fallback(unhandled)
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    pub fn api_base(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The `[messaging.discord]` table pointing at this fake.
    pub fn config(&self, dm_allowed_users: &[&str]) -> String {
        format!(
            "\n[messaging.discord]\ntoken = \"{TOKEN}\"\napi_base = \"{}\"\ndm_allowed_users = {:?}\n",
            self.api_base(),
            dm_allowed_users
        )
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next_id(&self) -> String {
        let mut state = self.lock();
        state.next_id += 1;
        state.next_id.to_string()
    }

    /// Sends a dispatch on the live session (or when one becomes ready).
    pub fn dispatch(&self, event: &str, data: Value) {
        let mut state = self.lock();
        let delivered = state.session.as_ref().is_some_and(|session| {
            session
                .send(Control::Dispatch(event.to_string(), data.clone()))
                .is_ok()
        });
        if !delivered {
            state.queued.push((event.to_string(), data));
        }
    }

    /// A guild message from `author_id`; returns its id.
    pub fn push_guild_message(
        &self,
        guild: &str,
        channel: &str,
        author_id: &str,
        content: &str,
    ) -> String {
        let id = self.next_id();
        let author = user(author_id, &format!("user{author_id}"), author_id == BOT_ID);
        let mentions = if content.contains(&format!("<@{BOT_ID}>")) {
            vec![user(BOT_ID, "spacebot", true)]
        } else {
            Vec::new()
        };
        self.dispatch(
            "MESSAGE_CREATE",
            message(&id, channel, Some(guild), author, content, mentions),
        );
        id
    }

    /// A guild message from `author_id` with these files (name, content type, bytes) as
    /// attachments served by this fake; returns its id.
    pub fn push_guild_message_with_files(
        &self,
        guild: &str,
        channel: &str,
        author_id: &str,
        content: &str,
        files: &[(&str, &str, &[u8])],
    ) -> String {
        let id = self.next_id();
        let author = user(author_id, &format!("user{author_id}"), false);
        let mut attachments = Vec::new();
        for (index, (name, content_type, bytes)) in files.iter().enumerate() {
            let attachment_id = format!("{id}{index}");
            let path = format!("/attachments/{attachment_id}/{name}");
            self.lock().files.insert(path.clone(), bytes.to_vec());
            let url = format!("{}{path}", self.api_base());
            attachments.push(
                json!({"id": attachment_id, "filename": name, "size": bytes.len(),
                "url": url, "proxy_url": url, "content_type": content_type}),
            );
        }
        let mut data = message(&id, channel, Some(guild), author, content, Vec::new());
        data["attachments"] = json!(attachments);
        self.dispatch("MESSAGE_CREATE", data);
        id
    }

    /// URL paths of the attachments downloaded so far.
    pub fn downloads(&self) -> Vec<String> {
        self.lock().downloads.clone()
    }

    /// A direct message from `author_id` in DM channel `channel`; returns its id.
    pub fn push_direct_message(&self, channel: &str, author_id: &str, content: &str) -> String {
        let id = self.next_id();
        let author = user(author_id, &format!("user{author_id}"), false);
        self.dispatch(
            "MESSAGE_CREATE",
            message(&id, channel, None, author, content, Vec::new()),
        );
        id
    }

    /// Closes the live gateway connection without a close handshake.
    pub fn drop_connection(&self) {
        if let Some(session) = self.lock().session.take() {
            let _ = session.send(Control::Drop);
        }
    }

    pub fn fail_next(&self, route_suffix: &str, status: u16, body: Value) {
        self.lock()
            .failures
            .push_back((route_suffix.to_string(), status, body));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn connections(&self) -> usize {
        self.lock().connections
    }

    pub fn session_ready(&self) -> bool {
        self.lock().session.is_some()
    }

    /// Bodies posted to a channel's messages, in order, with the channel id.
    pub fn posted(&self) -> Vec<(String, Value)> {
        self.calls()
            .into_iter()
            .filter_map(|call| {
                let channel = call
                    .route
                    .strip_prefix("POST /channels/")?
                    .strip_suffix("/messages")?
                    .to_string();
                Some((channel, call.body))
            })
            .collect()
    }

    /// Bodies of message edits (`PATCH /channels/{c}/messages/{id}`), in order.
    pub fn edits(&self) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|call| call.route.starts_with("PATCH /channels/"))
            .map(|call| call.body)
            .collect()
    }

    pub async fn wait_for(&self, what: &str, predicate: impl Fn(&FakeDiscord) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !predicate(self) {
            let routes: Vec<String> = self.calls().into_iter().map(|call| call.route).collect();
            assert!(
                Instant::now() < deadline,
                "fake discord: never saw {what}; calls: {routes:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn wait_for_posted(&self, count: usize) -> Vec<(String, Value)> {
        self.wait_for(&format!("{count} posted messages"), |fake| {
            fake.posted().len() >= count
        })
        .await;
        self.posted()
    }

    fn record(&self, route: String, body: Value) -> Option<(u16, Value)> {
        let mut state = self.lock();
        state.calls.push(Call {
            route: route.clone(),
            body,
            at: Instant::now(),
        });
        let index = state
            .failures
            .iter()
            .position(|(suffix, _, _)| route.ends_with(suffix.as_str()))?;
        state
            .failures
            .remove(index)
            .map(|(_, status, body)| (status, body))
    }
}

fn failure(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

async fn gateway_url(State(fake): State<FakeDiscord>) -> Json<Value> {
    Json(json!({"url": format!("ws://{}/gw", fake.address)}))
}

async fn create_message(
    State(fake): State<FakeDiscord>,
    Path(channel): Path<String>,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some((status, body)) =
        fake.record(format!("POST /channels/{channel}/messages"), body.clone())
    {
        return failure(status, body);
    }
    let id = fake.next_id();
    let content = body["content"].as_str().unwrap_or_default();
    Json(message(
        &id,
        &channel,
        None,
        user(BOT_ID, "spacebot", true),
        content,
        Vec::new(),
    ))
    .into_response()
}

async fn edit_message(
    State(fake): State<FakeDiscord>,
    Path((channel, message_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let route = format!("PATCH /channels/{channel}/messages/{message_id}");
    if let Some((status, body)) = fake.record(route, body.clone()) {
        return failure(status, body);
    }
    let content = body["content"].as_str().unwrap_or_default();
    Json(message(
        &message_id,
        &channel,
        None,
        user(BOT_ID, "spacebot", true),
        content,
        Vec::new(),
    ))
    .into_response()
}

async fn delete_message(
    State(fake): State<FakeDiscord>,
    Path((channel, message_id)): Path<(String, String)>,
) -> Response {
    let route = format!("DELETE /channels/{channel}/messages/{message_id}");
    if let Some((status, body)) = fake.record(route, Value::Null) {
        return failure(status, body);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /users/@me`: who the token belongs to (the "who am I" call a setup makes).
async fn current_user(State(fake): State<FakeDiscord>, headers: axum::http::HeaderMap) -> Response {
    fake.record("GET /users/@me".to_string(), Value::Null);
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if authorization != format!("Bot {TOKEN}") {
        return failure(401, json!({"message": "401: Unauthorized", "code": 0}));
    }
    Json(user(BOT_ID, "spacebot", true)).into_response()
}

async fn typing(State(fake): State<FakeDiscord>, Path(channel): Path<String>) -> Response {
    if let Some((status, body)) =
        fake.record(format!("POST /channels/{channel}/typing"), Value::Null)
    {
        return failure(status, body);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn create_dm(State(fake): State<FakeDiscord>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.record("POST /users/@me/channels".to_string(), body.clone());
    let recipient = body["recipient_id"].as_str().unwrap_or("0").to_string();
    Json(
        json!({"id": format!("8{recipient}"), "type": 1, "last_message_id": null,
        "recipients": [user(&recipient, "someone", false)]}),
    )
    .into_response()
}

async fn unhandled(State(fake): State<FakeDiscord>, request: axum::extract::Request) -> Response {
    fake.record(
        format!("UNHANDLED {} {}", request.method(), request.uri()),
        Value::Null,
    );
    (
        StatusCode::NOT_FOUND,
        Json(json!({"message": "404: Not Found", "code": 0})),
    )
        .into_response()
}

async fn gateway(State(fake): State<FakeDiscord>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| session(fake, socket))
}

fn frame(value: Value) -> Frame {
    Frame::Text(value.to_string().into())
}

async fn session(fake: FakeDiscord, mut socket: WebSocket) {
    fake.lock().connections += 1;
    if socket
        .send(frame(json!({"op": 10, "d": {"heartbeat_interval": 41250}})))
        .await
        .is_err()
    {
        return;
    }
    let (control, mut controls) = mpsc::unbounded_channel();
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(Frame::Text(text))) = incoming else {
                    match incoming {
                        Some(Ok(_)) => continue,
                        _ => return,
                    }
                };
                let payload: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let ready = match payload["op"].as_u64() {
                    Some(1) => {
                        let _ = socket.send(frame(json!({"op": 11}))).await;
                        None
                    }
                    Some(2) => {
                        assert!(payload["d"]["token"].as_str().unwrap_or("").contains(TOKEN));
                        fake.lock().identifies += 1;
                        Some(("READY", json!({"v": 10, "user": {"id": BOT_ID, "username": "spacebot",
                            "discriminator": "0", "global_name": null, "avatar": null, "bot": true,
                            "verified": true, "mfa_enabled": false, "flags": 0},
                            "guilds": [], "session_id": "session-1",
                            "resume_gateway_url": format!("ws://{}/gw", fake.address),
                            "shard": [0, 1], "application": {"id": BOT_ID, "flags": 0}})))
                    }
                    Some(6) => {
                        fake.lock().resumes += 1;
                        Some(("RESUMED", json!({})))
                    }
                    _ => None,
                };
                if let Some((event, data)) = ready {
                    let (sequence, queued) = {
                        let mut state = fake.lock();
                        state.sequence += 1;
                        state.session = Some(control.clone());
                        (state.sequence, std::mem::take(&mut state.queued))
                    };
                    if socket.send(frame(json!({"op": 0, "s": sequence, "t": event, "d": data}))).await.is_err() {
                        return;
                    }
                    for (event, data) in queued {
                        let _ = control.send(Control::Dispatch(event, data));
                    }
                }
            }
            control = controls.recv() => match control {
                Some(Control::Dispatch(event, data)) => {
                    let sequence = {
                        let mut state = fake.lock();
                        state.sequence += 1;
                        state.sequence
                    };
                    if socket.send(frame(json!({"op": 0, "s": sequence, "t": event, "d": data}))).await.is_err() {
                        return;
                    }
                }
                Some(Control::Drop) | None => {
                    let _ = socket
                        .send(Frame::Close(Some(CloseFrame { code: 4000, reason: "fake drop".into() })))
                        .await;
                    return;
                }
            },
        }
    }
}

async fn attachment(
    State(fake): State<FakeDiscord>,
    axum::extract::Path((id, name)): axum::extract::Path<(String, String)>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = format!("/attachments/{id}/{name}");
    let mut state = fake.lock();
    state.downloads.push(path.clone());
    match state.files.get(&path) {
        Some(bytes) => bytes.clone().into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}
