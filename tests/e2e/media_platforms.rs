//! Files from the chat platforms, each fetched through the platform's own API from its fake:
//! Telegram `getFile` and the file endpoint, Discord attachment URLs, Slack `url_private`
//! with the bot token. A photo (with or without a caption) reaches the model as an image; a
//! file over the limit gets a clear reply and the message is still answered.

use serde_json::json;

use crate::fake_llm::FakeLlm;
use crate::fake_telegram::FakeTelegram;
use crate::harness::{TestDaemon, access, config_for, reply, wait_for_replies};
use crate::media::{data_url_bytes, image_parts, png};

#[tokio::test]
async fn a_telegram_photo_without_a_caption_reaches_the_model_as_an_image() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push(reply("A green square."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    let photo = png(30, 20);
    telegram.add_file("big-photo", "photos/file_7.jpg", &photo);

    telegram.push_message_with(
        42,
        42,
        json!({"photo": [
            {"file_id": "small-photo", "file_unique_id": "s", "file_size": 100, "width": 3, "height": 2},
            {"file_id": "big-photo", "file_unique_id": "b", "file_size": photo.len(), "width": 30, "height": 20},
        ]}),
    );
    assert_eq!(
        wait_for_replies(&daemon, "main", "telegram:42", 1).await,
        vec!["A green square."]
    );
    // The largest size, fetched through getFile and the file endpoint.
    let get_file = telegram
        .calls()
        .into_iter()
        .find(|call| call.method == "GetFile")
        .expect("getFile");
    assert_eq!(get_file.body["file_id"], "big-photo");
    assert_eq!(telegram.downloads(), vec!["photos/file_7.jpg"]);
    let images = image_parts(&llm.requests()[0]);
    assert_eq!(images.len(), 1);
    assert_eq!(data_url_bytes(&images[0]).1, photo);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_telegram_caption_is_the_text_of_a_photo_message() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push(reply("It is a square."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    let photo = png(4, 4);
    telegram.add_file("p", "photos/p.jpg", &photo);

    telegram.push_message_with(
        42,
        42,
        json!({"caption": "what shape?", "photo": [
            {"file_id": "p", "file_unique_id": "p", "file_size": photo.len(), "width": 4, "height": 4},
        ]}),
    );
    wait_for_replies(&daemon, "main", "telegram:42", 1).await;
    let request = &llm.requests()[0];
    assert!(FakeLlm::last_user_text(request).contains("what shape?"));
    assert_eq!(image_parts(request).len(), 1);
    daemon.shutdown().await;
}

#[tokio::test]
async fn an_oversized_telegram_file_gets_a_clear_reply_and_the_message_is_still_answered() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push(reply("I got your words, not the file."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm)
        + &telegram.config(&[])
        + &access(&["telegram:42"], &[])
        + "\n[media]\nmax_file_mb = 1\n";
    let daemon = TestDaemon::start(home.path(), &config).await;

    telegram.push_message_with(
        42,
        42,
        json!({"caption": "the report", "document": {
            "file_id": "huge", "file_unique_id": "h", "file_size": 5 << 20,
            "file_name": "report.pdf", "mime_type": "application/pdf"}}),
    );
    let sent = telegram.wait_for_sent(2).await;
    let texts: Vec<String> = sent
        .iter()
        .map(|body| body["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        texts.iter().any(|text| text.contains("report.pdf")
            && text.contains("5.0 MB")
            && text.contains("1.0 MB")),
        "{texts:?}"
    );
    // Not fetched, and nothing lost: the caption reaches the model with a note about the file.
    assert!(telegram.downloads().is_empty());
    let text = FakeLlm::last_user_text(&llm.requests()[0]);
    assert!(
        text.contains("the report") && text.contains("not received"),
        "{text}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_discord_attachment_is_fetched_from_its_url_and_reaches_the_model() {
    let llm = FakeLlm::start().await;
    let discord = crate::fake_discord::FakeDiscord::start().await;
    llm.push(reply("A green picture."));
    let home = tempfile::tempdir().expect("tempdir");
    let config =
        config_for(&llm) + &discord.config(&[]) + &access(&["discord:4000"], &["discord:500"]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    let photo = png(16, 16);

    discord.push_guild_message_with_files(
        "500",
        "3000",
        "4000",
        "",
        &[("shot.png", "image/png", &photo)],
    );
    assert_eq!(
        wait_for_replies(&daemon, "main", "discord:500:3000", 1).await,
        vec!["A green picture."]
    );
    assert_eq!(discord.downloads().len(), 1);
    let images = image_parts(&llm.requests()[0]);
    assert_eq!(images.len(), 1);
    assert_eq!(data_url_bytes(&images[0]).1, photo);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_slack_file_is_fetched_from_url_private_with_the_bot_token() {
    let llm = FakeLlm::start().await;
    let slack = crate::fake_slack::FakeSlack::start().await;
    llm.push(reply("Got the screenshot."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &(slack.config() + &access(&["slack:U1"], &["slack:T1"]));
    let daemon = TestDaemon::start(home.path(), &config).await;
    let photo = png(5, 7);

    let (envelope, _) = slack.push_files("U1", "C1", None, &[("screen.png", "image/png", &photo)]);
    assert_eq!(
        wait_for_replies(&daemon, "main", "slack:T1:C1", 1).await,
        vec!["Got the screenshot."]
    );
    let downloads = slack.downloads();
    assert_eq!(downloads.len(), 1);
    assert_eq!(
        downloads[0].1,
        format!("Bearer {}", crate::fake_slack::BOT_TOKEN)
    );
    assert!(slack.acks().contains(&envelope));
    let images = image_parts(&llm.requests()[0]);
    assert_eq!(images.len(), 1);
    assert_eq!(data_url_bytes(&images[0]).1, photo);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_telegram_pdf_document_is_read_into_the_turn() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push(reply("The invoice is due Friday."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    let pdf = crate::media::pdf_with_text("Invoice 7 is due on Friday");
    telegram.add_file("doc", "documents/file_3.pdf", &pdf);

    telegram.push_message_with(
        42,
        42,
        json!({"document": {"file_id": "doc", "file_unique_id": "d", "file_size": pdf.len(),
            "file_name": "invoice.pdf", "mime_type": "application/pdf"}}),
    );
    wait_for_replies(&daemon, "main", "telegram:42", 1).await;
    let text = FakeLlm::last_user_text(&llm.requests()[0]);
    assert!(text.contains("Invoice 7 is due on Friday"), "{text}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_telegram_voice_note_is_transcribed_and_its_text_reaches_the_model() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.set_transcript("please buy oat milk on the way home");
    llm.push(reply("Noted: oat milk."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm).replace(
        "channel = \"fake/fake-model\"",
        "channel = \"fake/fake-model\"\ntranscription = \"fake/whisper-1\"",
    ) + &telegram.config(&[])
        + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    let audio = b"OggS fake opus frames".to_vec();
    telegram.add_file("voice-1", "voice/file_9.oga", &audio);

    telegram.push_message_with(
        42,
        42,
        json!({"voice": {"file_id": "voice-1", "file_unique_id": "v", "file_size": audio.len(),
            "duration": 3, "mime_type": "audio/ogg"}}),
    );
    assert_eq!(
        wait_for_replies(&daemon, "main", "telegram:42", 1).await,
        vec!["Noted: oat milk."]
    );
    let transcriptions = llm.transcriptions();
    assert_eq!(transcriptions.len(), 1);
    let (content_type, body) = &transcriptions[0];
    assert!(
        content_type.starts_with("multipart/form-data; boundary="),
        "{content_type}"
    );
    let body_text = String::from_utf8_lossy(body);
    assert!(
        body_text.contains("name=\"model\"\r\n\r\nwhisper-1"),
        "{body_text}"
    );
    assert!(
        body_text.contains("OggS fake opus frames"),
        "the audio is sent"
    );
    let text = FakeLlm::last_user_text(&llm.requests()[0]);
    assert!(
        text.contains("please buy oat milk on the way home"),
        "{text}"
    );
    assert!(
        text.contains("transcribed"),
        "marked as transcribed: {text}"
    );
    let status = daemon.get("/api/status").await;
    assert_eq!(status["agents"][0]["transcription_model"], "fake/whisper-1");
    daemon.shutdown().await;
}

#[tokio::test]
async fn without_a_transcriber_the_agent_is_told_it_cannot_hear_a_voice_note() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push(reply(
        "Sorry, I cannot listen to voice notes; could you write it?",
    ));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    let audio = b"OggS unheard".to_vec();
    telegram.add_file("voice-2", "voice/file_10.oga", &audio);

    telegram.push_message_with(
        42,
        42,
        json!({"voice": {"file_id": "voice-2", "file_unique_id": "v2", "file_size": audio.len(),
            "duration": 2, "mime_type": "audio/ogg"}}),
    );
    wait_for_replies(&daemon, "main", "telegram:42", 1).await;
    assert!(llm.transcriptions().is_empty());
    let text = FakeLlm::last_user_text(&llm.requests()[0]);
    assert!(
        text.contains("voice note") && text.contains("cannot hear"),
        "{text}"
    );
    let status = daemon.get("/api/status").await;
    assert!(status["agents"][0]["transcription_model"].is_null());
    daemon.shutdown().await;
}

#[tokio::test]
async fn send_file_delivers_a_workspace_document_and_photo_through_telegram() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push(crate::fake_llm::Scripted::ToolCalls(vec![
        (
            "send_file".to_string(),
            json!({"path": "out/report.csv", "caption": "the numbers"}),
        ),
        (
            "send_file".to_string(),
            json!({"path": "/workspace/out/chart.png"}),
        ),
    ]));
    llm.push(reply("Sent both."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    let out = home.path().join("agents/main/workspace/out");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("report.csv"), "month,total\nmay,42\n").expect("write");
    let chart = png(8, 8);
    std::fs::write(out.join("chart.png"), &chart).expect("write");

    telegram.push_message(42, 42, "send me the report and the chart");
    wait_for_replies(&daemon, "main", "telegram:42", 1).await;
    let calls = telegram.calls();
    let document = calls
        .iter()
        .find(|call| call.method == "SendDocument")
        .expect("sendDocument");
    let raw = String::from_utf8_lossy(&document.raw);
    assert!(raw.contains("filename=\"report.csv\""), "{raw}");
    assert!(raw.contains("month,total\nmay,42"), "{raw}");
    assert!(raw.contains("the numbers"), "the caption: {raw}");
    let photo = calls
        .iter()
        .find(|call| call.method == "SendPhoto")
        .expect("sendPhoto");
    assert!(
        photo
            .raw
            .windows(chart.len())
            .any(|window| window == chart.as_slice()),
        "the photo's bytes are sent"
    );
    let results = FakeLlm::tool_results(&llm.requests()[1]);
    assert!(
        results.iter().all(|result| result.starts_with("sent")),
        "{results:?}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn send_file_stays_in_the_workspace_and_gives_the_api_a_download_link() {
    let llm = FakeLlm::start().await;
    llm.push(crate::fake_llm::Scripted::ToolCalls(vec![
        ("send_file".to_string(), json!({"path": "../config.toml"})),
        ("send_file".to_string(), json!({"path": "notes.txt"})),
    ]));
    llm.push(reply("Here it is."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    std::fs::write(
        home.path().join("agents/main/workspace/notes.txt"),
        "remember the milk",
    )
    .expect("write");

    daemon.send("files", "give me my notes").await;
    let results = FakeLlm::tool_results(&llm.requests()[1]);
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[0].contains("outside the workspace"), "{results:?}");
    let link = results[1]
        .split_whitespace()
        .find(|word| word.starts_with("/api/agents/main/files/"))
        .expect("a download link");
    let download = daemon
        .http
        .get(daemon.url(link))
        .send()
        .await
        .expect("request");
    assert_eq!(download.status(), 200);
    assert_eq!(download.text().await.expect("body"), "remember the milk");
    let missing = daemon
        .http
        .get(daemon.url("/api/agents/main/files/..%2F..%2Fconfig.toml"))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 404);
    daemon.shutdown().await;
}

#[tokio::test]
async fn send_file_delivers_a_document_through_discord() {
    let llm = FakeLlm::start().await;
    let discord = crate::fake_discord::FakeDiscord::start().await;
    llm.push(crate::fake_llm::Scripted::tool_call(
        "send_file",
        json!({"path": "plan.md", "caption": "the plan"}),
    ));
    llm.push(reply("Attached."));
    let home = tempfile::tempdir().expect("tempdir");
    let config =
        config_for(&llm) + &discord.config(&[]) + &access(&["discord:4000"], &["discord:500"]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    std::fs::write(
        home.path().join("agents/main/workspace/plan.md"),
        "# Plan\n1. ship\n",
    )
    .expect("write");

    discord.push_guild_message("500", "3000", "4000", "send the plan");
    wait_for_replies(&daemon, "main", "discord:500:3000", 1).await;
    let multipart = discord
        .posted()
        .into_iter()
        .filter_map(|(_, body)| body["multipart"].as_str().map(str::to_string))
        .next()
        .expect("a message with a file");
    assert!(multipart.contains("filename=\"plan.md\""), "{multipart}");
    assert!(multipart.contains("# Plan\n1. ship"), "{multipart}");
    assert!(multipart.contains("the plan"), "{multipart}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn react_puts_an_emoji_on_the_triggering_message_on_telegram_and_discord() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    let discord = crate::fake_discord::FakeDiscord::start().await;
    llm.push_when(
        "thanks telegram",
        crate::fake_llm::Scripted::tool_call("react", json!({"emoji": "👍"})),
    );
    llm.push_when(
        "thanks discord",
        crate::fake_llm::Scripted::tool_call("react", json!({"emoji": "🎉"})),
    );
    llm.set_fallback(|_| {
        crate::fake_llm::Scripted::tool_call("skip", json!({"reason": "reacted"}))
    });
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm)
        + &telegram.config(&[])
        + &discord.config(&[])
        + &access(&["telegram:42", "discord:4000"], &["discord:500"]);
    let daemon = TestDaemon::start(home.path(), &config).await;

    let telegram_message = telegram.push_message(42, 42, "thanks telegram");
    let reaction = telegram
        .wait_for("setMessageReaction", |calls| {
            calls.iter().any(|call| call.method == "SetMessageReaction")
        })
        .await
        .into_iter()
        .find(|call| call.method == "SetMessageReaction")
        .expect("reaction");
    assert_eq!(reaction.body["message_id"], telegram_message);
    assert_eq!(reaction.body["reaction"][0]["emoji"], "👍");

    let discord_message = discord.push_guild_message("500", "3000", "4000", "thanks discord");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let reacted = discord.calls().into_iter().find(|call| {
            call.route == format!("PUT /channels/3000/messages/{discord_message}/reactions/@me")
        });
        if let Some(call) = reacted {
            assert_eq!(call.body["emoji"], "🎉");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no Discord reaction: {:?}",
            discord
                .calls()
                .iter()
                .map(|call| call.route.clone())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    daemon.shutdown().await;
}
