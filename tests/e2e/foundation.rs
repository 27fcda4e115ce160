//! A chat message answered end to end: delivery paths, skip, retries and fallback, no
//! provider, concurrency, queueing, auth and the event stream.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{TestDaemon, config_for, replies};

#[tokio::test]
async fn reply_tool_answers_through_the_http_api() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::tool_call(
        "reply",
        json!({"content": "Hello, Alice!"}),
    ));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    let answer = daemon.send("alice", "hi, I am Alice").await;
    assert_eq!(answer["reply"], "Hello, Alice!");
    assert_eq!(answer["conversation_id"], "portal:alice");

    let requests = llm.requests();
    assert_eq!(requests.len(), 1, "one LLM call: the reply ends the turn");
    let request = &requests[0];
    assert_eq!(request["model"], "fake-model");
    assert_eq!(
        FakeLlm::tool_names(request),
        vec![
            "reply",
            "skip",
            "branch",
            "spawn_worker",
            "route",
            "cancel",
            "cron",
            "react",
            "send_file"
        ]
    );
    assert_eq!(FakeLlm::last_user_text(request), "hi, I am Alice");
    let system = request["messages"][0].to_string();
    assert!(
        system.contains("# Soul"),
        "identity files reach the prompt: {system}"
    );
    assert!(system.contains("portal:alice"), "{system}");

    // The answer is recorded right after it is delivered.
    let transcript = daemon
        .wait_for_messages("alice", |messages| messages.len() == 2)
        .await;
    assert_eq!(transcript[0]["status"], "answered");
    assert_eq!(replies(&transcript), vec!["Hello, Alice!"]);
    daemon.shutdown().await;
}

#[tokio::test]
async fn final_text_is_the_answer_when_no_tool_is_called() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::text("plain text answer"));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let answer = daemon.send("plain", "hello").await;
    assert_eq!(answer["reply"], "plain text answer");
    daemon.shutdown().await;
}

#[tokio::test]
async fn reply_tool_wins_over_text_and_is_delivered_once() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::TextAndToolCalls(
        "thinking out loud".into(),
        vec![
            ("reply".into(), json!({"content": "the real answer"})),
            ("reply".into(), json!({"content": "a second answer"})),
        ],
    ));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let answer = daemon.send("once", "question").await;
    assert_eq!(answer["reply"], "the real answer");
    daemon
        .wait_for_messages("once", |messages| !replies(messages).is_empty())
        .await;
    // Give a second delivery, if there were one, time to land.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let transcript = daemon.messages("once").await;
    assert_eq!(
        replies(&transcript),
        vec!["the real answer"],
        "never both, never twice"
    );
    assert_eq!(llm.request_count(), 1);
    daemon.shutdown().await;
}

#[tokio::test]
async fn skip_sends_nothing() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::tool_call(
        "skip",
        json!({"reason": "just an acknowledgement"}),
    ));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let answer = daemon.send("quiet", "ok thanks").await;
    assert!(answer["reply"].is_null(), "{answer}");
    // The skip is delivered (answering the waiting request) before it is recorded.
    let transcript = daemon
        .wait_for_messages("quiet", |messages| {
            messages
                .first()
                .is_some_and(|message| message["status"] != "pending")
        })
        .await;
    assert_eq!(transcript.len(), 1);
    assert_eq!(transcript[0]["status"], "skipped");
    daemon.shutdown().await;
}

#[tokio::test]
async fn unknown_tools_and_bad_arguments_are_fed_back_to_the_model() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::tool_call("launch_rockets", json!({})));
    llm.push(Scripted::tool_call("reply", json!({"wrong": "field"})));
    llm.push(Scripted::tool_call(
        "reply",
        json!({"content": "recovered"}),
    ));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let answer = daemon.send("recover", "do something").await;
    assert_eq!(answer["reply"], "recovered");
    let requests = llm.requests();
    assert_eq!(requests.len(), 3);
    let second = requests[1]["messages"].to_string();
    assert!(
        second.contains("no tool named `launch_rockets`"),
        "{second}"
    );
    let third = requests[2]["messages"].to_string();
    assert!(third.contains("invalid arguments for `reply`"), "{third}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn server_errors_are_retried_then_the_fallback_answers() {
    let llm = FakeLlm::start().await;
    // max_retries = 2: three attempts on the primary, then the fallback model.
    for _ in 0..3 {
        llm.push(Scripted::status(500, "primary is down"));
    }
    llm.push(Scripted::tool_call(
        "reply",
        json!({"content": "from the fallback"}),
    ));
    let config = config_for(&llm).replace(
        "channel = \"fake/fake-model\"",
        "channel = \"fake/fake-model\"\nfallbacks = { \"fake/fake-model\" = [\"fake/backup-model\"] }",
    );
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config).await;
    let answer = daemon.send("fallback", "hello").await;
    assert_eq!(answer["reply"], "from the fallback");
    let models: Vec<String> = llm
        .requests()
        .iter()
        .map(|request| request["model"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        models,
        vec!["fake-model", "fake-model", "fake-model", "backup-model"]
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_failed_turn_tells_the_user_with_the_provider_error() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::status(401, "invalid api key sk-test"));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let answer = daemon.send("denied", "hello").await;
    let reply = answer["reply"].as_str().expect("an error reply");
    assert!(reply.contains("401"), "{reply}");
    assert!(
        reply.contains("invalid api key"),
        "provider body kept: {reply}"
    );
    assert_eq!(llm.request_count(), 1, "a 401 is not retried");
    let transcript = daemon
        .wait_for_messages("denied", |messages| messages.len() == 2)
        .await;
    assert_eq!(transcript[0]["status"], "failed");
    daemon.shutdown().await;
}

