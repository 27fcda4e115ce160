//! What reaches the model about tools: every tool of every process kind (channel, branch,
//! worker) arrives with its rendered description and a valid parameters schema, and the
//! `reply` tool's result says whether the reply was delivered.

use std::time::Duration;

use serde_json::{Value, json};
use spacebot::tools::check_parameters;

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{TestDaemon, config_for, reply, requests_with};

/// The tools offered in a request, as the OpenAI wire format carries them.
fn offered(request: &Value) -> Vec<(String, String, Value)> {
    request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|tool| {
            let function = &tool["function"];
            (
                function["name"].as_str().unwrap_or_default().to_string(),
                function["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                function["parameters"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_tool_of_every_process_kind_reaches_the_model_described() {
    let llm = FakeLlm::start().await;
    llm.push_when(
        "look into it",
        Scripted::ToolCalls(vec![
            ("branch".into(), json!({"prompt": "think about the plan"})),
            ("spawn_worker".into(), json!({"task": "list the workspace"})),
            ("reply".into(), json!({"content": "On it."})),
        ]),
    );
    llm.push_when(
        "[Branch task] think about the plan",
        Scripted::text("A plan."),
    );
    llm.push_when(
        "list the workspace",
        Scripted::tool_call("set_status", json!({"state": "done", "message": "empty"})),
    );
    llm.set_fallback(|_| reply("Noted."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    daemon.send("tools", "look into it").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while requests_with(&llm, "[Branch task]").is_empty()
        || requests_with(&llm, "list the workspace").is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "branch and worker never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kinds = [
        (
            "channel",
            requests_with(&llm, "look into it")[0].clone(),
            vec![
                "reply",
                "skip",
                "branch",
                "spawn_worker",
                "route",
                "cancel",
                "cron",
            ],
        ),
        (
            "branch",
            requests_with(&llm, "[Branch task]")[0].clone(),
            vec![
                "memory_save",
                "memory_recall",
                "memory_delete",
                "channel_recall",
                "spawn_worker",
                "web_fetch",
                "read_skill",
            ],
        ),
        (
            "worker",
            requests_with(&llm, "list the workspace")[0].clone(),
            vec![
                "shell",
                "file_read",
                "file_write",
                "file_edit",
                "file_list",
                "set_status",
                "web_fetch",
                "read_skill",
            ],
        ),
    ];
    for (kind, request, expected) in kinds {
        let tools = offered(&request);
        let names: Vec<&str> = tools.iter().map(|(name, _, _)| name.as_str()).collect();
        assert_eq!(names, expected, "{kind}");
        for (name, description, parameters) in &tools {
            assert!(
                description.len() > 20 && !description.contains("{{"),
                "{kind} tool `{name}` reaches the model with the description {description:?}"
            );
            if let Err(error) = check_parameters(parameters) {
                panic!("{kind} tool `{name}`: {error}");
            }
        }
    }
    daemon.shutdown().await;
}

#[tokio::test]
async fn the_reply_tool_reports_delivery_not_a_promise() {
    let llm = FakeLlm::start().await;
    llm.set_fallback(|request| {
        let text = FakeLlm::last_user_text(request);
        reply(&format!("echo: {text}"))
    });
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    daemon.send("delivery", "first").await;
    daemon.send("delivery", "second").await;
    // The second turn's history holds the first reply's result as it was recorded.
    let second = &requests_with(&llm, "second")[0];
    assert_eq!(FakeLlm::tool_results(second), vec!["delivered"]);
    daemon.shutdown().await;
}
