//! Media on Slack and the platforms' audio and size limits, through the real slack-morphism
//! and serenity clients against their fakes: `send_file` through Slack's external upload
//! (the bytes to the upload URL, the share into the right channel and thread), `react` with
//! Slack's emoji names, Discord and Slack audio transcribed, and files over the limit refused
//! with a clear reply while the message is still answered; PDFs shared on either are read.

use serde_json::json;

use crate::fake_discord::FakeDiscord;
use crate::fake_llm::{FakeLlm, Scripted};
use crate::fake_slack::FakeSlack;
use crate::harness::{TestDaemon, access, config_for, reply, wait_for_replies};
use crate::media::png;

const THREAD: &str = "1700000000.000500";

fn slack_config(llm: &FakeLlm, slack: &FakeSlack) -> String {
    config_for(llm) + &slack.config() + &access(&["slack:U1"], &["slack:T1"])
}

/// `config_for` with the fake's transcription model in the routing.
fn with_transcription(config: String) -> String {
    config.replace(
        "channel = \"fake/fake-model\"",
        "channel = \"fake/fake-model\"\ntranscription = \"fake/whisper-1\"",
    )
}

#[tokio::test]
async fn send_file_uploads_a_workspace_document_and_photo_into_the_slack_thread() {
    let llm = FakeLlm::start().await;
    let slack = FakeSlack::start().await;
    llm.push(Scripted::ToolCalls(vec![
        (
            "send_file".to_string(),
            json!({"path": "out/report.csv", "caption": "the **numbers**"}),
        ),
        (
            "send_file".to_string(),
            json!({"path": "/workspace/out/chart.png"}),
        ),
    ]));
    llm.push(reply("Sent both."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &slack_config(&llm, &slack)).await;
    let out = home.path().join("agents/main/workspace/out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let report = b"month,total\nmay,42\n".to_vec();
    std::fs::write(out.join("report.csv"), &report).expect("write");
    let chart = png(8, 8);
    std::fs::write(out.join("chart.png"), &chart).expect("write");

    slack.push_message("U1", "C1", Some(THREAD), "send me the report and the chart");
    assert_eq!(
        wait_for_replies(&daemon, "main", &format!("slack:T1:C1:{THREAD}"), 1).await,
        vec!["Sent both."]
    );
    let uploads = slack.uploads();
    assert_eq!(uploads.len(), 2, "{uploads:?}");
    let document = &uploads[0];
    assert_eq!(document.filename, "report.csv");
    assert_eq!(document.length, report.len());
    assert_eq!(document.bytes.as_deref(), Some(report.as_slice()));
    assert_eq!(document.content_type.as_deref(), Some("text/csv"));
    assert_eq!(document.initial_comment.as_deref(), Some("the *numbers*"));
    let photo = &uploads[1];
    assert_eq!(photo.filename, "chart.png");
    assert_eq!(photo.bytes.as_deref(), Some(chart.as_slice()));
    assert_eq!(photo.content_type.as_deref(), Some("image/png"));
    for upload in &uploads {
        assert!(upload.completed, "{upload:?}");
        assert_eq!(upload.channel_id.as_deref(), Some("C1"));
        assert_eq!(upload.thread_ts.as_deref(), Some(THREAD));
    }
    let results = FakeLlm::tool_results(&llm.requests()[1]);
    assert!(
        results.len() == 2 && results.iter().all(|result| result.starts_with("sent")),
        "{results:?}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn send_file_in_a_slack_channel_shares_the_file_outside_any_thread() {
    let llm = FakeLlm::start().await;
    let slack = FakeSlack::start().await;
    llm.push(Scripted::tool_call("send_file", json!({"path": "plan.md"})));
    llm.push(reply("Attached."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &slack_config(&llm, &slack)).await;
    std::fs::write(
        home.path().join("agents/main/workspace/plan.md"),
        "# Plan\n1. ship\n",
    )
    .expect("write");

    slack.push_message("U1", "C1", None, "send the plan");
    wait_for_replies(&daemon, "main", "slack:T1:C1", 1).await;
    let uploads = slack.uploads();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    assert!(uploads[0].completed);
    assert_eq!(uploads[0].bytes.as_deref(), Some(&b"# Plan\n1. ship\n"[..]));
    assert_eq!(uploads[0].channel_id.as_deref(), Some("C1"));
    assert_eq!(uploads[0].thread_ts, None);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_failed_slack_upload_is_retried_and_a_refusal_reaches_the_model() {
    let llm = FakeLlm::start().await;
    let slack = FakeSlack::start().await;
    llm.push(Scripted::tool_call("send_file", json!({"path": "plan.md"})));
    llm.push(reply("Attached."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &slack_config(&llm, &slack)).await;
    std::fs::write(home.path().join("agents/main/workspace/plan.md"), "ship it").expect("write");

    // Slack has a bad moment while sharing the file: the whole upload is tried again.
    slack.fail_next(
        "files.completeUploadExternal",
        503,
        json!({"ok": false, "error": "service_unavailable"}),
        None,
    );
    slack.push_message("U1", "C1", None, "send the plan");
    wait_for_replies(&daemon, "main", "slack:T1:C1", 1).await;
    let uploads = slack.uploads();
    let shared: Vec<_> = uploads.iter().filter(|upload| upload.completed).collect();
    assert_eq!(shared.len(), 1, "{uploads:?}");
    assert_eq!(shared[0].bytes.as_deref(), Some(&b"ship it"[..]));

    // A refusal is not retried, and the model hears why.
    slack.fail_next(
        "files.getUploadURLExternal",
        200,
        json!({"ok": false, "error": "not_in_channel"}),
        None,
    );
    llm.push(Scripted::tool_call("send_file", json!({"path": "plan.md"})));
    llm.push(reply("I cannot post files here."));
    let before = llm.requests().len();
    slack.push_message("U1", "C1", None, "again please");
    wait_for_replies(&daemon, "main", "slack:T1:C1", 2).await;
    let results: Vec<String> = llm.requests()[before..]
        .iter()
        .flat_map(FakeLlm::tool_results)
        .collect();
    assert!(
        results
            .iter()
            .any(|result| result.contains("cannot send `plan.md`")
                && result.contains("not_in_channel")),
        "{results:?}"
    );
    let asked = slack
        .calls()
        .iter()
        .filter(|call| call.method == "files.getUploadURLExternal")
        .count();
    assert_eq!(asked, uploads.len() + 1, "the refusal was asked once");
    daemon.shutdown().await;
}

#[tokio::test]
async fn react_puts_the_slack_name_of_the_emoji_on_the_triggering_slack_message() {
    let llm = FakeLlm::start().await;
    let slack = FakeSlack::start().await;
    llm.push_when(
        "thanks slack",
        Scripted::tool_call("react", json!({"emoji": "👍"})),
    );
    llm.push_when(
        "great work",
        Scripted::tool_call("react", json!({"emoji": ":tada:"})),
    );
    llm.push_when(
        "a squid",
        Scripted::tool_call("react", json!({"emoji": "🦑"})),
    );
    llm.set_fallback(|_| Scripted::tool_call("skip", json!({"reason": "reacted"})));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &slack_config(&llm, &slack)).await;

    let (_, thanked) = slack.push_message("U1", "C1", None, "thanks slack");
    slack
        .wait_for("reactions.add", |fake| !fake.reactions().is_empty())
        .await;
    let (_, praised) = slack.push_message("U1", "C1", Some(THREAD), "great work");
    slack
        .wait_for("a second reactions.add", |fake| fake.reactions().len() >= 2)
        .await;
    let reactions = slack.reactions();
    assert_eq!(reactions[0]["channel"], "C1");
    assert_eq!(reactions[0]["name"], "thumbsup");
    assert_eq!(reactions[0]["timestamp"], thanked.as_str());
    assert_eq!(reactions[1]["channel"], "C1");
    assert_eq!(reactions[1]["name"], "tada");
    assert_eq!(reactions[1]["timestamp"], praised.as_str());

    // An emoji Slack cannot be given by name is refused to the model, saying which can.
    let before = llm.requests().len();
    slack.push_message("U1", "C1", None, "a squid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let refusal = loop {
        let found = llm.requests()[before..]
            .iter()
            .flat_map(FakeLlm::tool_results)
            .find(|result| result.contains("🦑"));
        if let Some(found) = found {
            break found;
        }
        assert!(std::time::Instant::now() < deadline, "no react result");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    assert!(
        refusal.contains("cannot be sent") && refusal.contains("👍"),
        "{refusal}"
    );
    assert_eq!(slack.reactions().len(), 2);
    daemon.shutdown().await;
}

/// One transcription was asked for with the audio that carried `audio`, and the model read
/// its transcript, marked as transcribed.
fn assert_transcribed(llm: &FakeLlm, audio: &str, transcript: &str) {
    let transcriptions = llm.transcriptions();
    assert_eq!(transcriptions.len(), 1);
    assert!(
        String::from_utf8_lossy(&transcriptions[0].1).contains(audio),
        "the audio is sent"
    );
    let text = FakeLlm::last_user_text(&llm.requests()[0]);
    assert!(
        text.contains(transcript) && text.contains("transcribed"),
        "{text}"
    );
}

#[tokio::test]
async fn a_discord_voice_message_is_transcribed_and_its_text_reaches_the_model() {
    let llm = FakeLlm::start().await;
    let discord = FakeDiscord::start().await;
    llm.set_transcript("remind me to call the dentist");
    llm.push(reply("I will remind you."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = with_transcription(
        config_for(&llm) + &discord.config(&[]) + &access(&["discord:4000"], &["discord:500"]),
    );
    let daemon = TestDaemon::start(home.path(), &config).await;
    let audio = b"OggS discord voice frames".to_vec();

    discord.push_guild_message_with_files(
        "500",
        "3000",
        "4000",
        "",
        &[("voice-message.ogg", "audio/ogg", &audio)],
    );
    assert_eq!(
        wait_for_replies(&daemon, "main", "discord:500:3000", 1).await,
        vec!["I will remind you."]
    );
    assert_transcribed(
        &llm,
        "OggS discord voice frames",
        "remind me to call the dentist",
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_slack_audio_file_is_transcribed_and_its_text_reaches_the_model() {
    let llm = FakeLlm::start().await;
    let slack = FakeSlack::start().await;
    llm.set_transcript("the meeting moved to Thursday");
    llm.push(reply("Thursday it is."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon =
        TestDaemon::start(home.path(), &with_transcription(slack_config(&llm, &slack))).await;
    let audio = b"fake m4a audio clip".to_vec();

    slack.push_files("U1", "C1", None, &[("clip.m4a", "audio/mp4", &audio)]);
    assert_eq!(
        wait_for_replies(&daemon, "main", "slack:T1:C1", 1).await,
        vec!["Thursday it is."]
    );
    assert_transcribed(&llm, "fake m4a audio clip", "the meeting moved to Thursday");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_slack_voice_clip_that_slack_calls_video_is_transcribed() {
    let llm = FakeLlm::start().await;
    let slack = FakeSlack::start().await;
    llm.set_transcript("call me back after lunch");
    llm.push(reply("Will do."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon =
        TestDaemon::start(home.path(), &with_transcription(slack_config(&llm, &slack))).await;

    slack.push_voice_clip("U1", "C1", b"fake mp4 voice clip");
    wait_for_replies(&daemon, "main", "slack:T1:C1", 1).await;
    let transcriptions = llm.transcriptions();
    assert_eq!(transcriptions.len(), 1, "a slack_audio clip is audio");
    let body = String::from_utf8_lossy(&transcriptions[0].1);
    assert!(body.contains("fake mp4 voice clip"), "{body}");
    assert!(body.contains("audio_message.mp4"), "named as sent: {body}");
    let text = FakeLlm::last_user_text(&llm.requests()[0]);
    assert!(text.contains("call me back after lunch"), "{text}");
    daemon.shutdown().await;
}

/// 1.5 MiB, over a 1 MB limit.
fn oversized() -> Vec<u8> {
    vec![7; 3 << 19]
}

#[tokio::test]
async fn an_oversized_discord_file_gets_a_clear_reply_and_the_message_is_still_answered() {
    let llm = FakeLlm::start().await;
    let discord = FakeDiscord::start().await;
    llm.push(reply("I got your words, not the file."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm)
        + &discord.config(&[])
        + &access(&["discord:4000"], &["discord:500"])
        + "\n[media]\nmax_file_mb = 1\n";
    let daemon = TestDaemon::start(home.path(), &config).await;

    discord.push_guild_message_with_files(
        "500",
        "3000",
        "4000",
        "the recording",
        &[("talk.mp4", "video/mp4", &oversized())],
    );
    let posted = discord.wait_for_posted(2).await;
    let texts: Vec<String> = posted
        .iter()
        .map(|(_, body)| body["content"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        texts.iter().any(|text| text.contains("talk.mp4")
            && text.contains("1.5 MB")
            && text.contains("1.0 MB")),
        "{texts:?}"
    );
    assert!(texts.contains(&"I got your words, not the file.".to_string()));
    assert!(discord.downloads().is_empty(), "not fetched");
    let text = FakeLlm::last_user_text(&llm.requests()[0]);
    assert!(
        text.contains("the recording") && text.contains("not received"),
        "{text}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn an_oversized_slack_file_gets_a_clear_reply_and_the_message_is_still_answered() {
    let llm = FakeLlm::start().await;
    let slack = FakeSlack::start().await;
    llm.push(reply("I got your words, not the file."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = slack_config(&llm, &slack) + "\n[media]\nmax_file_mb = 1\n";
    let daemon = TestDaemon::start(home.path(), &config).await;

    let (envelope, _) = slack.push_files(
        "U1",
        "C1",
        Some("the recording"),
        &[("talk.mp4", "video/mp4", &oversized())],
    );
    let posted = slack.wait_for_posted(2).await;
    let texts: Vec<String> = posted
        .iter()
        .map(|body| body["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        texts.iter().any(|text| text.contains("talk.mp4")
            && text.contains("1.5 MB")
            && text.contains("1.0 MB")),
        "{texts:?}"
    );
    assert!(texts.contains(&"I got your words, not the file.".to_string()));
    // Refused by the size Slack states, before any byte is fetched.
    assert!(slack.downloads().is_empty(), "{:?}", slack.downloads());
    assert!(slack.acks().contains(&envelope));
    let text = FakeLlm::last_user_text(&llm.requests()[0]);
    assert!(
        text.contains("the recording") && text.contains("not received"),
        "{text}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_pdf_shared_on_discord_and_on_slack_is_read_into_the_turn() {
    let llm = FakeLlm::start().await;
    let discord = FakeDiscord::start().await;
    let slack = FakeSlack::start().await;
    llm.push(reply("Due Friday."));
    llm.push(reply("Paid in March."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm)
        + &discord.config(&[])
        + &slack.config()
        + &access(&["discord:4000", "slack:U1"], &["discord:500", "slack:T1"]);
    let daemon = TestDaemon::start(home.path(), &config).await;

    let invoice = crate::media::pdf_with_text("Invoice 7 is due on Friday");
    discord.push_guild_message_with_files(
        "500",
        "3000",
        "4000",
        "",
        &[("invoice.pdf", "application/pdf", &invoice)],
    );
    wait_for_replies(&daemon, "main", "discord:500:3000", 1).await;
    let receipt = crate::media::pdf_with_text("Receipt 12 was paid in March");
    slack.push_files(
        "U1",
        "C1",
        None,
        &[("receipt.pdf", "application/pdf", &receipt)],
    );
    wait_for_replies(&daemon, "main", "slack:T1:C1", 1).await;

    let requests = llm.requests();
    let discord_text = FakeLlm::last_user_text(&requests[0]);
    assert!(
        discord_text.contains("Invoice 7 is due on Friday"),
        "{discord_text}"
    );
    let slack_text = FakeLlm::last_user_text(&requests[1]);
    assert!(
        slack_text.contains("Receipt 12 was paid in March"),
        "{slack_text}"
    );
    daemon.shutdown().await;
}
