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