#[tokio::test]
async fn garbage_and_timeouts_are_retried() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::Garbage);
    llm.push(Scripted::status(429, "slow down"));
    llm.push(Scripted::tool_call(
        "reply",
        json!({"content": "third time lucky"}),
    ));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let answer = daemon.send("flaky", "hello").await;
    assert_eq!(answer["reply"], "third time lucky");
    assert_eq!(llm.request_count(), 3);
    daemon.shutdown().await;
}

#[tokio::test]
async fn without_a_provider_the_daemon_runs_and_says_what_to_configure() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = "[[agents]]\nid = \"main\"\n";
    let daemon = TestDaemon::start(home.path(), config).await;
    let status = daemon.get("/api/status").await;
    assert_eq!(status["llm"]["configured"], false);
    assert!(
        status["llm"]["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("OPENAI_API_KEY")
    );
    let answer = daemon.send("nokey", "hello?").await;
    let reply = answer["reply"].as_str().expect("a reply");
    assert!(reply.contains("OPENAI_API_KEY"), "{reply}");
    assert!(reply.contains("ANTHROPIC_API_KEY"), "{reply}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn environment_variables_configure_a_provider_when_the_config_names_none() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::text("configured from the environment"));
    let home = tempfile::tempdir().expect("tempdir");
    let environment = HashMap::from([
        ("OPENAI_BASE_URL".to_string(), llm.openai_base_url()),
        (
            "SPACEBOT_MODEL".to_string(),
            "openai/local-model".to_string(),
        ),
    ]);
    let daemon =
        TestDaemon::start_with_environment(home.path(), "[[agents]]\nid = \"main\"\n", environment)
            .await;
    let answer = daemon.send("env", "hello").await;
    assert_eq!(answer["reply"], "configured from the environment");
    assert_eq!(llm.requests()[0]["model"], "local-model");
    daemon.shutdown().await;
}

#[tokio::test]
async fn anthropic_provider_answers() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::tool_call(
        "reply",
        json!({"content": "hello from claude"}),
    ));
    let config = format!(
        "[llm.providers.claude]\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key = \"k\"\n\n\
         [defaults.routing]\nchannel = \"claude/claude-test\"\n",
        llm.anthropic_base_url()
    );
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config).await;
    let answer = daemon.send("claude", "hi").await;
    assert_eq!(answer["reply"], "hello from claude");
    let request = &llm.requests()[0];
    assert_eq!(request["model"], "claude-test");
    assert!(
        request["max_tokens"].as_u64().is_some(),
        "anthropic needs max_tokens"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn two_conversations_run_concurrently_while_one_waits_on_a_slow_llm() {
    let llm = FakeLlm::start().await;
    llm.push_when(
        "slow question",
        Scripted::text("slow answer").delayed(Duration::from_secs(3)),
    );
    llm.push_when("fast question", Scripted::text("fast answer"));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    daemon.post("slow", "slow question").await;
    llm.wait_for_requests(1, Duration::from_secs(5)).await;
    let started = Instant::now();
    let fast = daemon.send("fast", "fast question").await;
    assert_eq!(fast["reply"], "fast answer");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the fast conversation waited for the slow one: {:?}",
        started.elapsed()
    );
    assert!(
        replies(&daemon.messages("slow").await).is_empty(),
        "slow is still thinking"
    );
    let slow = daemon
        .wait_for_messages("slow", |messages| !replies(messages).is_empty())
        .await;
    assert_eq!(replies(&slow), vec!["slow answer"]);
    daemon.shutdown().await;
}

