//! Discord end to end: the real daemon's serenity adapter against the fake REST API and
//! gateway.

use std::time::Duration;

use serde_json::json;

use crate::fake_discord::{BOT_ID, FakeDiscord};
use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{TestDaemon, access, config_for, wait_for_replies};

#[tokio::test]
async fn a_discord_message_gets_a_typing_indicator_then_a_split_reply_to_it() {
    let llm = FakeLlm::start().await;
    let discord = FakeDiscord::start().await;
    let line = "a line of the answer that goes on for a while";
    let long = vec![line; 60].join("\n");
    llm.push(Scripted::tool_call("reply", json!({"content": long})));
    let home = tempfile::tempdir().expect("tempdir");
    let config =
        config_for(&llm) + &discord.config(&[]) + &access(&["discord:4000"], &["discord:500"]);
    let daemon = TestDaemon::start(home.path(), &config).await;

    let message_id = discord.push_guild_message(
        "500",
        "3000",
        "4000",
        &format!("<@{BOT_ID}> tell me everything"),
    );
    let posted = discord.wait_for_posted(2).await;
    assert!(
        posted.iter().all(|(channel, _)| channel == "3000"),
        "{posted:?}"
    );
    for (_, body) in &posted {
        let content = body["content"].as_str().expect("content");
        assert!(content.chars().count() <= 2000);
        assert!(
            content.split('\n').all(|part| part == line),
            "split on line boundaries"
        );
    }
    assert_eq!(
        posted[0].1["message_reference"]["message_id"],
        message_id.as_str()
    );
    assert!(posted[1].1.get("message_reference").is_none());
    let routes: Vec<String> = discord.calls().into_iter().map(|call| call.route).collect();
    let typing = routes
        .iter()
        .position(|route| route == "POST /channels/3000/typing");
    let reply = routes
        .iter()
        .position(|route| route == "POST /channels/3000/messages");
    assert!(
        typing.is_some() && typing < reply,
        "typing before the reply: {routes:?}"
    );
    assert_eq!(
        FakeLlm::last_user_text(&llm.requests()[0]),
        "@spacebot tell me everything"
    );
    let total_lines: usize = posted
        .iter()
        .map(|(_, body)| body["content"].as_str().unwrap_or("").lines().count())
        .sum();
    assert_eq!(total_lines, 60);
    wait_for_replies(&daemon, "main", "discord:500:3000", 1).await;
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_discord_dm_is_answered_only_for_users_on_the_allow_list() {
    let llm = FakeLlm::start().await;
    let discord = FakeDiscord::start().await;
    llm.push(Scripted::text("hello, friend"));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &discord.config(&["4001"]);
    let daemon = TestDaemon::start(home.path(), &config).await;

    discord.push_direct_message("7000", "4000", "let me in");
    discord.push_direct_message("7001", "4001", "hi, it's me");
    let posted = discord.wait_for_posted(2).await;
    let answer = posted
        .iter()
        .find(|(channel, _)| channel == "7001")
        .expect("answer");
    assert_eq!(answer.1["content"], "hello, friend");
    // The stranger got a pairing code and nothing else.
    let code = posted
        .iter()
        .find(|(channel, _)| channel == "7000")
        .expect("code");
    assert!(
        code.1["content"]
            .as_str()
            .is_some_and(|text| text.contains("spacebot access approve")),
        "{posted:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(llm.request_count(), 1);
    assert_eq!(FakeLlm::last_user_text(&llm.requests()[0]), "hi, it's me");
    assert_eq!(discord.posted().len(), 2);
    wait_for_replies(&daemon, "main", "discord:dm:4001", 1).await;
    daemon.shutdown().await;
}

#[tokio::test]
async fn the_bot_ignores_its_own_discord_messages() {
    let llm = FakeLlm::start().await;
    let discord = FakeDiscord::start().await;
    llm.push(Scripted::text("answering the human"));
    let home = tempfile::tempdir().expect("tempdir");
    let config =
        config_for(&llm) + &discord.config(&[]) + &access(&["discord:4000"], &["discord:500"]);
    let daemon = TestDaemon::start(home.path(), &config).await;

    discord.push_guild_message("500", "3000", BOT_ID, "something I said");
    discord.push_guild_message("500", "3000", "4000", "a human speaks");
    discord.wait_for_posted(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(llm.request_count(), 1);
    assert_eq!(
        FakeLlm::last_user_text(&llm.requests()[0]),
        "a human speaks"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_dropped_discord_gateway_reconnects_and_keeps_delivering() {
    let llm = FakeLlm::start().await;
    let discord = FakeDiscord::start().await;
    llm.push(Scripted::text("first answer"));
    llm.push(Scripted::text("second answer"));
    let home = tempfile::tempdir().expect("tempdir");
    let config =
        config_for(&llm) + &discord.config(&[]) + &access(&["discord:4000"], &["discord:500"]);
    let daemon = TestDaemon::start(home.path(), &config).await;

    discord.push_guild_message("500", "3000", "4000", "before the drop");
    discord.wait_for_posted(1).await;
    discord.drop_connection();
    discord
        .wait_for("a second gateway session", |fake| {
            fake.connections() >= 2 && fake.session_ready()
        })
        .await;
    discord.push_guild_message("500", "3000", "4000", "after the drop");
    let posted = discord.wait_for_posted(2).await;
    assert_eq!(posted[1].1["content"], "second answer");
    assert_eq!(
        wait_for_replies(&daemon, "main", "discord:500:3000", 2).await,
        vec!["first answer", "second answer"]
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_transient_discord_error_is_retried_and_a_forbidden_one_is_not() {
    let llm = FakeLlm::start().await;
    let discord = FakeDiscord::start().await;
    llm.push(Scripted::text("eventually delivered"));
    llm.push(Scripted::text("never delivered"));
    discord.fail_next(
        "/channels/3000/messages",
        502,
        json!({"message": "Bad Gateway", "code": 0}),
    );
    let home = tempfile::tempdir().expect("tempdir");
    let config =
        config_for(&llm) + &discord.config(&[]) + &access(&["discord:4000"], &["discord:500"]);
    let daemon = TestDaemon::start(home.path(), &config).await;

    discord.push_guild_message("500", "3000", "4000", "first");
    discord
        .wait_for("the retried post", |fake| {
            fake.posted()
                .iter()
                .filter(|(channel, _)| channel == "3000")
                .count()
                >= 2
        })
        .await;
    wait_for_replies(&daemon, "main", "discord:500:3000", 1).await;

    discord.fail_next(
        "/channels/3001/messages",
        403,
        json!({"message": "Missing Access", "code": 50001}),
    );
    discord.push_guild_message("500", "3001", "4000", "second");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let transcript = daemon.transcript("main", "discord:500:3001").await;
        if transcript
            .first()
            .is_some_and(|message| message["status"] == "failed")
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{transcript:#?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let attempts = discord
        .posted()
        .iter()
        .filter(|(channel, _)| channel == "3001")
        .count();
    assert_eq!(attempts, 1, "a 403 is not retried");
    daemon.shutdown().await;
}
