//! Editing the config of a running daemon: the file watch applies an edit (a new chat
//! platform, a binding, a cron job and a second agent) without a restart; a changed platform
//! table restarts its adapter; a broken edit is reported (log, `POST /api/reload`,
//! `spacebot status`) and changes nothing; SIGHUP reloads the binary.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::daemon_process::DaemonProcess;
use crate::fake_llm::FakeLlm;
use crate::fake_telegram::FakeTelegram;
use crate::harness::{TestDaemon, access, config_for, reply, wait_for_json, wait_for_replies};

fn agent_ids(body: &Value) -> Vec<String> {
    body["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|agent| agent["id"].as_str().map(str::to_string))
        .collect()
}

/// The base config of these tests: the fake LLM, the file watched every 100 ms.
fn base(llm: &FakeLlm) -> String {
    config_for(llm) + "\n[reload]\ninterval_ms = 100\n"
}

/// A second agent, a job of it that fires every second, a Telegram table pointing at
/// `telegram`, and a binding of the group -100 to the second agent.
fn edited(llm: &FakeLlm, telegram: &FakeTelegram) -> String {
    base(llm)
        + "\n[[agents]]\nid = \"second\"\ndisplay_name = \"Second\"\n"
        + "\n[[agents.cron]]\nid = \"heartbeat\"\nprompt = \"beat\"\nevery = \"1s\"\n"
        + &telegram.config(&[])
        + "\n[[bindings]]\nagent = \"second\"\nplatform = \"telegram\"\nchat_id = \"-100\"\n"
        + &access(&["telegram:42"], &[])
}

#[tokio::test]
async fn an_edit_adds_a_platform_a_binding_a_job_and_an_agent_without_a_restart() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push_when("group hello", reply("second here"));
    llm.push_when("direct hello", reply("main here"));
    llm.push_when("beat", reply("beat done"));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &base(&llm)).await;
    let status = daemon.get("/api/status").await;
    assert_eq!(agent_ids(&status), ["main"]);
    assert!(telegram.calls().is_empty());

    std::fs::write(home.path().join("config.toml"), edited(&llm, &telegram)).expect("edit");
    let agents = wait_for_json(&daemon, "/api/agents", |body| agent_ids(body).len() == 2).await;
    assert_eq!(agent_ids(&agents), ["main", "second"]);
    let status = daemon.get("/api/status").await;
    assert_eq!(status["reload"]["outcome"], "applied", "{status:#}");
    let changes = status["reload"]["changes"].to_string();
    for change in [
        "agent second added",
        "bindings",
        "messaging.telegram started",
        "access",
    ] {
        assert!(changes.contains(change), "{change}: {changes}");
    }

    // The new platform is connected, the binding routes the group to the new agent, the
    // owner's direct message goes to the default agent.
    telegram.push_message(-100, 42, "group hello");
    telegram.push_message(42, 42, "direct hello");
    assert_eq!(
        wait_for_replies(&daemon, "second", "telegram:-100", 1).await,
        ["second here"]
    );
    assert_eq!(
        wait_for_replies(&daemon, "main", "telegram:42", 1).await,
        ["main here"]
    );
    // The new agent's job from the config runs on its schedule.
    let jobs = wait_for_json(&daemon, "/api/agents/second/cron", |body| {
        body["jobs"][0]["last_execution"]["state"] == "succeeded"
    })
    .await;
    assert_eq!(jobs["jobs"][0]["id"], "heartbeat");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_changed_platform_table_restarts_its_adapter_and_a_removed_one_stops_it() {
    let llm = FakeLlm::start().await;
    let first = FakeTelegram::start().await;
    let second = FakeTelegram::start().await;
    llm.push_when("via the first", reply("one"));
    llm.push_when("via the second", reply("two"));
    let home = tempfile::tempdir().expect("tempdir");
    // Two owners: each fake numbers its messages from the same start, and a message id seen
    // before in a chat is a redelivery, so each server talks in its own chat.
    let owner = access(&["telegram:42", "telegram:43"], &[]);
    let daemon = TestDaemon::start(home.path(), &(base(&llm) + &first.config(&[]) + &owner)).await;
    first.push_message(42, 42, "via the first");
    first.wait_for_sent(1).await;

    // Pointing the table at another server restarts the adapter on it.
    let reload = |config: String| {
        std::fs::write(home.path().join("config.toml"), config).expect("edit");
        daemon
            .http
            .post(daemon.url("/api/reload"))
            .json(&json!({}))
            .send()
    };
    let answer = reload(base(&llm) + &second.config(&[]) + &owner)
        .await
        .expect("reload");
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.expect("json");
    assert!(
        body["reload"]["changes"]
            .to_string()
            .contains("messaging.telegram started"),
        "{body:#}"
    );
    second.push_message(43, 43, "via the second");
    let sent = second.wait_for_sent(1).await;
    assert_eq!(sent[0]["text"], "two");
    let polls_before = first.method_names().len();

    // Without the table the adapter stops and the platform shows as disabled.
    let answer = reload(base(&llm) + &owner).await.expect("reload");
    assert_eq!(answer.status(), 200);
    let status = wait_for_json(&daemon, "/api/status", |body| {
        body["messaging"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|adapter| adapter["name"] == "telegram" && adapter["state"] == "disabled")
    })
    .await;
    assert_eq!(agent_ids(&status), ["main"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        first.method_names().len(),
        polls_before,
        "the replaced adapter stopped polling"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_broken_edit_is_reported_with_file_line_and_key_and_changes_nothing() {
    let llm = FakeLlm::start().await;
    llm.push_when("still there", reply("still answering"));
    let home = tempfile::tempdir().expect("tempdir");
    let good = base(&llm) + "\n[[agents]]\nid = \"second\"\n";
    let daemon = TestDaemon::start(home.path(), &good).await;

    // The edit renames the second agent to an invalid id and adds a third: none of it may be
    // applied.
    let broken = base(&llm) + "\n[[agents]]\nid = \"Second Agent\"\n\n[[agents]]\nid = \"third\"\n";
    std::fs::write(home.path().join("config.toml"), &broken).expect("edit");
    let answer = daemon
        .http
        .post(daemon.url("/api/reload"))
        .json(&json!({}))
        .send()
        .await
        .expect("reload");
    assert_eq!(answer.status(), 422);
    let body: Value = answer.json().await.expect("json");
    let error = body["reload"]["errors"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let line = broken
        .lines()
        .position(|line| line.contains("Second Agent"))
        .expect("line")
        + 1;
    assert!(
        error.contains(&format!("config.toml:{line}:")) && error.contains("agents[1].id"),
        "{error}"
    );
    let agents = daemon.get("/api/agents").await;
    assert_eq!(agent_ids(&agents), ["main", "second"], "nothing changed");
    // The running config still works.
    let response = daemon
        .http
        .post(daemon.url("/api/agents/second/messages"))
        .json(&json!({"content": "still there", "conversation": "check", "wait": true}))
        .send()
        .await
        .expect("send");
    let answered: Value = response.json().await.expect("json");
    assert_eq!(answered["reply"], "still answering");

    // `spacebot status` says the edit was not applied, and why.
    let base_url = daemon.base_url.clone();
    let client_home = home.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_spacebot"))
            .args(["--url", &base_url, "status"])
            .env("SPACEBOT_HOME", &client_home)
            .env_remove("SPACEBOT_API_TOKEN")
            .output()
            .expect("status")
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("NOT applied"), "{text}");
    assert!(text.contains(&format!("config.toml:{line}:")), "{text}");
    let metrics = daemon
        .http
        .get(daemon.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("spacebot_config_reload_failing 1"),
        "{metrics}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn sighup_reloads_the_config_of_the_running_binary() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    // Watching off: only the signal can reload.
    let config = config_for(&llm) + "\n[reload]\nwatch = false\n";
    let daemon = DaemonProcess::start(home.path(), &config).await;
    let agents = |daemon: &DaemonProcess| {
        let request = daemon.http.get(daemon.url("/api/agents"));
        async move {
            let body: Value = request
                .send()
                .await
                .expect("agents")
                .json()
                .await
                .expect("json");
            agent_ids(&body)
        }
    };
    assert_eq!(agents(&daemon).await, ["main"]);
    std::fs::write(
        home.path().join("config.toml"),
        config + "\n[[agents]]\nid = \"later\"\n",
    )
    .expect("edit");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        agents(&daemon).await,
        ["main"],
        "no reload without a signal"
    );
    daemon.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while agents(&daemon).await != ["later", "main"] {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
