//! `spacebot serve` as a separate process, for tests that kill it, limit it or measure it
//! from outside.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// `spacebot serve` as a separate process, so it can be killed like a real one.
pub struct DaemonProcess {
    pub child: Child,
    pub base_url: String,
    pub http: reqwest::Client,
}

impl DaemonProcess {
    pub async fn start(home: &std::path::Path, config: &str) -> DaemonProcess {
        Self::start_with(
            home,
            config,
            Command::new(env!("CARGO_BIN_EXE_spacebot")),
            Stdio::null(),
        )
        .await
    }

    /// Starts `command` (the daemon binary, or a wrapper that ends by running it) with
    /// `serve` arguments, its log going to `log`.
    pub async fn start_with(
        home: &std::path::Path,
        config: &str,
        mut command: Command,
        log: Stdio,
    ) -> DaemonProcess {
        spacebot::install_crypto_provider();
        std::fs::write(home.join("config.toml"), config).expect("config");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let child = command
            .args(["serve", "--port", &port.to_string()])
            .env("SPACEBOT_HOME", home)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start spacebot serve");
        let daemon = DaemonProcess {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let health = daemon.http.get(daemon.url("/api/health")).send().await;
            if health.is_ok_and(|response| response.status().is_success()) {
                return daemon;
            }
            assert!(Instant::now() < deadline, "daemon never became ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn post(&self, conversation: &str, content: &str) {
        let response = self
            .http
            .post(self.url("/api/agents/main/messages"))
            .json(&json!({"content": content, "conversation": conversation}))
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 202);
    }

    pub async fn transcript(&self, conversation: &str) -> Vec<Value> {
        let body: Value = self
            .http
            .get(self.url(&format!(
                "/api/agents/main/conversations/portal:{conversation}/messages?limit=1000"
            )))
            .send()
            .await
            .expect("transcript")
            .json()
            .await
            .expect("json");
        body["messages"].as_array().cloned().unwrap_or_default()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit; returns how long it took.
    pub async fn wait_exit(&mut self, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                let _ = status;
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "the daemon did not exit within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DaemonProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's peak resident set (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the daemon's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }
}
