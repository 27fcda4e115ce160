//! The `spacebot` binary: `config check`, and the client verbs against a running daemon.

use std::process::Command;

use serde_json::json;

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{TestDaemon, config_for};

fn spacebot() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spacebot"));
    command
        .env_remove("SPACEBOT_URL")
        .env_remove("SPACEBOT_API_TOKEN")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env("NO_COLOR", "1");
    command
}

#[test]
fn config_check_names_file_line_and_key() {
    let directory = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("[api]\nport = \"abc\"\n", ":2:", "api.port"),
        (
            "[[agents]]\nid = \"main\"\ncolour = \"blue\"\n",
            ":3:",
            "colour",
        ),
        (
            "[defaults.routing]\n\nchannel = \"gpt4\"\n",
            ":3:",
            "defaults.routing.channel",
        ),
        (
            "[[agents]]\nid = \"a\"\n\n[[agents]]\nid = \"a\"\n",
            ":5:",
            "agents[1].id",
        ),
        (
            "[llm.providers.openai]\napi_key = \"env:SPACEBOT_TEST_UNSET_KEY\"\n",
            ":2:",
            "SPACEBOT_TEST_UNSET_KEY",
        ),
        ("[api\nport = 1\n", ":1:", "syntax"),
    ];
    for (text, line, key) in cases {
        let path = directory.path().join("broken.toml");
        std::fs::write(&path, text).expect("write");
        let output = spacebot()
            .args(["config", "check"])
            .arg(&path)
            .env_remove("SPACEBOT_TEST_UNSET_KEY")
            .output()
            .expect("run spacebot");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{text:?} passed the check");
        assert!(
            stderr.contains(&format!("broken.toml{line}")),
            "{text:?}: no file:line in {stderr}"
        );
        assert!(stderr.contains(key), "{text:?}: no key `{key}` in {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let good = directory.path().join("good.toml");
    std::fs::write(&good, spacebot::config::DEFAULT_CONFIG).expect("write");
    // The file as an argument, or with --config as `serve` takes it.
    for flag in [None, Some("--config")] {
        let output = spacebot()
            .args(["config", "check"])
            .args(flag)
            .arg(&good)
            .output()
            .expect("run");
        assert!(
            output.status.success(),
            "{flag:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("good.toml: ok"),
            "{flag:?}"
        );
    }
    let broken = directory.path().join("broken.toml");
    let output = spacebot()
        .args(["config", "check", "--config"])
        .arg(&broken)
        .output()
        .expect("run");
    assert!(!output.status.success(), "--config checks the named file");
}

#[tokio::test]
async fn send_and_status_talk_to_the_running_daemon() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::tool_call(
        "reply",
        json!({"content": "hello from the daemon"}),
    ));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let base_url = daemon.base_url.clone();
    let client_home = home.path().to_path_buf();
    let (send, status) = tokio::task::spawn_blocking(move || {
        let send = spacebot()
            .args(["--url", &base_url, "send", "hi there"])
            .env("SPACEBOT_HOME", &client_home)
            .output()
            .expect("run send");
        let status = spacebot()
            .args(["--url", &base_url, "status"])
            .env("SPACEBOT_HOME", &client_home)
            .output()
            .expect("run status");
        (send, status)
    })
    .await
    .expect("join");
    assert!(
        send.status.success(),
        "{}",
        String::from_utf8_lossy(&send.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&send.stdout).trim(),
        "hello from the daemon"
    );
    let status_text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status_text.contains("agent main (default)"),
        "{status_text}"
    );
    assert!(
        status_text.contains("model fake/fake-model"),
        "{status_text}"
    );
    for platform in ["discord", "slack", "telegram"] {
        assert!(
            status_text.contains(&format!("{platform}: disabled")),
            "{status_text}"
        );
    }
    daemon.shutdown().await;
}

#[test]
fn client_verbs_say_clearly_when_the_daemon_is_not_running() {
    let home = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on: bind one, note it, free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let output = spacebot()
        .args(["--url", &format!("http://127.0.0.1:{port}"), "status"])
        .env("SPACEBOT_HOME", home.path())
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("daemon is not running"), "{stderr}");
    assert!(stderr.contains("spacebot serve"), "{stderr}");
}
