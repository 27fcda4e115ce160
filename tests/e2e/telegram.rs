//! Telegram end to end: the real daemon's teloxide adapter against the fake Bot API.

use std::time::Duration;

use serde_json::json;

use crate::fake_llm::{FakeLlm, Scripted};
use crate::fake_telegram::{BOT_ID, FakeTelegram};
use crate::harness::{TestDaemon, access, config_for, wait_for_replies};

#[tokio::test]
async fn a_telegram_message_is_answered_in_its_chat_after_a_typing_indicator() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push(Scripted::tool_call(
        "reply",
        json!({"content": "Hello **Alice**"}),
    ));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;

    let message_id = telegram.push_message(42, 42, "hello bot");
    let sent = telegram.wait_for_sent(1).await;
    assert_eq!(sent[0]["chat_id"], 42);
    assert_eq!(sent[0]["text"], "Hello <b>Alice</b>");
    assert_eq!(sent[0]["parse_mode"], "HTML");
    assert_eq!(sent[0]["reply_parameters"]["message_id"], message_id);
    let names = telegram.method_names();
    let typing = names.iter().position(|name| name == "SendChatAction");
    let reply = names.iter().position(|name| name == "SendMessage");
    assert!(
        typing.is_some() && typing < reply,
        "typing before the reply: {names:?}"
    );
    let action = telegram
        .calls()
        .into_iter()
        .find(|call| call.method == "SendChatAction")
        .expect("typing call");
    assert_eq!(action.body["action"], "typing");
    assert_eq!(FakeLlm::last_user_text(&llm.requests()[0]), "hello bot");
    assert_eq!(
        wait_for_replies(&daemon, "main", "telegram:42", 1).await,
        vec!["Hello **Alice**"]
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_long_telegram_reply_is_split_at_4096_and_a_rejected_html_falls_back_to_plain_text() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    let paragraph = "word ".repeat(500);
    let long = [paragraph.trim(); 3].join("\n\n");
    llm.push(Scripted::text(long.clone()));
    llm.push(Scripted::text("<b>not really html</b>"));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;

    telegram.push_message(42, 42, "tell me a lot");
    let sent = telegram.wait_for_sent(3).await;
    assert_eq!(
        sent.len(),
        3,
        "three paragraphs of 2499 characters: {sent:?}"
    );
    for message in &sent {
        let text = message["text"].as_str().expect("text");
        assert!(text.encode_utf16().count() <= 4096, "{} units", text.len());
        assert!(
            !text.contains("wor\n") && !text.starts_with("ord"),
            "split inside a word"
        );
    }
    let words: usize = sent
        .iter()
        .map(|message| {
            message["text"]
                .as_str()
                .unwrap_or("")
                .split_whitespace()
                .count()
        })
        .sum();
    assert_eq!(words, 1500);

    telegram.fail_next(
        "SendMessage",
        400,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: can't parse entities: unsupported start tag"}),
    );
    let before = telegram.sent().len();
    telegram.push_message(42, 42, "now some html");
    let sent = telegram.wait_for_sent(before + 2).await;
    let fallback = &sent[before + 1];
    assert_eq!(fallback["text"], "<b>not really html</b>");
    assert!(fallback.get("parse_mode").is_none(), "{fallback}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_telegram_429_retry_after_is_honoured() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push(Scripted::text("after the wait"));
    telegram.fail_next(
        "SendMessage",
        429,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}}),
    );
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;

    telegram.push_message(42, 42, "hi");
    telegram.wait_for_sent(2).await;
    let attempts: Vec<_> = telegram
        .calls()
        .into_iter()
        .filter(|call| call.method == "SendMessage")
        .collect();
    assert_eq!(attempts[1].body["text"], "after the wait");
    let waited = attempts[1].at.duration_since(attempts[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );
    wait_for_replies(&daemon, "main", "telegram:42", 1).await;
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_binding_routes_one_telegram_chat_to_a_second_agent() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push_when("for the group", Scripted::text("second agent here"));
    llm.push_when("for main", Scripted::text("main agent here"));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm)
        + "\n[[agents]]\nid = \"second\"\ndisplay_name = \"Second\"\n"
        + &telegram.config(&[])
        + &access(&["telegram:42", "telegram:7"], &[])
        + "\n[[bindings]]\nagent = \"second\"\nplatform = \"telegram\"\nchat_id = \"-1001\"\n";
    let daemon = TestDaemon::start(home.path(), &config).await;

    telegram.push_message(-1001, 7, "a message for the group");
    telegram.push_message(42, 42, "a message for main");
    telegram.wait_for_sent(2).await;
    assert_eq!(
        wait_for_replies(&daemon, "second", "telegram:-1001", 1).await,
        vec!["second agent here"]
    );
    assert_eq!(
        wait_for_replies(&daemon, "main", "telegram:42", 1).await,
        vec!["main agent here"]
    );
    assert!(daemon.transcript("main", "telegram:-1001").await.is_empty());
    daemon.shutdown().await;
}

