//! The cortex end to end: it stops a hung worker once (ending it as timed out), reports a
//! tool that keeps failing in the channel's prompt, runs maintenance only after a change, and
//! never calls the LLM on its own.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{
    TestDaemon, config_for, replies, reply, requests_with, with_defaults, worker_states,
};

const RETRIGGER: &str = "Background work finished";

#[tokio::test]
async fn a_hung_worker_is_timed_out_once_by_the_cortex() {
    let llm = FakeLlm::start().await;
    let task = "wait for the sensor reading";
    llm.push_when(
        "read the sensor",
        Scripted::ToolCalls(vec![
            ("spawn_worker".into(), json!({"task": task})),
            ("reply".into(), json!({"content": "Reading it."})),
        ]),
    );
    llm.push_when(task, Scripted::Hang);
    llm.push_when(RETRIGGER, reply("The sensor did not answer."));
    let home = tempfile::tempdir().expect("tempdir");
    // The worker's own wall-clock limit is far away; only the cortex can stop it.
    let config = with_defaults(
        &llm,
        "worker_timeout_secs = 600\n[defaults.cortex]\nstall_secs = 1",
    );
    let daemon = TestDaemon::start(home.path(), &config).await;

    daemon.send("sensor", "read the sensor").await;
    daemon
        .wait_for_messages("sensor", |messages| replies(messages).len() == 2)
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let retriggers = requests_with(&llm, RETRIGGER);
    assert_eq!(retriggers.len(), 1, "the channel hears of it once");
    let text = FakeLlm::last_user_text(&retriggers[0]);
    assert!(text.contains("timed_out"), "{text}");
    assert!(text.contains("no progress for 1s"), "{text}");
    let cortex = daemon.get("/api/agents/main/cortex").await;
    let stalled: Vec<&Value> = cortex["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|action| action["kind"] == "stalled")
        .collect();
    assert_eq!(stalled.len(), 1, "{cortex}");
    assert_eq!(stalled[0]["process_id"]["type"], "worker");
    assert_eq!(stalled[0]["conversation_id"], "portal:sensor");
    assert_eq!(cortex["watching"], json!([]));
    daemon.shutdown().await;
    assert_eq!(worker_states(home.path()).await, vec!["timed_out"]);
}

#[tokio::test]
async fn a_branch_past_its_wall_clock_limit_is_stopped() {
    let llm = FakeLlm::start().await;
    llm.push_when(
        "think hard",
        Scripted::ToolCalls(vec![
            ("branch".into(), json!({"prompt": "ponder forever"})),
            ("reply".into(), json!({"content": "Thinking."})),
        ]),
    );
    llm.push_when("[Branch task] ponder forever", Scripted::Hang);
    llm.push_when(RETRIGGER, reply("I could not finish that thought."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = with_defaults(
        &llm,
        "[defaults.cortex]\nstall_secs = 600\nbranch_timeout_secs = 1",
    );
    let daemon = TestDaemon::start(home.path(), &config).await;

    daemon.send("ponder", "think hard about it").await;
    daemon
        .wait_for_messages("ponder", |messages| replies(messages).len() == 2)
        .await;
    let text = FakeLlm::last_user_text(&requests_with(&llm, RETRIGGER)[0]);
    assert!(
        text.contains("stopped before it concluded: stopped by the cortex: ran longer than the branch limit of 1s"),
        "{text}"
    );
    let cortex = daemon.get("/api/agents/main/cortex").await;
    assert_eq!(cortex["actions"][0]["kind"], "timed_out", "{cortex}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_tool_that_keeps_failing_is_reported_in_the_channel_prompt() {
    let llm = FakeLlm::start().await;
    let task = "read the three reports";
    llm.push_when(
        "read the reports",
        Scripted::ToolCalls(vec![
            ("spawn_worker".into(), json!({"task": task})),
            ("reply".into(), json!({"content": "On it."})),
        ]),
    );
    llm.push_when(
        task,
        Scripted::ToolCalls(
            ["a", "b", "c"]
                .iter()
                .map(|name| {
                    (
                        "file_read".to_string(),
                        json!({"path": format!("missing-{name}.txt")}),
                    )
                })
                .collect(),
        ),
    );
    llm.push_when(
        task,
        Scripted::tool_call(
            "set_status",
            json!({"state": "failed", "message": "the reports are missing"}),
        ),
    );
    llm.push_when(RETRIGGER, reply("The reports are missing."));
    llm.push_when("try again", reply("I cannot read files right now."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    daemon.send("reports", "read the reports").await;
    daemon
        .wait_for_messages("reports", |messages| replies(messages).len() == 2)
        .await;
    let answer = daemon.send("reports", "try again").await;
    assert_eq!(answer["reply"], "I cannot read files right now.");
    let system = FakeLlm::system_text(&requests_with(&llm, "try again")[0]);
    assert!(system.contains("## Degraded"), "{system}");
    assert!(
        system.contains("tool `file_read` failed 3 times in a row"),
        "{system}"
    );
    let cortex = daemon.get("/api/agents/main/cortex").await;
    assert_eq!(cortex["tool_breakers"][0]["tool"], "file_read");
    assert_eq!(cortex["tool_breakers"][0]["consecutive_failures"], 3);
    let status = daemon.get("/api/status").await;
    assert!(
        status["agents"][0]["degraded"]
            .to_string()
            .contains("file_read"),
        "{status}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn an_idle_daemon_makes_no_llm_calls_and_maintains_only_after_a_change() {
    let llm = FakeLlm::start().await;
    llm.set_fallback(|_| reply("hello"));
    let home = tempfile::tempdir().expect("tempdir");
    let config = with_defaults(
        &llm,
        "[defaults.cortex]\nstall_secs = 1\nmaintenance_interval_secs = 1",
    );
    let daemon = TestDaemon::start(home.path(), &config).await;
    // Memory maintenance, which the agent registers with its cortex, is what runs.
    let runs = || async {
        let cortex = daemon.get("/api/agents/main/cortex").await;
        cortex["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .filter(|action| {
                action["kind"] == "maintenance"
                    && action["detail"]
                        .as_str()
                        .is_some_and(|detail| detail.starts_with("memory:"))
            })
            .count()
    };

    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(llm.request_count(), 0, "an idle daemon called the LLM");
    assert_eq!(runs().await, 0, "nothing changed, nothing to maintain");

    daemon.send("hello", "hi").await;
    assert_eq!(llm.request_count(), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while runs().await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no maintenance after the conversation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A tick may fall inside the turn (message received, answer not yet sent): at most two.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let maintained = runs().await;
    assert!(
        maintained <= 2,
        "{maintained} maintenance runs for one exchange"
    );
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(llm.request_count(), 1, "no LLM call without new input");
    assert_eq!(runs().await, maintained, "no maintenance without a change");
    let cortex = daemon.get("/api/agents/main/cortex").await;
    assert_eq!(cortex["maintenance"]["tasks"], json!(["memory"]));
    daemon.shutdown().await;
}
