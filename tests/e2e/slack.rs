//! Slack end to end: the real daemon's slack-morphism adapter against the fake Web API and
//! Socket Mode.

use std::time::Duration;

use serde_json::json;

use crate::fake_llm::{FakeLlm, Scripted};
use crate::fake_slack::{BOT_USER, FakeSlack};
use crate::harness::{TestDaemon, access, config_for, wait_for_replies};

#[tokio::test]
async fn a_slack_thread_message_is_acked_and_answered_in_its_thread_after_a_status() {
    let llm = FakeLlm::start().await;
    let slack = FakeSlack::start().await;
    let paragraph = "slack words ".repeat(200);
    let long = [paragraph.trim(); 3].join("\n\n");
    llm.push(Scripted::tool_call("reply", json!({"content": long})));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &(slack.config() + &access(&["slack:U1"], &["slack:T1"]));
    let daemon = TestDaemon::start(home.path(), &config).await;

    let (envelope, _) = slack.push_message(
        "U1",
        "C1",
        Some("1690000000.000001"),
        &format!("<@{BOT_USER}> summarise the thread"),
    );
    let posted = slack.wait_for_posted(2).await;
    for message in &posted {
        assert_eq!(message["channel"], "C1");
        assert_eq!(message["thread_ts"], "1690000000.000001");
        assert!(message["text"].as_str().unwrap_or("").chars().count() <= 4000);
    }
    assert!(
        slack.acks().contains(&envelope),
        "the envelope was acknowledged"
    );
    let methods: Vec<String> = slack.calls().into_iter().map(|call| call.method).collect();
    let status = methods
        .iter()
        .position(|method| method == "assistant.threads.setStatus");
    let reply = methods
        .iter()
        .position(|method| method == "chat.postMessage");
    assert!(
        status.is_some() && status < reply,
        "status before the reply: {methods:?}"
    );
    assert_eq!(
        FakeLlm::last_user_text(&llm.requests()[0]),
        "@Display UBOT summarise the thread"
    );
    wait_for_replies(&daemon, "main", "slack:T1:C1:1690000000.000001", 1).await;
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_slack_channel_message_gets_a_top_level_answer_and_own_messages_are_ignored() {
    let llm = FakeLlm::start().await;
    let slack = FakeSlack::start().await;
    llm.push(Scripted::text("**hello** channel"));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &(slack.config() + &access(&["slack:U1"], &["slack:T1"]));
    let daemon = TestDaemon::start(home.path(), &config).await;

    let (own, _) = slack.push_message(BOT_USER, "C1", None, "my own words");
    slack.push_message("U1", "C1", None, "hi there");
    let posted = slack.wait_for_posted(1).await;
    assert_eq!(posted[0]["channel"], "C1");
    assert_eq!(posted[0]["text"], "*hello* channel");
    assert!(posted[0].get("thread_ts").is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(llm.request_count(), 1);
    assert_eq!(FakeLlm::last_user_text(&llm.requests()[0]), "hi there");
    assert!(
        slack.acks().contains(&own),
        "ignored events are acknowledged too"
    );
    wait_for_replies(&daemon, "main", "slack:T1:C1", 1).await;
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_dropped_slack_socket_reconnects_and_keeps_delivering() {
    let llm = FakeLlm::start().await;
    let slack = FakeSlack::start().await;
    llm.push(Scripted::text("first"));
    llm.push(Scripted::text("second"));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &(slack.config() + &access(&["slack:U1"], &["slack:T1"]));
    let daemon = TestDaemon::start(home.path(), &config).await;

    slack.push_message("U1", "C1", None, "before the drop");
    slack.wait_for_posted(1).await;
    slack.drop_connection();
    slack
        .wait_for("a second socket", |fake| {
            fake.connections() >= 2 && fake.socket_ready()
        })
        .await;
    slack.push_message("U1", "C1", None, "after the drop");
    let posted = slack.wait_for_posted(2).await;
    assert_eq!(posted[1]["text"], "second");
    let status = daemon.get("/api/status").await;
    let adapter = status["messaging"]
        .as_array()
        .and_then(|adapters| {
            adapters
                .iter()
                .find(|adapter| adapter["name"] == "slack")
                .cloned()
        })
        .expect("slack status");
    assert_eq!(adapter["state"], "connected");
    assert!(adapter["reconnects"].as_u64() >= Some(1), "{adapter}");
    assert!(adapter["last_error"].is_string(), "{adapter}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_slack_rate_limit_retry_after_is_honoured() {
    let llm = FakeLlm::start().await;
    let slack = FakeSlack::start().await;
    llm.push(Scripted::text("patiently"));
    slack.fail_next(
        "chat.postMessage",
        429,
        json!({"ok": false, "error": "ratelimited"}),
        Some(1),
    );
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &(slack.config() + &access(&["slack:U1"], &["slack:T1"]));
    let daemon = TestDaemon::start(home.path(), &config).await;

    slack.push_message("U1", "C1", None, "hello");
    slack.wait_for_posted(2).await;
    let attempts: Vec<_> = slack
        .calls()
        .into_iter()
        .filter(|call| call.method == "chat.postMessage")
        .collect();
    let waited = attempts[1].at.duration_since(attempts[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );
    wait_for_replies(&daemon, "main", "slack:T1:C1", 1).await;
    daemon.shutdown().await;
}
