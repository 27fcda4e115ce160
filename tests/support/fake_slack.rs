//! A fake Slack on 127.0.0.1 for tests: the Web API (`POST /api/{method}`: auth.test,
//! apps.connections.open, chat.postMessage, users.info, assistant.threads.setStatus,
//! reactions.add, and the external file upload: files.getUploadURLExternal hands out an
//! upload URL on this fake, which records the bytes, and files.completeUploadExternal records
//! where the file was shared) and a Socket Mode WebSocket that says hello, sends `events_api`
//! envelopes and records the acks. Tests push events, drop the socket, script Web API
//! failures and read what was posted, uploaded and reacted.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ws::{Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub const BOT_USER: &str = "UBOT";
pub const TEAM: &str = "T1";
pub const BOT_TOKEN: &str = "xoxb-test";
pub const APP_TOKEN: &str = "xapp-test";

/// A file uploaded through the external upload flow, as far as it got.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub file_id: String,
    /// From files.getUploadURLExternal.
    pub filename: String,
    pub length: usize,
    /// Posted to the upload URL.
    pub bytes: Option<Vec<u8>>,
    pub content_type: Option<String>,
    /// From files.completeUploadExternal.
    pub completed: bool,
    pub channel_id: Option<String>,
    pub thread_ts: Option<String>,
    pub initial_comment: Option<String>,
    pub title: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub body: Value,
    pub at: Instant,
}

enum Control {
    Send(Value),
    Drop,
}

#[derive(Default)]
struct FakeState {
    calls: Vec<Call>,
    acks: Vec<String>,
    failures: VecDeque<(String, u16, Value, Option<u64>)>,
    socket: Option<mpsc::UnboundedSender<Control>>,
    queued: Vec<Value>,
    connections: usize,
    next: u64,
    /// Shared files by their URL path (`/files/{id}/{name}`).
    files: std::collections::HashMap<String, Vec<u8>>,
    /// (path, Authorization header) of each file download, in order.
    downloads: Vec<(String, String)>,
    /// Files uploaded to this fake, in the order their upload URLs were asked for.
    uploads: Vec<Upload>,
}

#[derive(Clone)]
pub struct FakeSlack {
    address: SocketAddr,
    state: Arc<Mutex<FakeState>>,
}

