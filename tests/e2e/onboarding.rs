//! `spacebot init`, run as a script would (`--non-interactive`) against the fake provider and
//! platforms: every credential is checked with its service's "who am I" call, a wrong one
//! stops it before anything is written, and the config it writes is private and runs.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use crate::fake_discord::{self, FakeDiscord};
use crate::fake_llm::FakeLlm;
use crate::fake_slack::{self, FakeSlack};
use crate::fake_telegram::{self, FakeTelegram};
use crate::harness::{TestDaemon, reply};

fn init(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spacebot"))
        .arg("init")
        .arg("--non-interactive")
        .args(arguments)
        .env_remove("SPACEBOT_INIT_API_KEY")
        .env("NO_COLOR", "1")
        .output()
        .expect("run spacebot init")
}

#[tokio::test]
async fn init_checks_each_credential_and_writes_a_private_config_that_runs() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    let discord = FakeDiscord::start().await;
    let slack = FakeSlack::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let path = home.path().join("config.toml");
    let path_text = path.display().to_string();
    let (base_url, telegram_url, discord_url, slack_url) = (
        llm.openai_base_url(),
        telegram.api_url(),
        discord.api_base(),
        slack.api_url(),
    );
    let arguments = [
        "--config",
        &path_text,
        "--provider",
        "openai",
        "--api-key",
        "test-key",
        "--base-url",
        &base_url,
        "--model",
        "fake-model",
        "--telegram-token",
        fake_telegram::TOKEN,
        "--telegram-api-url",
        &telegram_url,
        "--discord-token",
        fake_discord::TOKEN,
        "--discord-api-base",
        &discord_url,
        "--slack-bot-token",
        fake_slack::BOT_TOKEN,
        "--slack-app-token",
        fake_slack::APP_TOKEN,
        "--slack-api-url",
        &slack_url,
        "--owner",
        "telegram:42",
    ]
    .map(str::to_string);
    let output = tokio::task::spawn_blocking(move || {
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        init(&arguments)
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for said in [
        "openai answered with 2 model(s)",
        "Telegram bot @spacebot_test_bot",
        "Discord bot spacebot (1000)",
        "Slack app spacebot in workspace Fake (Socket Mode ready)",
    ] {
        assert!(stdout.contains(said), "{said}: {stdout}");
    }
    // Each service was asked who the credentials belong to.
    assert!(telegram.method_names().iter().any(|name| name == "getMe"));
    assert!(
        discord
            .calls()
            .iter()
            .any(|call| call.route == "GET /users/@me")
    );
    let slack_methods: Vec<String> = slack.calls().into_iter().map(|call| call.method).collect();
    assert!(
        slack_methods.contains(&"auth.test".to_string()),
        "{slack_methods:?}"
    );
    assert!(slack_methods.contains(&"apps.connections.open".to_string()));

    let mode = std::fs::metadata(&path)
        .expect("written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let written = std::fs::read_to_string(&path).expect("read");
    assert!(written.contains("# Spacebot configuration"), "{written}");
    assert!(written.contains(r#"owners = ["telegram:42"]"#), "{written}");

    // The daemon runs on what init wrote: the owner's Telegram message is answered.
    llm.push_when("first words", reply("it works"));
    let daemon = TestDaemon::start(home.path(), &written).await;
    telegram.push_message(42, 42, "first words");
    let sent = telegram.wait_for_sent(1).await;
    assert_eq!(sent[0]["text"], "it works");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_refused_token_stops_init_before_anything_is_written() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let path = home.path().join("config.toml");
    let path_text = path.display().to_string();
    let (base_url, telegram_url) = (llm.openai_base_url(), telegram.api_url());
    let output = tokio::task::spawn_blocking(move || {
        init(&[
            "--config",
            &path_text,
            "--provider",
            "local",
            "--base-url",
            &base_url,
            "--telegram-token",
            "999:WRONG",
            "--telegram-api-url",
            &telegram_url,
        ])
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("Telegram"), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(
        !stderr.contains("999:WRONG"),
        "the token is not printed: {stderr}"
    );
    assert!(!path.exists(), "nothing written");
}

#[test]
fn init_without_a_provider_key_in_a_script_says_what_is_missing() {
    let home = tempfile::tempdir().expect("tempdir");
    let path = home.path().join("config.toml");
    let output = init(&[
        "--config",
        &path.display().to_string(),
        "--provider",
        "anthropic",
        "--skip-checks",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("--api-key"), "{stderr}");
    assert!(!path.exists());
}