#[tokio::test]
async fn the_bot_ignores_its_own_telegram_messages_and_dms_outside_the_allow_list() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push(Scripted::text("only once"));
    let home = tempfile::tempdir().expect("tempdir");
    // The old allow-list still lets user 42 in, as a member; a username no longer counts.
    let config = config_for(&llm) + &telegram.config(&["42", "user7"]);
    let daemon = TestDaemon::start(home.path(), &config).await;

    telegram.push_message(-1001, BOT_ID, "my own message");
    telegram.push_message(7, 7, "a stranger's DM");
    telegram.push_message(42, 42, "from an allowed user");
    let sent = telegram.wait_for_sent(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(llm.request_count(), 1);
    assert_eq!(
        FakeLlm::last_user_text(&llm.requests()[0]),
        "from an allowed user"
    );
    // The stranger got a pairing code and nothing else.
    let to_stranger: Vec<_> = sent
        .iter()
        .filter(|message| message["chat_id"] == 7)
        .collect();
    assert_eq!(to_stranger.len(), 1, "{sent:?}");
    assert!(
        to_stranger[0]["text"]
            .as_str()
            .is_some_and(|text| text.contains("spacebot access approve")),
        "{sent:?}"
    );
    assert_eq!(telegram.sent().len(), 2);
    daemon.shutdown().await;
}

#[tokio::test]
async fn telegram_commands_are_answered_without_the_llm() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push(Scripted::text("remembered"));
    llm.push(Scripted::text("fresh start"));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;

    telegram.push_message(42, 42, "my secret word is lighthouse");
    telegram.wait_for_sent(1).await;
    telegram.push_message(42, 42, "/status");
    let sent = telegram.wait_for_sent(2).await;
    let status = sent[1]["text"].as_str().expect("text");
    assert!(
        status.contains("main") && status.contains("fake/fake-model"),
        "{status}"
    );
    telegram.push_message(42, 42, "/new@spacebot_test_bot");
    telegram.wait_for_sent(3).await;
    telegram.push_message(42, 42, "what was my word?");
    telegram.wait_for_sent(4).await;
    assert_eq!(llm.request_count(), 2, "commands never reach the LLM");
    let context = llm.requests()[1]["messages"].to_string();
    assert!(
        !context.contains("lighthouse"),
        "/new forgot the earlier messages: {context}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_telegram_message_received_before_a_restart_is_answered_exactly_once() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    // The first turn hangs past the shutdown deadline: received and stored, never answered.
    llm.push(Scripted::Hang);
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    telegram.push_message(42, 42, "please answer me");
    llm.wait_for_requests(1, Duration::from_secs(20)).await;
    // The update was stored, then confirmed (the next poll moved the offset past it).
    telegram
        .wait_for("the offset confirmed", |_| {
            telegram.confirmed_offset() > 100
        })
        .await;
    daemon.shutdown().await;
    assert!(telegram.sent().is_empty());

    // Telegram delivers the update again (as if the confirmation had been lost).
    telegram.redeliver_everything();
    llm.push(Scripted::text("sorry for the wait"));
    let daemon = TestDaemon::start(home.path(), &config).await;
    telegram.wait_for_sent(1).await;
    telegram
        .wait_for("the redelivered update confirmed", |_| {
            telegram.confirmed_offset() > 100
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(telegram.sent().len(), 1, "answered once");
    assert_eq!(telegram.sent()[0]["text"], "sorry for the wait");
    assert_eq!(llm.request_count(), 2);
    let transcript = daemon.transcript("main", "telegram:42").await;
    assert_eq!(transcript.len(), 2, "{transcript:#?}");
    assert_eq!(transcript[0]["status"], "answered");
    daemon.shutdown().await;
}

#[tokio::test]
async fn status_shows_the_telegram_adapter_connected_and_the_others_disabled() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = daemon.get("/api/status").await;
        let adapters = status["messaging"].as_array().cloned().unwrap_or_default();
        let state = |name: &str| {
            adapters
                .iter()
                .find(|adapter| adapter["name"] == name)
                .map(|adapter| adapter["state"].clone())
        };
        if state("telegram") == Some(json!("connected")) {
            assert_eq!(state("discord"), Some(json!("disabled")));
            assert_eq!(state("slack"), Some(json!("disabled")));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.shutdown().await;
}