#[tokio::test]
async fn messages_arriving_during_a_turn_are_queued_for_the_next_one() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::text("first answer").delayed(Duration::from_millis(800)));
    llm.push(Scripted::text("answer to both followups"));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    daemon.post("queue", "first").await;
    llm.wait_for_requests(1, Duration::from_secs(5)).await;
    daemon.post("queue", "second").await;
    daemon.post("queue", "third").await;
    let transcript = daemon
        .wait_for_messages("queue", |messages| replies(messages).len() == 2)
        .await;
    assert_eq!(
        replies(&transcript),
        vec!["first answer", "answer to both followups"]
    );
    let requests = llm.requests();
    assert_eq!(
        requests.len(),
        2,
        "one turn at a time, the queue batched into one"
    );
    assert_eq!(FakeLlm::last_user_text(&requests[1]), "second\n\nthird");
    let history = requests[1]["messages"].to_string();
    assert!(
        history.contains("first answer"),
        "history carries the first turn: {history}"
    );
    assert!(
        transcript
            .iter()
            .all(|message| message["status"] != "pending")
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn token_usage_is_recorded_per_call() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::text("counted"));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    daemon.send("usage", "count me").await;
    let database = home.path().join("agents/main/spacebot.db");
    daemon.shutdown().await;
    let pool = crate::harness::open_database(&database).await;
    let rows: Vec<(String, String, i64, i64)> =
        sqlx::query_as("SELECT process_type, model, input_tokens, output_tokens FROM token_usage")
            .fetch_all(&pool)
            .await
            .expect("query");
    assert_eq!(
        rows,
        vec![("channel".to_string(), "fake/fake-model".to_string(), 10, 5)]
    );
}

#[tokio::test]
async fn bearer_token_guards_everything_but_health() {
    let llm = FakeLlm::start().await;
    let config = format!("{}\n[api]\ntoken = \"s3cret\"\n", config_for(&llm));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config).await;
    let health = daemon
        .http
        .get(daemon.url("/api/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    for path in ["/api/status", "/v1/models", "/api/events"] {
        let denied = daemon
            .http
            .get(daemon.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(denied.status(), 401, "{path}");
    }
    let wrong = daemon
        .http
        .get(daemon.url("/api/status"))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), 401);
    let allowed = daemon
        .http
        .get(daemon.url("/api/status"))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("request");
    assert_eq!(allowed.status(), 200);
    daemon.shutdown().await;
}

#[tokio::test]
async fn the_event_stream_shows_a_conversation_live() {
    use futures::StreamExt;
    let llm = FakeLlm::start().await;
    llm.push(Scripted::tool_call("reply", json!({"content": "streamed"})));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let response = daemon
        .http
        .get(daemon.url("/api/events?agent=main&conversation=portal:live"))
        .send()
        .await
        .expect("subscribe");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    daemon.post("live", "are you there").await;
    let mut seen = String::new();
    let collected = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(chunk)) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: turn_completed") {
                break;
            }
        }
    })
    .await;
    assert!(collected.is_ok(), "events: {seen}");
    let mut order: Vec<&str> = seen
        .lines()
        .filter_map(|line| line.strip_prefix("event: "))
        .collect();
    // The draft is published at most ten times a second: once or more.
    order.dedup();
    assert_eq!(
        order,
        vec![
            "message_received",
            "reply_streaming",
            "tool_started",
            "tool_completed",
            "message_sent",
            "turn_completed"
        ]
    );
    assert!(seen.contains("\"content\":\"streamed\""), "{seen}");
    daemon.shutdown().await;
}

/// An API caller hears its answer only once the turn is recorded: the transcript it reads
/// right after holds the answer, and the message is closed.
#[tokio::test]
async fn the_transcript_holds_an_answer_as_soon_as_the_caller_has_it() {
    let llm = FakeLlm::start().await;
    llm.set_fallback(|request| {
        let text = FakeLlm::last_user_text(request);
        Scripted::tool_call("reply", json!({"content": format!("echo: {text}")}))
    });
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    for round in 0..30 {
        let answer = daemon.send("recorded", &format!("message {round}")).await;
        assert_eq!(answer["reply"], format!("echo: message {round}"));
        let transcript = daemon.messages("recorded").await;
        assert_eq!(transcript.len(), 2 * (round + 1), "{transcript:#?}");
        assert_eq!(transcript[2 * round]["status"], "answered");
    }
    daemon.shutdown().await;
}
