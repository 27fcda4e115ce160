//! Answers streamed while the model writes them: into an edited message on each platform
//! fake (edits seen, the final text exactly the reply, one message), as chunks on `/v1`
//! read by rig-core's OpenAI client, and as `reply_streaming` events.

use std::time::Duration;

use futures::StreamExt;
use rig::client::CompletionClient;
use rig::completion::{CompletionModel, CompletionRequest, GetTokenUsage};
use rig::streaming::StreamedAssistantContent;
use serde_json::{Value, json};

use crate::fake_discord::FakeDiscord;
use crate::fake_llm::{FakeLlm, Scripted};
use crate::fake_slack::FakeSlack;
use crate::fake_telegram::FakeTelegram;
use crate::harness::{TestDaemon, access, config_for, wait_for_replies};

/// A reply long enough to be written over a few seconds by a paced fake.
const ANSWER: &str = "Streaming works: this answer arrives piece by piece while it is written.";
const PACE: Duration = Duration::from_millis(120);

fn slow_reply() -> Scripted {
    Scripted::tool_call("reply", json!({"content": ANSWER})).paced(PACE)
}

#[tokio::test]
async fn a_telegram_answer_is_sent_once_then_edited_into_the_reply() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push(slow_reply());
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    telegram.push_message(42, 42, "tell me");
    wait_for_replies(&daemon, "main", "telegram:42", 1).await;
    let sent = telegram.sent();
    assert_eq!(sent.len(), 1, "one message: {sent:?}");
    let edits = telegram.edits();
    assert!(!edits.is_empty(), "the draft was edited");
    let last = edits.last().map_or(&sent[0]["text"], |edit| &edit["text"]);
    assert_eq!(last, ANSWER);
    assert_ne!(sent[0]["text"], ANSWER, "the first draft was partial");
    assert!(
        edits
            .iter()
            .all(|edit| edit["message_id"].as_i64().is_some() && edit["chat_id"] == 42)
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_discord_answer_is_posted_once_then_edited_into_the_reply() {
    let llm = FakeLlm::start().await;
    let discord = FakeDiscord::start().await;
    llm.push(slow_reply());
    let home = tempfile::tempdir().expect("tempdir");
    let config =
        config_for(&llm) + &discord.config(&[]) + &access(&["discord:4000"], &["discord:100"]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    discord
        .wait_for("a session", |fake| fake.session_ready())
        .await;
    discord.push_guild_message(
        "100",
        "3000",
        "4000",
        &format!("<@{}> tell me", crate::fake_discord::BOT_ID),
    );
    wait_for_replies(&daemon, "main", "discord:100:3000", 1).await;
    let posted = discord.posted();
    assert_eq!(posted.len(), 1, "one message: {posted:?}");
    let edits = discord.edits();
    assert!(!edits.is_empty(), "the draft was edited");
    assert_eq!(edits.last().expect("an edit")["content"], ANSWER);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_slack_answer_is_posted_once_then_updated_into_the_reply() {
    let llm = FakeLlm::start().await;
    let slack = FakeSlack::start().await;
    llm.push(slow_reply());
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &slack.config() + &access(&["slack:U1"], &["slack:T1"]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    slack.wait_for("a socket", |fake| fake.socket_ready()).await;
    slack.push_message("U1", "C1", None, "tell me");
    wait_for_replies(&daemon, "main", "slack:T1:C1", 1).await;
    let posted = slack.posted();
    assert_eq!(posted.len(), 1, "one message: {posted:?}");
    let updates = slack.updates();
    assert!(!updates.is_empty(), "the draft was updated");
    assert_eq!(updates.last().expect("an update")["text"], ANSWER);
    assert_eq!(updates[0]["ts"], "1700000099.000100", "the posted message");
    daemon.shutdown().await;
}

#[tokio::test]
async fn streaming_can_be_turned_off_per_platform() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push(slow_reply());
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm)
        + &telegram.config(&[])
        + "stream = false\n"
        + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    telegram.push_message(42, 42, "tell me");
    wait_for_replies(&daemon, "main", "telegram:42", 1).await;
    let sent = telegram.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["text"], ANSWER);
    assert!(telegram.edits().is_empty(), "no edits with streaming off");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_draft_of_an_answer_that_ends_skipped_is_removed() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push(
        Scripted::TextAndToolCalls(
            "Let me think about whether this needs an answer at all, one moment".into(),
            vec![("skip".into(), json!({"reason": "nothing to add"}))],
        )
        .paced(PACE),
    );
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    telegram.push_message(42, 42, "ok thanks");
    telegram
        .wait_for("the draft removed", |calls| {
            calls.iter().any(|call| call.method == "DeleteMessage")
        })
        .await;
    assert_eq!(telegram.sent().len(), 1, "only the draft was sent");
    daemon.shutdown().await;
}

/// rig-core's OpenAI client reads `/v1/chat/completions` with `stream: true`: several
/// content chunks that add up to exactly the reply, then the turn's usage.
#[tokio::test]
async fn the_openai_endpoint_streams_real_chunks_with_usage() {
    let llm = FakeLlm::start().await;
    llm.push(slow_reply());
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let client = rig::providers::openai::CompletionsClient::builder()
        .api_key("unused")
        .base_url(daemon.url("/v1"))
        .build()
        .expect("client");
    let model = client.completion_model("spacebot/main");
    let request = CompletionRequest {
        model: None,
        preamble: None,
        chat_history: rig::OneOrMany::one(rig::message::Message::user("stream please")),
        documents: Vec::new(),
        tools: Vec::new(),
        temperature: None,
        max_tokens: None,
        tool_choice: None,
        additional_params: Some(json!({"user": "streamed"})),
        output_schema: None,
    };
    let mut stream = model.stream(request).await.expect("stream");
    let mut pieces = Vec::new();
    let mut usage = None;
    while let Some(item) = stream.next().await {
        match item.expect("chunk") {
            StreamedAssistantContent::Text(text) => pieces.push(text.text),
            StreamedAssistantContent::Final(response) => usage = response.token_usage(),
            _ => {}
        }
    }
    assert!(pieces.len() > 1, "several chunks: {pieces:?}");
    assert_eq!(pieces.concat(), ANSWER);
    let usage = usage.expect("usage");
    assert_eq!(usage.input_tokens, 10, "the fake's prompt tokens");
    assert_eq!(usage.output_tokens, 5);
    let replies = daemon.messages("streamed").await;
    assert_eq!(crate::harness::replies(&replies), vec![ANSWER.to_string()]);
    daemon.shutdown().await;
}

#[tokio::test]
async fn the_openai_endpoint_returns_the_turns_usage() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::tool_call("reply", json!({"content": "counted"})));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let body: Value = daemon
        .http
        .post(daemon.url("/v1/chat/completions"))
        .json(&json!({"model": "spacebot/main", "user": "usage",
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "counted");
    assert_eq!(body["usage"]["prompt_tokens"], 10);
    assert_eq!(body["usage"]["completion_tokens"], 5);
    assert_eq!(body["usage"]["total_tokens"], 15);
    daemon.shutdown().await;
}

#[tokio::test]
async fn the_event_stream_carries_drafts_of_the_answer() {
    let llm = FakeLlm::start().await;
    llm.push(slow_reply());
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let response = daemon
        .http
        .get(daemon.url("/api/events?agent=main&conversation=portal:drafts"))
        .send()
        .await
        .expect("subscribe");
    let mut body = response.bytes_stream();
    daemon.post("drafts", "go").await;
    let mut seen = String::new();
    let finished = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(chunk)) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: turn_completed") {
                break;
            }
        }
    })
    .await;
    assert!(finished.is_ok(), "{seen}");
    let drafts: Vec<Value> = seen
        .split("event: reply_streaming\ndata: ")
        .skip(1)
        .filter_map(|rest| rest.lines().next())
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    assert!(drafts.len() > 1, "several drafts: {seen}");
    for draft in &drafts {
        let text = draft["text"].as_str().expect("text");
        assert!(ANSWER.starts_with(text), "{text}");
    }
    daemon.shutdown().await;
}

/// The dashboard's chat reads its answers from the streamed OpenAI-compatible endpoint.
#[tokio::test]
async fn the_dashboard_chat_reads_answers_as_they_stream() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let chat = daemon
        .http
        .get(daemon.url("/dashboard/views/chat.js"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    assert!(chat.contains("/v1/chat/completions") && chat.contains("stream: true"));
    let reader = daemon
        .http
        .get(daemon.url("/dashboard/api.js"))
        .send()
        .await
        .expect("module")
        .text()
        .await
        .expect("text");
    assert!(
        chat.contains("readEvents") && reader.contains("getReader()"),
        "reads the chunks as they come"
    );
    daemon.shutdown().await;
}