impl FakeSlack {
    pub async fn start() -> FakeSlack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake slack: bind");
        let address = listener.local_addr().expect("fake slack: address");
        let fake = FakeSlack {
            address,
            state: Arc::new(Mutex::new(FakeState::default())),
        };
        let app = Router::new()
            .route("/api/{method}", any(web_api))
            .route("/socket", any(socket))
            .route("/files/{id}/{name}", any(shared_file))
            .route("/upload/{id}", any(upload))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.address)
    }

    /// The `[messaging.slack]` table pointing at this fake.
    pub fn config(&self) -> String {
        format!(
            "\n[messaging.slack]\nbot_token = \"{BOT_TOKEN}\"\napp_token = \"{APP_TOKEN}\"\napi_url = \"{}\"\n",
            self.api_url()
        )
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Pushes a `message` event from `user` in `channel` (in the thread `thread_ts` when given);
    /// returns the envelope id and the message ts.
    pub fn push_message(
        &self,
        user: &str,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
    ) -> (String, String) {
        let (envelope_id, ts) = {
            let mut state = self.lock();
            state.next += 1;
            (
                format!("env-{}", state.next),
                format!("1700000000.{:06}", state.next),
            )
        };
        let mut event = json!({"type": "message", "channel": channel, "channel_type": "channel",
            "user": user, "text": text, "ts": ts});
        if let Some(thread) = thread_ts {
            event["thread_ts"] = json!(thread);
        }
        if user == BOT_USER {
            event["bot_id"] = json!("B1");
        }
        let envelope = json!({"type": "events_api", "envelope_id": envelope_id, "accepts_response_payload": false,
            "payload": {"token": "x", "team_id": TEAM, "api_app_id": "A1", "type": "event_callback",
                "event_id": format!("Ev{envelope_id}"), "event_time": 1_700_000_000, "event": event}});
        self.send(envelope);
        (envelope_id, ts)
    }

    /// Pushes a `message` event of subtype `file_share` from `user` in `channel` with these
    /// files (name, mimetype, bytes), served at their `url_private` by this fake to the bot
    /// token only; returns the envelope id and the message ts.
    pub fn push_files(
        &self,
        user: &str,
        channel: &str,
        text: Option<&str>,
        files: &[(&str, &str, &[u8])],
    ) -> (String, String) {
        self.push_files_with(user, channel, text, files, json!({}))
    }

    /// A voice clip recorded in Slack: a `file_share` of `audio_message.mp4`, which Slack
    /// marks `subtype: slack_audio` and may call `video/mp4`; returns the envelope id and ts.
    pub fn push_voice_clip(&self, user: &str, channel: &str, bytes: &[u8]) -> (String, String) {
        self.push_files_with(
            user,
            channel,
            None,
            &[("audio_message.mp4", "video/mp4", bytes)],
            json!({"subtype": "slack_audio", "filetype": "mp4"}),
        )
    }

    /// `push_files` with `extra` fields on every file.
    fn push_files_with(
        &self,
        user: &str,
        channel: &str,
        text: Option<&str>,
        files: &[(&str, &str, &[u8])],
        extra: Value,
    ) -> (String, String) {
        let (envelope_id, ts) = {
            let mut state = self.lock();
            state.next += 1;
            (
                format!("env-{}", state.next),
                format!("1700000000.{:06}", state.next),
            )
        };
        let mut shared = Vec::new();
        for (index, (name, mimetype, bytes)) in files.iter().enumerate() {
            let id = format!("F{}{index}", ts.replace('.', ""));
            let path = format!("/files/{id}/{name}");
            self.lock().files.insert(path.clone(), bytes.to_vec());
            let mut file = json!({"id": id, "name": name, "mimetype": mimetype,
                "size": bytes.len(), "url_private": format!("http://{}{path}", self.address)});
            for (key, value) in extra.as_object().into_iter().flatten() {
                file[key] = value.clone();
            }
            shared.push(file);
        }
        let mut event = json!({"type": "message", "subtype": "file_share", "channel": channel,
            "channel_type": "channel", "user": user, "ts": ts, "files": shared});
        if let Some(text) = text {
            event["text"] = json!(text);
        }
        let envelope = json!({"type": "events_api", "envelope_id": envelope_id, "accepts_response_payload": false,
            "payload": {"token": "x", "team_id": TEAM, "api_app_id": "A1", "type": "event_callback",
                "event_id": format!("Ev{envelope_id}"), "event_time": 1_700_000_000, "event": event}});
        self.send(envelope);
        (envelope_id, ts)
    }

    /// (path, Authorization header) of each file download so far.
    pub fn downloads(&self) -> Vec<(String, String)> {
        self.lock().downloads.clone()
    }

    /// Files uploaded so far (see `Upload`).
    pub fn uploads(&self) -> Vec<Upload> {
        self.lock().uploads.clone()
    }

    /// Bodies of `reactions.add` calls, in order.
    pub fn reactions(&self) -> Vec<Value> {
        self.bodies_of("reactions.add")
    }

    fn send(&self, frame: Value) {
        let mut state = self.lock();
        let delivered = state
            .socket
            .as_ref()
            .is_some_and(|socket| socket.send(Control::Send(frame.clone())).is_ok());
        if !delivered {
            state.queued.push(frame);
        }
    }

    /// Closes the live socket without a close handshake.
    pub fn drop_connection(&self) {
        if let Some(socket) = self.lock().socket.take() {
            let _ = socket.send(Control::Drop);
        }
    }

    /// The next call of `method` is answered with `status`, `body` and an optional Retry-After.
    pub fn fail_next(&self, method: &str, status: u16, body: Value, retry_after: Option<u64>) {
        self.lock()
            .failures
            .push_back((method.to_string(), status, body, retry_after));
    }

    /// Bodies of the calls of `method`, in order.
    fn bodies_of(&self, method: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|call| call.method == method)
            .map(|call| call.body)
            .collect()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn acks(&self) -> Vec<String> {
        self.lock().acks.clone()
    }

    pub fn connections(&self) -> usize {
        self.lock().connections
    }

    pub fn socket_ready(&self) -> bool {
        self.lock().socket.is_some()
    }

    pub fn posted(&self) -> Vec<Value> {
        self.bodies_of("chat.postMessage")
    }

    /// Bodies of `chat.update` calls, in order.
    pub fn updates(&self) -> Vec<Value> {
        self.bodies_of("chat.update")
    }

    pub async fn wait_for(&self, what: &str, predicate: impl Fn(&FakeSlack) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !predicate(self) {
            let methods: Vec<String> = self.calls().into_iter().map(|call| call.method).collect();
            assert!(
                Instant::now() < deadline,
                "fake slack: never saw {what}; calls: {methods:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn wait_for_posted(&self, count: usize) -> Vec<Value> {
        self.wait_for(&format!("{count} posted messages"), |fake| {
            fake.posted().len() >= count
        })
        .await;
        self.posted()
    }
}

/// Slack takes GET with a query string (slack-morphism uses it for auth.test and users.info)
/// or POST with JSON.
async fn web_api(
    State(fake): State<FakeSlack>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(query) = query {
        let fields = url::form_urlencoded::parse(query.as_bytes())
            .map(|(key, value)| (key.into_owned(), json!(value.into_owned())));
        body = Value::Object(fields.collect());
    }
    let failure = {
        let mut state = fake.lock();
        state.calls.push(Call {
            method: method.clone(),
            body: body.clone(),
            at: Instant::now(),
        });
        let index = state
            .failures
            .iter()
            .position(|(failing, ..)| *failing == method);
        index.and_then(|index| state.failures.remove(index))
    };
    if let Some((_, status, body, retry_after)) = failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                "retry-after",
                seconds.to_string().parse().expect("header value"),
            );
        }
        return response;
    }
    let expected = if method == "apps.connections.open" {
        APP_TOKEN
    } else {
        BOT_TOKEN
    };
    if authorization != format!("Bearer {expected}") {
        return Json(json!({"ok": false, "error": "invalid_auth"})).into_response();
    }
    match method.as_str() {
        "auth.test" => Json(
            json!({"ok": true, "url": "https://fake.slack.test/", "team": "Fake",
            "user": "spacebot", "team_id": TEAM, "user_id": BOT_USER, "bot_id": "B1"}),
        ),
        "apps.connections.open" => {
            Json(json!({"ok": true, "url": format!("ws://{}/socket", fake.address)}))
        }
        "chat.postMessage" => Json(
            json!({"ok": true, "channel": body["channel"], "ts": "1700000099.000100",
            "message": {"ts": "1700000099.000100", "text": body["text"], "bot_id": "B1"}}),
        ),
        "users.info" => {
            let id = body["user"].as_str().unwrap_or("U0");
            Json(
                json!({"ok": true, "user": {"id": id, "name": format!("name-{id}"),
                "profile": {"display_name": format!("Display {id}")}}}),
            )
        }
        "assistant.threads.setStatus" => Json(json!({"ok": true})),
        "chat.update" => Json(
            json!({"ok": true, "channel": body["channel"], "ts": body["ts"],
            "text": body["text"], "message": {"text": body["text"], "bot_id": "B1"}}),
        ),
        "chat.delete" => Json(json!({"ok": true, "channel": body["channel"], "ts": body["ts"]})),
        "reactions.add" => Json(json!({"ok": true})),
        "files.getUploadURLExternal" => {
            let mut state = fake.lock();
            state.next += 1;
            let file_id = format!("FUP{}", state.next);
            state.uploads.push(Upload {
                file_id: file_id.clone(),
                filename: body["filename"].as_str().unwrap_or_default().to_string(),
                length: body["length"]
                    .as_str()
                    .and_then(|length| length.parse().ok())
                    .unwrap_or_default(),
                ..Upload::default()
            });
            Json(json!({"ok": true, "file_id": file_id,
                "upload_url": format!("http://{}/upload/{file_id}", fake.address)}))
        }
        "files.completeUploadExternal" => {
            let mut state = fake.lock();
            let mut shared = Vec::new();
            for file in body["files"].as_array().into_iter().flatten() {
                let id = file["id"].as_str().unwrap_or_default();
                let Some(upload) = state
                    .uploads
                    .iter_mut()
                    .find(|upload| upload.file_id == id && upload.bytes.is_some())
                else {
                    return Json(json!({"ok": false, "error": "file_not_found"})).into_response();
                };
                upload.completed = true;
                upload.channel_id = body["channel_id"].as_str().map(str::to_string);
                upload.thread_ts = body["thread_ts"].as_str().map(str::to_string);
                upload.initial_comment = body["initial_comment"].as_str().map(str::to_string);
                upload.title = file["title"].as_str().map(str::to_string);
                shared.push(json!({"id": id, "name": upload.filename, "title": upload.title}));
            }
            Json(json!({"ok": true, "files": shared}))
        }
        _ => Json(json!({"ok": false, "error": "unknown_method"})),
    }
    .into_response()
}

