//! A fake Telegram Bot API on 127.0.0.1 for tests: `POST /bot{token}/{Method}` with JSON bodies,
//! answered in Telegram's `{"ok":...}` envelope. Updates are kept until a `getUpdates` call
//! confirms them with a higher offset, as Telegram does; long polls wait for new updates.
//! Every call is recorded in order; failures can be scripted per method. Files: `getFile`
//! answers a `file_path` for a file added with `add_file`, and `GET /file/bot{token}/{path}`
//! serves it (the path percent-decoded, as teloxide encodes its `/`).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::Notify;

pub const BOT_ID: i64 = 1;
pub const BOT_USERNAME: &str = "spacebot_test_bot";
pub const TOKEN: &str = "123:TESTTOKEN";

/// One recorded API call.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub body: Value,
    pub at: Instant,
}

#[derive(Default)]
struct FakeState {
    /// (update_id, update) not yet confirmed.
    updates: Vec<(i64, Value)>,
    /// Every update ever queued.
    history: Vec<(i64, Value)>,
    next_update_id: i64,
    next_message_id: i64,
    confirmed_offset: i64,
    calls: Vec<Call>,
    /// Scripted answers: (method, status, body), used once each, in order.
    failures: VecDeque<(String, u16, Value)>,
    /// file_id -> (file_path, bytes).
    files: std::collections::HashMap<String, (String, Vec<u8>)>,
    /// Paths of the files downloaded, in order.
    downloads: Vec<String>,
}

#[derive(Clone)]
pub struct FakeTelegram {
    address: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    notify: Arc<Notify>,
}

impl FakeTelegram {
    pub async fn start() -> FakeTelegram {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake telegram: bind");
        let address = listener.local_addr().expect("fake telegram: address");
        let fake = FakeTelegram {
            address,
            state: Arc::new(Mutex::new(FakeState {
                next_update_id: 100,
                next_message_id: 1000,
                ..FakeState::default()
            })),
            notify: Arc::new(Notify::new()),
        };
        let app = Router::new()
            .route("/{token}/{method}", post(api))
            .route("/file/{token}/{*path}", axum::routing::get(download))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The `[messaging.telegram]` table pointing at this fake.
    pub fn config(&self, dm_allowed_users: &[&str]) -> String {
        format!(
            "\n[messaging.telegram]\ntoken = \"{TOKEN}\"\napi_url = \"{}\"\ndm_allowed_users = {:?}\n",
            self.api_url(),
            dm_allowed_users
        )
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a text message from `user_id` in `chat_id` (a private chat when they are equal,
    /// else a group); returns its message id.
    pub fn push_message(&self, chat_id: i64, user_id: i64, text: &str) -> i64 {
        let chat = if chat_id == user_id {
            json!({"id": chat_id, "type": "private", "first_name": format!("User{user_id}")})
        } else {
            json!({"id": chat_id, "type": "supergroup", "title": "Group"})
        };
        let from = if user_id == BOT_ID {
            json!({"id": BOT_ID, "is_bot": true, "first_name": "Bot", "username": BOT_USERNAME})
        } else {
            json!({"id": user_id, "is_bot": false, "first_name": format!("User{user_id}"), "username": format!("user{user_id}")})
        };
        let mut state = self.lock();
        let message_id = state.next_message_id;
        state.next_message_id += 1;
        let update_id = state.next_update_id;
        state.next_update_id += 1;
        let update = json!({"update_id": update_id, "message": {
            "message_id": message_id, "date": 1_700_000_000, "chat": chat, "from": from, "text": text}});
        state.updates.push((update_id, update.clone()));
        state.history.push((update_id, update));
        drop(state);
        self.notify.notify_waiters();
        message_id
    }

    /// Makes a file available: `getFile` with `file_id` answers `path`, the file endpoint
    /// serves `bytes`.
    pub fn add_file(&self, file_id: &str, path: &str, bytes: &[u8]) {
        self.lock()
            .files
            .insert(file_id.to_string(), (path.to_string(), bytes.to_vec()));
    }

    /// Paths of the files downloaded so far.
    pub fn downloads(&self) -> Vec<String> {
        self.lock().downloads.clone()
    }

    /// Queues a message from `user_id` in `chat_id` with these fields besides the usual
    /// ones (`photo`, `document`, `voice`, `caption`, `text`); returns its message id.
    pub fn push_message_with(&self, chat_id: i64, user_id: i64, fields: Value) -> i64 {
        let message_id = self.push_message(chat_id, user_id, "");
        let mut guard = self.lock();
        let state = &mut *guard;
        for list in [&mut state.updates, &mut state.history] {
            if let Some((_, update)) = list
                .iter_mut()
                .rev()
                .find(|(_, update)| update["message"]["message_id"] == message_id)
            {
                let message = &mut update["message"];
                if let Some(object) = message.as_object_mut() {
                    object.remove("text");
                }
                for (key, value) in fields.as_object().into_iter().flatten() {
                    message[key] = value.clone();
                }
            }
        }
        message_id
    }

    /// The next call of `method` is answered with `status` and `body` instead.
    pub fn fail_next(&self, method: &str, status: u16, body: Value) {
        self.lock()
            .failures
            .push_back((method.to_string(), status, body));
    }

    /// Forgets which updates were confirmed, as if the confirmations never reached Telegram:
    /// every update ever queued is delivered again.
    pub fn redeliver_everything(&self) {
        let mut state = self.lock();
        state.updates = state.history.clone();
        state.confirmed_offset = 0;
        drop(state);
        self.notify.notify_waiters();
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn method_names(&self) -> Vec<String> {
        self.calls().into_iter().map(|call| call.method).collect()
    }

    /// Bodies of successful-or-not `SendMessage` calls, in order.
    pub fn sent(&self) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|call| call.method == "SendMessage")
            .map(|call| call.body)
            .collect()
    }

    /// Bodies of `EditMessageText` calls, in order.
    pub fn edits(&self) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|call| call.method == "EditMessageText")
            .map(|call| call.body)
            .collect()
    }

