//! The OpenAI-compatible endpoint: agents as models, persistent conversations by `user`,
//! stateless history, streaming.

use serde_json::{Value, json};

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{TestDaemon, config_for};

async fn complete(daemon: &TestDaemon, body: Value) -> reqwest::Response {
    daemon
        .http
        .post(daemon.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn models_list_the_agents() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let models = daemon.get("/v1/models").await;
    assert_eq!(models["data"][0]["id"], "spacebot/main");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_named_conversation_keeps_its_history_across_requests() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::tool_call(
        "reply",
        json!({"content": "Nice to meet you, Bob."}),
    ));
    llm.push(Scripted::text("Your name is Bob."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    let first = complete(
        &daemon,
        json!({"model": "spacebot/main", "user": "bob", "messages": [{"role": "user", "content": "I am Bob"}]}),
    )
    .await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["object"], "chat.completion");
    assert_eq!(
        first["choices"][0]["message"]["content"],
        "Nice to meet you, Bob."
    );

    // The client sends only the new message; the daemon supplies the history.
    let second: Value = complete(
        &daemon,
        json!({"model": "main", "user": "bob", "messages": [{"role": "user", "content": [{"type": "text", "text": "What is my name?"}]}]}),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(
        second["choices"][0]["message"]["content"],
        "Your name is Bob."
    );
    let history = llm.requests()[1]["messages"].to_string();
    assert!(history.contains("I am Bob"), "{history}");
    assert!(history.contains("Nice to meet you, Bob."), "{history}");
    daemon
        .wait_for_messages("bob", |messages| messages.len() == 4)
        .await;
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_stateless_request_brings_its_own_history() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::text("It was blue."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let answer: Value = complete(
        &daemon,
        json!({"model": "spacebot/main", "messages": [
            {"role": "system", "content": "ignored: the agent has its own identity"},
            {"role": "user", "content": "My car is blue."},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": "What colour is my car?"}
        ]}),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(answer["choices"][0]["message"]["content"], "It was blue.");
    let messages = llm.requests()[0]["messages"].to_string();
    assert!(messages.contains("My car is blue."), "{messages}");
    assert!(messages.contains("Noted."), "{messages}");
    assert!(!messages.contains("ignored: the agent"), "{messages}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn streaming_answers_as_chunks_and_skip_is_empty_content() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::text("streamed answer"));
    llm.push(Scripted::tool_call("skip", json!({})));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let response = complete(
        &daemon,
        json!({"model": "spacebot/main", "stream": true, "user": "s", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("body");
    let chunks: Vec<Value> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).expect("chunk json"))
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "streamed answer");
    assert_eq!(
        chunks.last().expect("chunks")["choices"][0]["finish_reason"],
        "stop"
    );
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");

    let skipped: Value = complete(
        &daemon,
        json!({"model": "spacebot/main", "user": "s", "messages": [{"role": "user", "content": "ok"}]}),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(skipped["choices"][0]["message"]["content"], "");
    daemon.shutdown().await;
}

#[tokio::test]
async fn unknown_models_and_bad_requests_are_clear_errors() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let unknown = complete(
        &daemon,
        json!({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("spacebot/main")
    );
    let not_user = complete(
        &daemon,
        json!({"model": "main", "messages": [{"role": "assistant", "content": "hi"}]}),
    )
    .await;
    assert_eq!(not_user.status(), 400);
    assert_eq!(llm.request_count(), 0);
    daemon.shutdown().await;
}