async fn socket(State(fake): State<FakeSlack>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| session(fake, socket))
}

async fn session(fake: FakeSlack, mut socket: WebSocket) {
    let hello = json!({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"},
        "debug_info": {"host": "fake"}});
    if socket
        .send(Frame::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let (control, mut controls) = mpsc::unbounded_channel();
    let queued = {
        let mut state = fake.lock();
        state.connections += 1;
        state.socket = Some(control.clone());
        std::mem::take(&mut state.queued)
    };
    for frame in queued {
        let _ = control.send(Control::Send(frame));
    }
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Frame::Text(text))) => {
                    let ack: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if let Some(id) = ack["envelope_id"].as_str() {
                        fake.lock().acks.push(id.to_string());
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            control = controls.recv() => match control {
                Some(Control::Send(frame)) => {
                    if socket.send(Frame::Text(frame.to_string().into())).await.is_err() {
                        return;
                    }
                }
                // Dropping the socket ends the TCP connection without a close frame.
                Some(Control::Drop) | None => return,
            },
        }
    }
}

async fn shared_file(
    State(fake): State<FakeSlack>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/files/{id}/{name}");
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut state = fake.lock();
    state.downloads.push((path.clone(), authorization.clone()));
    if authorization != format!("Bearer {BOT_TOKEN}") {
        return StatusCode::FORBIDDEN.into_response();
    }
    match state.files.get(&path) {
        Some(bytes) => bytes.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The upload URL files.getUploadURLExternal handed out: takes the file's bytes and answers
/// as Slack does, in plain text.
async fn upload(
    State(fake): State<FakeSlack>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let mut state = fake.lock();
    let Some(upload) = state.uploads.iter_mut().find(|upload| upload.file_id == id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    upload.bytes = Some(body.to_vec());
    upload.content_type = content_type;
    (
        [("content-type", "text/plain; charset=utf-8")],
        format!("OK - {}", body.len()),
    )
        .into_response()
}