    pub fn confirmed_offset(&self) -> i64 {
        self.lock().confirmed_offset
    }

    /// Polls until `predicate` holds for the recorded calls.
    pub async fn wait_for(&self, what: &str, predicate: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let calls = self.calls();
            if predicate(&calls) {
                return calls;
            }
            let names: Vec<&str> = calls.iter().map(|call| call.method.as_str()).collect();
            assert!(
                Instant::now() < deadline,
                "fake telegram: never saw {what}; calls: {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits for `count` SendMessage calls and returns their bodies.
    pub async fn wait_for_sent(&self, count: usize) -> Vec<Value> {
        self.wait_for(&format!("{count} sendMessage"), |calls| {
            calls
                .iter()
                .filter(|call| call.method == "SendMessage")
                .count()
                >= count
        })
        .await;
        self.sent()
    }
}

fn ok(result: Value) -> Response {
    Json(json!({"ok": true, "result": result})).into_response()
}

async fn api(
    State(fake): State<FakeTelegram>,
    Path((token, method)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if token != format!("bot{TOKEN}") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"ok": false, "error_code": 401, "description": "Unauthorized"})),
        )
            .into_response();
    }
    let failure = {
        let mut state = fake.lock();
        state.calls.push(Call {
            method: method.clone(),
            body: body.clone(),
            at: Instant::now(),
        });
        let position = state
            .failures
            .iter()
            .position(|(failing, _, _)| failing.eq_ignore_ascii_case(&method));
        position.and_then(|index| state.failures.remove(index))
    };
    if let Some((_, status, body)) = failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, Json(body)).into_response();
    }
    let bot = json!({"id": BOT_ID, "is_bot": true, "first_name": "Bot", "username": BOT_USERNAME});
    match method.to_ascii_lowercase().as_str() {
        "getme" => ok(json!({"id": BOT_ID, "is_bot": true, "first_name": "Bot", "username": BOT_USERNAME,
            "can_join_groups": true, "can_read_all_group_messages": true,
            "supports_inline_queries": false, "has_main_web_app": false})),
        "getwebhookinfo" => ok(json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0})),
        "deletewebhook" => ok(json!(true)),
        "getupdates" => {
            let offset = body["offset"].as_i64().unwrap_or(0);
            let wait = Duration::from_secs(body["timeout"].as_u64().unwrap_or(0)).min(Duration::from_secs(3));
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let notified = fake.notify.notified();
                let pending: Vec<Value> = {
                    let mut state = fake.lock();
                    if offset > 0 {
                        state.updates.retain(|(id, _)| *id >= offset);
                        state.confirmed_offset = state.confirmed_offset.max(offset);
                    }
                    state.updates.iter().map(|(_, update)| update.clone()).collect()
                };
                if !pending.is_empty() || tokio::time::Instant::now() >= deadline {
                    return ok(Value::Array(pending));
                }
                let _ = tokio::time::timeout_at(deadline, notified).await;
            }
        }
        "sendchataction" => ok(json!(true)),
        "editmessagetext" => ok(json!({"message_id": body["message_id"], "date": 1_700_000_001,
            "chat": {"id": body["chat_id"], "type": "private", "first_name": "User"},
            "from": bot, "text": body["text"]})),
        "deletemessage" => ok(json!(true)),
        "getfile" => {
            let file_id = body["file_id"].as_str().unwrap_or_default().to_string();
            let known = fake.lock().files.get(&file_id).cloned();
            match known {
                Some((path, bytes)) => ok(json!({"file_id": file_id, "file_unique_id": format!("u-{file_id}"),
                    "file_size": bytes.len(), "file_path": path})),
                None => Json(json!({"ok": false, "error_code": 400, "description": "Bad Request: invalid file_id"}))
                    .into_response(),
            }
        }
        "sendmessage" => {
            let message_id = {
                let mut state = fake.lock();
                state.next_message_id += 1;
                state.next_message_id
            };
            ok(json!({"message_id": message_id, "date": 1_700_000_001,
                "chat": {"id": body["chat_id"], "type": "private", "first_name": "User"},
                "from": bot, "text": body["text"]}))
        }
        other => Json(json!({"ok": false, "error_code": 404, "description": format!("Not Found: method {other}")}))
            .into_response(),
    }
}

async fn download(
    State(fake): State<FakeTelegram>,
    Path((token, path)): Path<(String, String)>,
) -> Response {
    if token != format!("bot{TOKEN}") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut state = fake.lock();
    state.downloads.push(path.clone());
    let found = state
        .files
        .values()
        .find(|(file_path, _)| *file_path == path)
        .map(|(_, bytes)| bytes.clone());
    match found {
        Some(bytes) => bytes.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
