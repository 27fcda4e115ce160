//! Headless Chromium driven over the DevTools protocol: a minimal client on one websocket
//! (tokio-tungstenite), enough to load a page, run script in it, click, type, pick files,
//! read what the console reported and take screenshots. Chromium listens on 127.0.0.1 only, with a fresh
//! profile per browser.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

const CHROMIUM: &str = "chromium";
/// How long a condition the page should reach may take.
const PATIENCE: Duration = Duration::from_secs(30);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A running headless Chromium and its DevTools connection.
pub struct Browser {
    child: tokio::process::Child,
    _profile: tempfile::TempDir,
    outgoing: mpsc::UnboundedSender<String>,
    pending: Pending,
    events: Arc<Mutex<Vec<Value>>>,
    next_id: Arc<AtomicU64>,
}

/// One tab, attached through a flat session on the browser's connection.
pub struct Tab<'a> {
    browser: &'a Browser,
    session: String,
}

impl Browser {
    /// Starts Chromium with a fresh profile and its DevTools endpoint on 127.0.0.1.
    pub async fn launch() -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = tokio::process::Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-proxy-server",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start `{CHROMIUM}` ({error}); scripts/test installs it")
            });
        // Chromium writes the port it chose and the browser's websocket path here.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let endpoint = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break format!("ws://127.0.0.1:{port}{path}");
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromium never opened its DevTools port"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (socket, _) = tokio_tungstenite::connect_async(endpoint.as_str())
            .await
            .expect("connect to chromium's DevTools");
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut queue) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = queue.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (reader_pending, reader_events) = (pending.clone(), events.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Ok(text) = message.to_text() else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                match value["id"].as_u64() {
                    Some(id) => {
                        if let Some(waiter) = reader_pending.lock().expect("lock").remove(&id) {
                            // The caller may have stopped waiting.
                            let _ = waiter.send(value);
                        }
                    }
                    None => reader_events.lock().expect("lock").push(value),
                }
            }
        });
        Browser {
            child,
            _profile: profile,
            outgoing,
            pending,
            events,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        self.pending.lock().expect("lock").insert(id, sender);
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.outgoing
            .send(message.to_string())
            .expect("DevTools connection open");
        let answer = tokio::time::timeout(PATIENCE, receiver)
            .await
            .unwrap_or_else(|_| panic!("{method}: no answer from chromium"))
            .expect("answer");
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// A new tab of `width`×`height` CSS pixels, with console and log reporting on.
    pub async fn tab(&self, width: u32, height: u32) -> Tab<'_> {
        let target = self
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        let tab = Tab {
            browser: self,
            session: attached["sessionId"].as_str().expect("session").to_string(),
        };
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            tab.call(domain, json!({})).await;
        }
        tab.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}),
        )
        .await;
        tab
    }

    pub async fn close(mut self) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .outgoing
            .send(json!({"id": id, "method": "Browser.close", "params": {}}).to_string());
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

