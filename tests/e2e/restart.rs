//! Restarts: history survives, and a message received but not answered before the daemon
//! stopped is answered exactly once afterwards.

use std::time::Duration;

use serde_json::json;

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{TestDaemon, config_for, replies};

#[tokio::test]
async fn history_survives_a_restart() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::tool_call(
        "reply",
        json!({"content": "I will remember the lighthouse."}),
    ));
    llm.push(Scripted::text("You told me about the lighthouse."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm);

    let daemon = TestDaemon::start(home.path(), &config).await;
    daemon.send("memory", "remember the lighthouse").await;
    daemon.shutdown().await;

    let daemon = TestDaemon::start(home.path(), &config).await;
    let answer = daemon.send("memory", "what did I tell you?").await;
    assert_eq!(answer["reply"], "You told me about the lighthouse.");
    let history = llm.requests()[1]["messages"].to_string();
    assert!(history.contains("remember the lighthouse"), "{history}");
    assert!(
        history.contains("I will remember the lighthouse."),
        "{history}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn an_unanswered_message_is_answered_once_after_restart() {
    let llm = FakeLlm::start().await;
    // The first attempt hangs past the shutdown deadline (2 s), so the turn is cut off.
    llm.push(Scripted::Hang);
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm);

    let daemon = TestDaemon::start(home.path(), &config).await;
    daemon.post("interrupted", "please answer me").await;
    llm.wait_for_requests(1, Duration::from_secs(5)).await;
    daemon.shutdown().await;

    llm.push(Scripted::tool_call(
        "reply",
        json!({"content": "sorry for the wait"}),
    ));
    let daemon = TestDaemon::start(home.path(), &config).await;
    let transcript = daemon
        .wait_for_messages("interrupted", |messages| !replies(messages).is_empty())
        .await;
    assert_eq!(replies(&transcript), vec!["sorry for the wait"]);
    assert_eq!(transcript[0]["status"], "answered");
    assert_eq!(
        FakeLlm::last_user_text(&llm.requests()[1]),
        "please answer me"
    );
    daemon.shutdown().await;

    // A third start finds nothing owed: no further LLM call, no second answer.
    let daemon = TestDaemon::start(home.path(), &config).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(llm.request_count(), 2);
    assert_eq!(replies(&daemon.messages("interrupted").await).len(), 1);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_repeated_idempotency_key_is_not_answered_twice() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::text("answered once"));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let body = json!({"content": "hello", "conversation": "dedupe", "idempotency_key": "platform-42", "wait": true});
    let first: serde_json::Value = daemon
        .http
        .post(daemon.url("/api/agents/main/messages"))
        .json(&body)
        .send()
        .await
        .expect("first")
        .json()
        .await
        .expect("json");
    assert_eq!(first["reply"], "answered once");
    let second: serde_json::Value = daemon
        .http
        .post(daemon.url("/api/agents/main/messages"))
        .json(&body)
        .send()
        .await
        .expect("second")
        .json()
        .await
        .expect("json");
    assert_eq!(second["duplicate"], true);
    assert_eq!(llm.request_count(), 1);
    daemon
        .wait_for_messages("dedupe", |messages| messages.len() == 2)
        .await;
    daemon.shutdown().await;
}
