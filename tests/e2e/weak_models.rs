//! Weak and local models, through the real rig-core client against the fake: tool calls
//! written as text are run or corrected, thinking is stripped, bad arguments and unknown
//! tools get a correction instead of a failed turn, and a server that refuses `tools` puts
//! its model in tool-less mode, shown in status.

use std::time::Duration;

use serde_json::json;

use crate::fake_llm::{FakeLlm, Scripted};
use crate::fake_telegram::FakeTelegram;
use crate::harness::{TestDaemon, access, config_for, replies};

async fn answer_to(llm: &FakeLlm, text: &str) -> (String, Vec<String>) {
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(llm)).await;
    let answer = daemon.send("weak", text).await;
    let transcript = replies(&daemon.messages("weak").await);
    daemon.shutdown().await;
    (
        answer["reply"].as_str().unwrap_or_default().to_string(),
        transcript,
    )
}

#[tokio::test]
async fn a_hermes_tool_call_written_as_text_is_run() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::text(
        "<tool_call>\n{\"name\": \"reply\", \"arguments\": {\"content\": \"via hermes\"}}\n</tool_call>",
    ));
    let (answer, transcript) = answer_to(&llm, "hi").await;
    assert_eq!(answer, "via hermes");
    assert_eq!(transcript, vec!["via hermes".to_string()]);
}

#[tokio::test]
async fn a_mistral_tool_call_written_as_text_is_run() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::text(
        "[TOOL_CALLS][{\"name\": \"reply\", \"arguments\": {\"content\": \"via mistral\"}}]",
    ));
    assert_eq!(answer_to(&llm, "hi").await.0, "via mistral");
}

#[tokio::test]
async fn a_bare_json_tool_call_is_run() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::text(
        "{\"name\": \"reply\", \"arguments\": {\"content\": \"via json\"}}",
    ));
    assert_eq!(answer_to(&llm, "hi").await.0, "via json");
}

#[tokio::test]
async fn thinking_tags_are_stripped_from_the_reply() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::text(
        "<think>The user greets me.</think>Hello to you!",
    ));
    assert_eq!(answer_to(&llm, "hello").await.0, "Hello to you!");
}

#[tokio::test]
async fn a_malformed_text_call_gets_a_correction_then_runs() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::text(
        "Sure! <tool_call>{\"name\": \"reply\", \"arguments\": {\"content\": </tool_call>",
    ));
    llm.push(Scripted::text(
        "<tool_call>{\"name\": \"reply\", \"arguments\": {\"content\": \"fixed\"}}</tool_call>",
    ));
    let (answer, transcript) = answer_to(&llm, "hi").await;
    assert_eq!(answer, "fixed");
    assert!(transcript.iter().all(|reply| !reply.contains("tool_call")));
    let correction = FakeLlm::last_user_text(&llm.requests()[1]);
    assert!(correction.contains("could not be run"), "{correction}");
    assert!(correction.contains("not valid JSON"), "{correction}");
}

#[tokio::test]
async fn an_unknown_text_tool_gets_a_correction_at_most_twice() {
    let llm = FakeLlm::start().await;
    for _ in 0..3 {
        llm.push(Scripted::text(
            "On it. <tool_call>{\"name\": \"teleport\", \"arguments\": {}}</tool_call>",
        ));
    }
    let (answer, _) = answer_to(&llm, "beam me up").await;
    assert_eq!(answer, "On it.", "the readable part, never the syntax");
    assert_eq!(
        llm.request_count(),
        3,
        "two corrections, then the text is the answer"
    );
    let correction = FakeLlm::last_user_text(&llm.requests()[1]);
    assert!(
        correction.contains("no tool named `teleport`"),
        "{correction}"
    );
}

#[tokio::test]
async fn invalid_arguments_and_unknown_tools_get_a_correction_not_a_failed_turn() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::ToolCalls(vec![
        ("reply".into(), json!("{\"content\": ")),
        ("teleport".into(), json!({"to": "mars"})),
    ]));
    llm.push(Scripted::tool_call(
        "reply",
        json!({"content": "recovered"}),
    ));
    let (answer, _) = answer_to(&llm, "hi").await;
    assert_eq!(answer, "recovered");
    let results = FakeLlm::tool_results(&llm.requests()[1]);
    assert!(
        results.iter().all(|result| result.starts_with("error:")),
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .any(|result| result.contains("no tool named `teleport`"))
    );
}

#[tokio::test]
async fn a_server_that_refuses_tools_puts_the_model_in_tool_less_mode() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::status(
        400,
        "registry.ollama.ai/library/gemma:2b does not support tools",
    ));
    llm.push(Scripted::text("A plain answer."));
    llm.push(Scripted::text("Another plain answer."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    assert_eq!(daemon.send("plain", "hi").await["reply"], "A plain answer.");
    assert_eq!(
        daemon.send("plain", "again").await["reply"],
        "Another plain answer."
    );
    let requests = llm.requests();
    assert_eq!(requests.len(), 3);
    assert!(!FakeLlm::tool_names(&requests[0]).is_empty());
    assert!(FakeLlm::tool_names(&requests[1]).is_empty());
    assert!(FakeLlm::tool_names(&requests[2]).is_empty(), "remembered");
    let status = daemon.get("/api/status").await;
    assert_eq!(
        status["llm"]["tool_less_models"],
        json!(["fake/fake-model"])
    );
    daemon.shutdown().await;
}

/// While a weak model's answer streams into an edited Telegram message, neither its
/// thinking nor its tool-call syntax is ever shown.
#[tokio::test]
async fn streamed_drafts_never_show_thinking_or_call_syntax() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push(
        Scripted::text(
            "<think>plan the answer carefully first</think>Here it comes, the real answer. \
             <tool_call>{\"name\": \"skip\", \"arguments\": {\"reason\": \"x\"}}</tool_call>",
        )
        .paced(Duration::from_millis(60)),
    );
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    telegram.push_message(42, 42, "go");
    telegram
        .wait_for("the turn", |calls| {
            calls
                .iter()
                .any(|call| call.method == "DeleteMessage" || call.method == "SendMessage")
        })
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shown: Vec<String> = telegram
        .sent()
        .into_iter()
        .chain(telegram.edits())
        .filter_map(|body| body["text"].as_str().map(str::to_string))
        .collect();
    for text in &shown {
        assert!(
            !text.contains("think") && !text.contains("tool_call") && !text.contains('{'),
            "{text}"
        );
    }
    daemon.shutdown().await;
}