impl Tab<'_> {
    async fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params).await
    }

    /// Runs `script` in every page this tab loads from now on, before the page's own.
    pub async fn before_each_page(&self, script: &str) {
        self.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": script}),
        )
        .await;
    }

    /// Loads `url` and waits until the document has loaded.
    pub async fn open(&self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_for("document.readyState === 'complete'", "the page to load")
            .await;
    }

    /// The value of a script expression (awaited when it is a promise).
    pub async fn evaluate(&self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "`{expression}` threw: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Waits until `condition` (a script expression) is truthy.
    pub async fn wait_for(&self, condition: &str, what: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let value = self.evaluate(&format!("Boolean({condition})")).await;
            if value == json!(true) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited in vain for {what} (`{condition}`); console: {:?}; page: {}",
                self.console_errors(),
                self.text("body").await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the first element matching `selector` ("" when there is none).
    pub async fn text(&self, selector: &str) -> String {
        let expression = format!(
            "(document.querySelector({}) || {{innerText: ''}}).innerText",
            json!(selector)
        );
        self.evaluate(&expression)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Clicks the middle of the first element matching `selector`, as a mouse would.
    pub async fn click(&self, selector: &str) {
        let expression = format!(
            "(async () => {{ const element = document.querySelector({}); if (!element) return null; \
             element.scrollIntoView({{block: 'center'}}); \
             await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done))); \
             const box = element.getBoundingClientRect(); \
             return [box.x + box.width / 2, box.y + box.height / 2]; }})()",
            json!(selector)
        );
        let point = self.evaluate(&expression).await;
        let (x, y) = (
            point[0]
                .as_f64()
                .unwrap_or_else(|| panic!("no `{selector}` to click")),
            point[1].as_f64().expect("y"),
        );
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Clicks into the field `selector` and types `text` into it.
    pub async fn type_into(&self, selector: &str, text: &str) {
        self.click(selector).await;
        self.call("Input.insertText", json!({"text": text})).await;
    }

    /// Picks `files` in the file input `selector`, as a person choosing them in the file
    /// dialog would (the page hears `input` and `change`).
    pub async fn set_files(&self, selector: &str, files: &[&Path]) {
        let found = self
            .call(
                "Runtime.evaluate",
                json!({"expression": format!("document.querySelector({})", json!(selector))}),
            )
            .await;
        let object = found["result"]["objectId"]
            .as_str()
            .unwrap_or_else(|| panic!("no `{selector}` to pick files in"))
            .to_string();
        let files: Vec<String> = files
            .iter()
            .map(|file| file.display().to_string())
            .collect();
        self.call(
            "DOM.setFileInputFiles",
            json!({"files": files, "objectId": object}),
        )
        .await;
    }

    /// Presses Enter in whatever has the focus.
    pub async fn press_enter(&self) {
        self.press("Enter", 13, Some("\r")).await;
    }

    /// Presses Tab: the focus moves to the next control.
    pub async fn press_tab(&self) {
        self.press("Tab", 9, None).await;
    }

    async fn press(&self, key: &str, code: u32, text: Option<&str>) {
        for kind in ["keyDown", "keyUp"] {
            let mut event =
                json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code});
            if let (Some(text), "keyDown") = (text, kind) {
                event["text"] = json!(text);
            }
            self.call("Input.dispatchKeyEvent", event).await;
        }
    }

    /// Shows a view of the dashboard through its menu, and waits until it has rendered.
    pub async fn show_view(&self, name: &str, ready_selector: &str) {
        self.click(&format!("#nav a[href='#{name}']")).await;
        self.wait_for(
            &format!(
                "document.getElementById('view').dataset.rendered === '{name}' && document.querySelector({})",
                json!(ready_selector)
            ),
            &format!("the {name} view"),
        )
        .await;
    }

    /// What the console, uncaught exceptions and the browser's log reported as errors
    /// (failed loads, refused scripts), in all tabs.
    pub fn console_errors(&self) -> Vec<String> {
        self.browser
            .events
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|event| {
                let params = &event["params"];
                match event["method"].as_str()? {
                    "Runtime.consoleAPICalled"
                        if matches!(params["type"].as_str(), Some("error" | "assert")) =>
                    {
                        Some(params["args"].to_string())
                    }
                    "Runtime.exceptionThrown" => Some(params["exceptionDetails"].to_string()),
                    "Log.entryAdded" if params["entry"]["level"] == "error" => {
                        Some(params["entry"].to_string())
                    }
                    _ => None,
                }
            })
            .collect()
    }

    /// Saves a PNG of the whole page (beyond the window's height) as it shows now.
    pub async fn screenshot(&self, path: &Path) {
        let size = self
            .evaluate(
                "[document.documentElement.clientWidth, document.documentElement.scrollHeight]",
            )
            .await;
        let clip = json!({"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1});
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "clip": clip, "captureBeyondViewport": true}),
            )
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("image data"))
            .expect("base64");
        std::fs::write(path, bytes).expect("write screenshot");
    }
}
