//! Cron jobs end to end: jobs from the config, the `cron` tool, the API and the CLI fire
//! through the scripted LLM in their own conversations, deliver their outcome once, survive
//! restarts without firing twice, stop when deleted and are disabled after repeated failures.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_llm::{FakeLlm, Scripted};
use crate::fake_telegram::FakeTelegram;
use crate::harness::{TestDaemon, config_for, replies, reply};

const RETRIGGER: &str = "Background work finished";

/// The text that opens a firing of `job`.
fn firing(job: &str) -> String {
    format!("[Scheduled job `{job}`")
}

fn firings(llm: &FakeLlm, job: &str) -> Vec<Value> {
    llm.requests()
        .into_iter()
        .filter(|request| FakeLlm::last_user_text(request).contains(&firing(job)))
        .collect()
}

/// `config_for` with `[[agents.cron]]` tables (or anything else) appended to agent `main`.
fn with_jobs(llm: &FakeLlm, jobs: &str) -> String {
    format!("{}{jobs}", config_for(llm))
}

async fn executions(daemon: &TestDaemon, job: &str) -> Vec<Value> {
    let body = daemon.get(&format!("/api/agents/main/cron/{job}")).await;
    body["executions"].as_array().cloned().unwrap_or_default()
}

/// Polls a job's execution history (newest first) until `predicate` holds.
async fn wait_for_executions(
    daemon: &TestDaemon,
    job: &str,
    predicate: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let executions = executions(daemon, job).await;
        if predicate(&executions) {
            return executions;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "executions of {job} never matched: {executions:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn with_state<'a>(executions: &'a [Value], state: &str) -> Vec<&'a Value> {
    executions
        .iter()
        .filter(|execution| execution["state"] == state)
        .collect()
}

async fn post(daemon: &TestDaemon, path: &str, body: Value) -> (u16, Value) {
    let response = daemon
        .http
        .post(daemon.url(path))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn delete(daemon: &TestDaemon, path: &str) -> u16 {
    daemon
        .http
        .delete(daemon.url(path))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_job_every_two_seconds_delivers_its_outcome_to_a_telegram_chat() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.set_fallback(|request| {
        if FakeLlm::last_user_text(request).contains(&firing("tick")) {
            reply("Tick: all systems nominal.")
        } else {
            Scripted::status(500, "unexpected request")
        }
    });
    let home = tempfile::tempdir().expect("tempdir");
    let config = with_jobs(
        &llm,
        "[[agents.cron]]\nid = \"tick\"\nprompt = \"Report the state of the systems.\"\nevery = \"2s\"\ndelivery_target = \"telegram:42\"\n",
    ) + &telegram.config(&[]);
    let daemon = TestDaemon::start(home.path(), &config).await;

    let sent = telegram.wait_for_sent(1).await;
    assert_eq!(sent[0]["chat_id"], 42);
    assert_eq!(sent[0]["text"], "Tick: all systems nominal.");
    // The firing ran as an ordinary channel turn in a conversation of its own.
    let request = &firings(&llm, "tick")[0];
    assert!(
        FakeLlm::system_text(request).contains("cron:tick:"),
        "{}",
        FakeLlm::system_text(request)
    );
    assert!(FakeLlm::tool_names(request).contains(&"spawn_worker".to_string()));
    let history = wait_for_executions(&daemon, "tick", |executions| {
        !with_state(executions, "succeeded").is_empty()
    })
    .await;
    let done = with_state(&history, "succeeded")[0];
    assert_eq!(done["delivered"], true);
    assert_eq!(done["outcome"], "Tick: all systems nominal.");
    assert_eq!(done["trigger"], "schedule");
    assert!(done["ended_at"].as_i64() >= done["started_at"].as_i64());
    assert!(
        replies(&daemon.transcript("main", "telegram:42").await)
            .contains(&"Tick: all systems nominal.".to_string()),
        "the chat's transcript records what it was sent"
    );

    // Every delivered run sent exactly one message.
    let (status, _) = post(&daemon, "/api/agents/main/cron/tick/disable", json!({})).await;
    assert_eq!(status, 200);
    let history = wait_for_executions(&daemon, "tick", |executions| {
        with_state(executions, "running").is_empty()
    })
    .await;
    let delivered = history
        .iter()
        .filter(|execution| execution["delivered"] == true)
        .count();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(telegram.sent().len(), delivered, "{history:#?}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_run_waits_for_its_worker_and_delivers_only_the_final_answer() {
    let llm = FakeLlm::start().await;
    llm.push_when(
        &firing("census"),
        Scripted::ToolCalls(vec![
            ("spawn_worker".into(), json!({"task": "count the files"})),
            ("reply".into(), json!({"content": "Counting, one moment."})),
        ]),
    );
    llm.push_when(
        "count the files",
        Scripted::tool_call(
            "set_status",
            json!({"state": "done", "message": "there are 42 files"}),
        )
        .delayed(Duration::from_millis(500)),
    );
    llm.push_when(RETRIGGER, reply("There are 42 files."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    let job = json!({"id": "census", "prompt": "Count the files in the workspace.", "cron": "0 0 1 1 *", "delivery_target": "portal:reports"});
    let (status, created) = post(&daemon, "/api/agents/main/cron", job).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["job"]["source"], "api");
    assert!(created["job"]["next_run"].as_str().is_some(), "{created}");
    let (status, triggered) = post(&daemon, "/api/agents/main/cron/census/run", json!({})).await;
    assert_eq!(status, 202, "{triggered}");

    let history = wait_for_executions(&daemon, "census", |executions| {
        executions
            .first()
            .is_some_and(|execution| execution["state"] != "running")
    })
    .await;
    assert_eq!(history[0]["state"], "succeeded", "{history:#?}");
    assert_eq!(history[0]["trigger"], "manual");
    assert_eq!(history[0]["outcome"], "There are 42 files.");
    let transcript = daemon
        .wait_for_messages("reports", |messages| !replies(messages).is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        replies(&daemon.messages("reports").await),
        vec!["There are 42 files."],
        "only the final answer is delivered, once: {transcript:#?}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_job_created_by_the_cron_tool_delivers_back_to_its_conversation() {
    let llm = FakeLlm::start().await;
    llm.push_when(
        "remind me",
        Scripted::ToolCalls(vec![
            (
                "cron".into(),
                json!({"action": "create", "id": "water", "prompt": "Remind the user to drink water.", "every": "2s", "run_once": true}),
            ),
            ("reply".into(), json!({"content": "I will remind you."})),
        ]),
    );
    llm.push_when(&firing("water"), reply("Time to drink some water!"));
    llm.push_when("thanks", reply("You are welcome."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    let answer = daemon
        .send("planner", "remind me to drink water in two seconds")
        .await;
    assert_eq!(answer["reply"], "I will remind you.");
    let transcript = daemon
        .wait_for_messages("planner", |messages| replies(messages).len() == 2)
        .await;
    assert_eq!(replies(&transcript)[1], "Time to drink some water!");
    let jobs = daemon.get("/api/agents/main/cron").await;
    let job = &jobs["jobs"][0];
    assert_eq!(job["id"], "water");
    assert_eq!(job["source"], "tool");
    assert_eq!(job["delivery_target"], "portal:planner");
    wait_for_executions(&daemon, "water", |executions| {
        with_state(executions, "succeeded").len() == 1
    })
    .await;
    let jobs = daemon.get("/api/agents/main/cron").await;
    assert_eq!(jobs["jobs"][0]["enabled"], false);
    assert_eq!(jobs["jobs"][0]["disabled_reason"], "ran once");

    // The conversation's own model knows what was delivered to it, and what the tool did.
    let answer = daemon.send("planner", "thanks").await;
    assert_eq!(answer["reply"], "You are welcome.");
    let thanks = llm
        .requests()
        .into_iter()
        .find(|request| FakeLlm::last_user_text(request) == "thanks")
        .expect("the thanks turn");
    let history = thanks["messages"].to_string();
    assert!(history.contains("Time to drink some water!"), "{history}");
    assert!(history.contains("created job `water`"), "{history}");
    assert_eq!(firings(&llm, "water").len(), 1, "a run-once job fires once");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_restart_between_claim_and_run_does_not_fire_the_slot_twice() {
    let llm = FakeLlm::start().await;
    // The first firing hangs: the daemon stops while the slot is claimed and its run is open.
    llm.push_when(&firing("nightly"), Scripted::Hang);
    llm.set_fallback(|request| {
        if FakeLlm::last_user_text(request).contains(&firing("nightly")) {
            reply("Nightly report: all good.")
        } else {
            Scripted::status(500, "unexpected request")
        }
    });
    let home = tempfile::tempdir().expect("tempdir");
    let config = with_jobs(
        &llm,
        "[[agents.cron]]\nid = \"nightly\"\nprompt = \"Write the nightly report.\"\nevery = \"2s\"\ndelivery_target = \"portal:night\"\n",
    );
    let daemon = TestDaemon::start(home.path(), &config).await;
    llm.wait_for_requests(1, Duration::from_secs(10)).await;
    let claimed =
        wait_for_executions(&daemon, "nightly", |executions| !executions.is_empty()).await;
    let interrupted_conversation = claimed[0]["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_string();
    let interrupted_slot = claimed[0]["scheduled_for"].clone();
    daemon.shutdown().await;

    let daemon = TestDaemon::start(home.path(), &config).await;
    let history = wait_for_executions(&daemon, "nightly", |executions| {
        !with_state(executions, "succeeded").is_empty()
    })
    .await;
    let interrupted: Vec<&Value> = history
        .iter()
        .filter(|execution| execution["scheduled_for"] == interrupted_slot)
        .collect();
    assert_eq!(interrupted.len(), 1, "{history:#?}");
    assert_eq!(interrupted[0]["state"], "interrupted");
    let slots: HashSet<String> = history
        .iter()
        .map(|execution| execution["scheduled_for"].to_string())
        .collect();
    assert_eq!(slots.len(), history.len(), "a slot ran twice: {history:#?}");
    let ran_interrupted = llm
        .requests()
        .iter()
        .filter(|request| FakeLlm::system_text(request).contains(&interrupted_conversation))
        .count();
    assert_eq!(
        ran_interrupted, 1,
        "the interrupted firing was not run again"
    );
    let transcript = daemon.transcript("main", &interrupted_conversation).await;
    assert_eq!(transcript[0]["status"], "failed", "{transcript:#?}");
    let delivered = daemon
        .wait_for_messages("night", |messages| !replies(messages).is_empty())
        .await;
    assert!(
        replies(&delivered)
            .iter()
            .all(|reply| reply == "Nightly report: all good."),
        "{delivered:#?}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_job_failing_three_times_in_a_row_is_disabled_and_says_so() {
    let llm = FakeLlm::start().await;
    llm.set_fallback(|_| Scripted::status(401, "invalid api key"));
    let home = tempfile::tempdir().expect("tempdir");
    let config = with_jobs(
        &llm,
        "[[agents.cron]]\nid = \"flaky\"\nprompt = \"Check the weather.\"\nevery = \"1s\"\ndelivery_target = \"portal:ops\"\n",
    );
    let daemon = TestDaemon::start(home.path(), &config).await;

    let transcript = daemon
        .wait_for_messages("ops", |messages| !replies(messages).is_empty())
        .await;
    let notice = &replies(&transcript)[0];
    assert!(notice.contains("`flaky` is now disabled"), "{notice}");
    assert!(notice.contains("failed 3 times in a row"), "{notice}");
    assert!(notice.contains("401"), "the last error is named: {notice}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let history = executions(&daemon, "flaky").await;
    assert_eq!(with_state(&history, "failed").len(), 3, "{history:#?}");
    assert_eq!(history.len(), 3, "no run after the job was disabled");
    assert!(
        history
            .iter()
            .all(|execution| execution["delivered"] == false)
    );
    assert_eq!(replies(&daemon.messages("ops").await).len(), 1);

    let status = daemon.get("/api/status").await;
    let agent = &status["agents"][0];
    assert_eq!(agent["cron"]["disabled"][0]["id"], "flaky");
    assert!(
        agent["cron"]["disabled"][0]["reason"]
            .as_str()
            .is_some_and(|reason| reason.starts_with("failed 3 times in a row")),
        "{agent}"
    );
    // The model failed three times in a row too: its breaker is open and reported.
    assert!(
        agent["degraded"]
            .to_string()
            .contains("model `fake/fake-model` failed 3 times in a row"),
        "{agent}"
    );
    let cortex = daemon.get("/api/agents/main/cortex").await;
    assert_eq!(cortex["model_breakers"][0]["model"], "fake/fake-model");

    // Enabling clears the count; the job runs again.
    let (status, enabled) = post(&daemon, "/api/agents/main/cron/flaky/enable", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(enabled["job"]["consecutive_failures"], 0);
    assert_eq!(enabled["job"]["enabled"], true);
    daemon.shutdown().await;
}

#[tokio::test]
async fn deleting_a_job_stops_it_at_once() {
    let llm = FakeLlm::start().await;
    llm.set_fallback(|_| reply("beat"));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    let job = json!({"id": "beat", "prompt": "Send a heartbeat.", "every": "1s", "delivery_target": "portal:beats"});
    let (status, _) = post(&daemon, "/api/agents/main/cron", job.clone()).await;
    assert_eq!(status, 201);
    let (status, body) = post(&daemon, "/api/agents/main/cron", job).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = post(
        &daemon,
        "/api/agents/main/cron",
        json!({"id": "bad", "prompt": "x", "cron": "99 * * * *"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.starts_with("cron: `99 * * * *`")),
        "{body}"
    );
    let (status, body) = post(
        &daemon,
        "/api/agents/main/cron",
        json!({"prompt": "x", "every": "1m", "delivery_target": "telegram:1"}),
    )
    .await;
    assert_eq!(status, 400, "no telegram adapter is configured: {body}");

    wait_for_executions(&daemon, "beat", |executions| {
        !with_state(executions, "succeeded").is_empty()
    })
    .await;
    assert_eq!(delete(&daemon, "/api/agents/main/cron/beat").await, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fired = firings(&llm, "beat").len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(firings(&llm, "beat").len(), fired, "a deleted job fired");
    assert_eq!(daemon.get("/api/agents/main/cron").await["jobs"], json!([]));
    assert_eq!(delete(&daemon, "/api/agents/main/cron/beat").await, 404);
    daemon.shutdown().await;
}

#[tokio::test]
async fn the_cron_cli_adds_lists_runs_and_removes_jobs() {
    let llm = FakeLlm::start().await;
    llm.set_fallback(|_| reply("hello from cron"));
    let home = tempfile::tempdir().expect("tempdir");
    let config = with_jobs(
        &llm,
        "[[agents.cron]]\nid = \"configured\"\nprompt = \"Say hi.\"\ncron = \"0 9 * * 1-5\"\ntimezone = \"Asia/Tokyo\"\n",
    );
    let daemon = TestDaemon::start(home.path(), &config).await;
    let base_url = daemon.base_url.clone();
    let client_home = home.path().to_path_buf();
    let cli = move |arguments: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_spacebot"))
            .args(["--url", &base_url, "cron"])
            .args(arguments)
            .env("SPACEBOT_HOME", &client_home)
            .env_remove("SPACEBOT_URL")
            .env_remove("SPACEBOT_API_TOKEN")
            .output()
            .expect("run spacebot");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string(),
            String::from_utf8_lossy(&output.stderr).to_string(),
        )
    };
    let run = |arguments: Vec<&'static str>| {
        let cli = cli.clone();
        tokio::task::spawn_blocking(move || cli(&arguments))
    };

    let (ok, stdout, stderr) = run(vec![
        "add",
        "Say hello.",
        "--id",
        "hello",
        "--every",
        "1h",
        "--target",
        "portal:cli-cron",
    ])
    .await
    .expect("join");
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("added hello"), "{stdout}");
    let (ok, stdout, stderr) = run(vec!["list"]).await.expect("join");
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("configured  cron \"0 9 * * 1-5\" (Asia/Tokyo)"),
        "{stdout}"
    );
    assert!(stdout.contains("hello  every 3600s"), "{stdout}");
    assert!(stdout.contains("-> portal:cli-cron  next "), "{stdout}");
    let (ok, stdout, stderr) = run(vec!["run", "hello"]).await.expect("join");
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with("running hello in cron:hello:"),
        "{stdout}"
    );
    daemon
        .wait_for_messages("cli-cron", |messages| {
            replies(messages) == vec!["hello from cron"]
        })
        .await;
    let (ok, _, stderr) = run(vec!["remove", "configured"]).await.expect("join");
    assert!(!ok);
    assert!(stderr.contains("comes from the config file"), "{stderr}");
    let (ok, stdout, stderr) = run(vec!["remove", "hello"]).await.expect("join");
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "removed hello");
    let (_, stdout, _) = run(vec!["list"]).await.expect("join");
    assert!(!stdout.contains("hello"), "{stdout}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_slot_missed_while_down_runs_once_within_the_grace_window_and_is_skipped_after_it() {
    let llm = FakeLlm::start().await;
    llm.set_fallback(|_| reply("catching up"));
    let home = tempfile::tempdir().expect("tempdir");
    let config = with_jobs(
        &llm,
        "[[agents.cron]]\nid = \"recent\"\nprompt = \"Report.\"\nevery = \"1h\"\ndelivery_target = \"portal:recent\"\n[[agents.cron]]\nid = \"stale\"\nprompt = \"Report.\"\nevery = \"1h\"\ndelivery_target = \"portal:stale\"\n",
    )
    .replace(
        "[defaults.routing]",
        "[defaults.cron]\ngrace = \"1m\"\n\n[defaults.routing]",
    );
    let daemon = TestDaemon::start(home.path(), &config).await;
    let jobs = daemon.get("/api/agents/main/cron").await;
    assert!(jobs["jobs"][0]["next_run_at"].as_i64().is_some(), "{jobs}");
    daemon.shutdown().await;

    // While the daemon is down, one slot passes 30 s ago (inside the grace window) and one
    // two hours ago (outside it).
    let database = home.path().join("agents/main/spacebot.db");
    let pool = crate::harness::open_database(&database).await;
    let now = chrono::Utc::now().timestamp_millis();
    for (job, slot) in [("recent", now - 30_000), ("stale", now - 7_200_000)] {
        sqlx::query("UPDATE cron_jobs SET next_run_at = ? WHERE id = ?")
            .bind(slot)
            .bind(job)
            .execute(&pool)
            .await
            .expect("move the slot");
    }
    pool.close().await;

    let daemon = TestDaemon::start(home.path(), &config).await;
    let recent = wait_for_executions(&daemon, "recent", |executions| {
        !with_state(executions, "succeeded").is_empty()
    })
    .await;
    let stale = wait_for_executions(&daemon, "stale", |executions| !executions.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(recent.len(), 1, "{recent:#?}");
    assert_eq!(recent[0]["scheduled_for"], now - 30_000);
    assert_eq!(firings(&llm, "recent").len(), 1, "the missed slot ran once");
    assert_eq!(stale.len(), 1, "{stale:#?}");
    assert_eq!(stale[0]["state"], "missed");
    assert!(
        stale[0]["error"]
            .as_str()
            .is_some_and(|error| error.contains("grace window 1m")),
        "{stale:#?}"
    );
    assert!(
        firings(&llm, "stale").is_empty(),
        "a slot past the grace window is skipped"
    );
    let jobs = daemon.get("/api/agents/main/cron").await;
    for job in jobs["jobs"].as_array().expect("jobs") {
        assert!(
            job["next_run_at"].as_i64().is_some_and(|next| next > now),
            "{job}"
        );
    }
    assert_eq!(
        replies(&daemon.messages("recent").await),
        vec!["catching up"]
    );
    assert!(daemon.messages("stale").await.is_empty());
    daemon.shutdown().await;
}
