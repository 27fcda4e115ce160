//! The daemon against a real model server: llama.cpp (xllamacpp) serving SmolLM2-135M, a
//! tiny model that cannot call tools. It checks the protocol, not the model's wisdom: a
//! conversation with history, with the channel's tools offered, continuing after a tool
//! result (written by an earlier daemon run against the scripted fake), goes through with
//! no refusal from the server and a non-empty answer every time.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{TestDaemon, config_for};
use crate::real_llm::RealLlm;

/// Answers from a tiny model on a busy 2-core machine can take a while.
const ANSWER_WAIT_SECS: u64 = 600;

async fn ask(daemon: &TestDaemon, content: &str) -> String {
    let response = daemon
        .http
        .post(daemon.url("/api/agents/main/messages"))
        .json(
            &json!({"content": content, "conversation": "real", "wait": true,
            "timeout_secs": ANSWER_WAIT_SECS}),
        )
        .timeout(Duration::from_secs(ANSWER_WAIT_SECS + 30))
        .send()
        .await
        .expect("request");
    assert!(response.status().is_success(), "{}", response.status());
    let body: Value = response.json().await.expect("json");
    let reply = body["reply"].as_str().unwrap_or_default().to_string();
    assert!(
        !reply.trim().is_empty(),
        "an empty answer to {content:?}: {body}"
    );
    assert!(
        !reply.starts_with("Sorry, I could not answer"),
        "the turn failed: {reply}"
    );
    eprintln!("real model: {content:?} -> {reply:?}");
    reply
}

#[tokio::test]
async fn a_real_llama_cpp_server_answers_a_conversation_with_tools_and_a_tool_result() {
    let home = tempfile::tempdir().expect("tempdir");
    // An earlier run, against the scripted fake, leaves a `reply` tool call and its result
    // in the conversation's context.
    let fake = FakeLlm::start().await;
    fake.push(Scripted::tool_call(
        "reply",
        json!({"content": "Hi! I am a small assistant."}),
    ));
    let daemon = TestDaemon::start(home.path(), &config_for(&fake)).await;
    ask(&daemon, "Hello, who are you?").await;
    daemon.shutdown().await;

    let server = RealLlm::start(home.path()).await;
    let config = format!(
        r#"
[llm.providers.local]
kind = "openai"
base_url = "{}"

[llm.models."local/smollm2"]
context_window = 8192
max_output_tokens = 48
temperature = 0.2

[defaults]
shutdown_grace_secs = 2

[defaults.routing]
channel = "local/smollm2"

[defaults.retry]
max_retries = 1
initial_backoff_ms = 100
max_backoff_ms = 400

[[agents]]
id = "main"
default = true

[memory]
download_model = false
"#,
        server.base_url()
    );
    let daemon = TestDaemon::start(home.path(), &config).await;
    ask(&daemon, "What is the capital of France?").await;
    ask(&daemon, "And what language do people speak there?").await;
    let status = daemon.get("/api/status").await;
    assert_eq!(
        status["llm"]["tool_less_models"],
        json!([]),
        "the server accepted the tools"
    );
    let usage = daemon.get("/api/usage").await;
    assert!(
        usage["by_model"]["local/smollm2"]["input_tokens"]
            .as_i64()
            .is_some_and(|tokens| tokens > 0),
        "real usage recorded: {usage}"
    );
    daemon.shutdown().await;
    drop(server);
}
