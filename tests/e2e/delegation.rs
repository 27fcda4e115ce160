//! Delegation: branches and workers run beside the channel, report back through re-triggers
//! (batched and capped), workers stay inside their workspace, bursts coalesce, and the
//! compactor keeps history in the window without blocking the channel.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{
    TestDaemon, config_for, replies, reply, requests_with, spawn_worker_on, with_defaults,
    worker_states,
};

const BRANCH: &str = "You are a branch";
const WORKER: &str = "You are a worker";
const RETRIGGER: &str = "Background work finished";

fn is_worker(request: &Value) -> bool {
    FakeLlm::system_text(request).contains(WORKER)
}

/// The first `worker:…` id listed in a channel request's status block.
fn worker_id_in_status(request: &Value) -> Option<String> {
    let system = FakeLlm::system_text(request);
    let start = system.find("worker:")?;
    Some(system[start..].chars().take("worker:".len() + 36).collect())
}

#[tokio::test]
async fn a_branch_thinks_in_the_background_and_its_conclusion_is_relayed() {
    let llm = FakeLlm::start().await;
    llm.push_when(
        "how tall is the tower",
        Scripted::ToolCalls(vec![
            (
                "branch".into(),
                json!({"prompt": "work out the tower's height"}),
            ),
            (
                "reply".into(),
                json!({"content": "Let me think about that."}),
            ),
        ]),
    );
    llm.push_when(
        "[Branch task] work out the tower's height",
        Scripted::text("The tower is 324 metres tall."),
    );
    llm.push_when(RETRIGGER, reply("It is 324 metres tall."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    let first = daemon.send("tower", "how tall is the tower?").await;
    assert_eq!(first["reply"], "Let me think about that.");
    let transcript = daemon
        .wait_for_messages("tower", |messages| replies(messages).len() == 2)
        .await;
    assert_eq!(
        replies(&transcript),
        vec!["Let me think about that.", "It is 324 metres tall."]
    );
    let branch_request = &requests_with(&llm, "[Branch task]")[0];
    assert!(FakeLlm::system_text(branch_request).contains(BRANCH));
    assert!(
        branch_request["messages"]
            .to_string()
            .contains("how tall is the tower?"),
        "the branch is a fork of the channel's context"
    );
    assert_eq!(
        FakeLlm::tool_names(branch_request),
        vec![
            "memory_save",
            "memory_recall",
            "memory_delete",
            "channel_recall",
            "spawn_worker",
            "web_fetch",
            "read_skill"
        ]
    );
    let retrigger = &requests_with(&llm, RETRIGGER)[0];
    assert!(
        FakeLlm::last_user_text(retrigger).contains("concluded: The tower is 324 metres tall."),
        "{}",
        FakeLlm::last_user_text(retrigger)
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_worker_writes_a_file_and_the_channel_reports_it() {
    let llm = FakeLlm::start().await;
    let task = "create notes/hello.txt containing hi there";
    spawn_worker_on("make me a file", &llm, task, "A worker is on it.");
    llm.push_when(
        task,
        Scripted::tool_call(
            "file_write",
            json!({"path": "notes/hello.txt", "content": "hi there"}),
        ),
    );
    llm.push_when(
        task,
        Scripted::tool_call(
            "set_status",
            json!({"state": "done", "message": "wrote notes/hello.txt (8 bytes)"}),
        ),
    );
    llm.push_when(RETRIGGER, reply("Done: notes/hello.txt is written."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    daemon.send("files", "make me a file").await;
    let transcript = daemon
        .wait_for_messages("files", |messages| replies(messages).len() == 2)
        .await;
    assert_eq!(replies(&transcript)[1], "Done: notes/hello.txt is written.");
    let written = home.path().join("agents/main/workspace/notes/hello.txt");
    assert_eq!(
        std::fs::read_to_string(&written).expect("file written"),
        "hi there"
    );
    let worker_requests: Vec<Value> = llm.requests().into_iter().filter(is_worker).collect();
    assert_eq!(worker_requests.len(), 2);
    assert_eq!(
        FakeLlm::tool_names(&worker_requests[0]),
        vec![
            "shell",
            "file_read",
            "file_write",
            "file_edit",
            "file_list",
            "set_status",
            "web_fetch",
            "read_skill"
        ]
    );
    let retrigger = FakeLlm::last_user_text(&requests_with(&llm, RETRIGGER)[0]);
    assert!(
        retrigger.contains("succeeded: wrote notes/hello.txt"),
        "{retrigger}"
    );
    let database = home.path().join("agents/main/spacebot.db");
    daemon.shutdown().await;
    let pool = crate::harness::open_database(&database).await;
    let (state, transcript): (String, String) =
        sqlx::query_as("SELECT state, transcript FROM worker_runs")
            .fetch_one(&pool)
            .await
            .expect("one worker run");
    assert_eq!(state, "succeeded");
    assert!(transcript.contains("file_write"), "{transcript}");
}

#[tokio::test]
async fn the_channel_keeps_answering_while_a_slow_worker_runs() {
    let llm = FakeLlm::start().await;
    let task = "count to a million slowly";
    spawn_worker_on("start the slow job", &llm, task, "Started.");
    llm.push_when(
        task,
        Scripted::tool_call("set_status", json!({"state": "done", "message": "counted"}))
            .delayed(Duration::from_secs(3)),
    );
    llm.push_when(
        "are you still there",
        reply("Yes, the job is still running."),
    );
    llm.push_when(RETRIGGER, reply("The slow job is done."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    daemon.send("slow", "start the slow job").await;
    let answer = daemon.send("slow", "are you still there?").await;
    assert_eq!(answer["reply"], "Yes, the job is still running.");
    let processes = daemon.get("/api/agents/main/processes").await;
    let running = processes["processes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(running.len(), 1, "{processes}");
    assert_eq!(running[0]["kind"], "worker");
    assert_eq!(running[0]["description"], task);
    // The second turn's status block showed the running worker.
    let second = &requests_with(&llm, "are you still there")[0];
    assert!(
        FakeLlm::system_text(second).contains("Running in the background"),
        "{}",
        FakeLlm::system_text(second)
    );
    let transcript = daemon
        .wait_for_messages("slow", |messages| replies(messages).len() == 3)
        .await;
    assert_eq!(replies(&transcript)[2], "The slow job is done.");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_timed_out_worker_ends_once_and_the_channel_hears_once() {
    let llm = FakeLlm::start().await;
    let task = "wait for a signal that never comes";
    spawn_worker_on("start waiting", &llm, task, "Waiting.");
    llm.push_when(task, Scripted::Hang);
    llm.push_when(RETRIGGER, reply("The wait timed out."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon =
        TestDaemon::start(home.path(), &with_defaults(&llm, "worker_timeout_secs = 1")).await;

    daemon.send("timeout", "start waiting").await;
    daemon
        .wait_for_messages("timeout", |messages| replies(messages).len() == 2)
        .await;
    // Give a second delivery, if there were one, time to arrive.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let retriggers = requests_with(&llm, RETRIGGER);
    assert_eq!(retriggers.len(), 1, "the channel hears of it once");
    let text = FakeLlm::last_user_text(&retriggers[0]);
    assert!(text.contains("timed_out"), "{text}");
    assert_eq!(replies(&daemon.messages("timeout").await).len(), 2);
    daemon.shutdown().await;
    assert_eq!(worker_states(home.path()).await, vec!["timed_out"]);
}

#[tokio::test]
async fn a_cancelled_worker_ends_once_as_cancelled() {
    let llm = FakeLlm::start().await;
    let task = "watch the logs forever";
    spawn_worker_on("watch the logs", &llm, task, "Watching.");
    llm.push_when(task, Scripted::Hang);
    llm.push_when(RETRIGGER, Scripted::tool_call("skip", json!({})));
    // The channel finds the worker's id in its status block and cancels it.
    llm.set_fallback(|request| match worker_id_in_status(request) {
        Some(id) if FakeLlm::last_user_text(request).contains("stop watching") => {
            Scripted::ToolCalls(vec![
                ("cancel".into(), json!({"process_id": id})),
                ("reply".into(), json!({"content": "Stopped."})),
            ])
        }
        _ => Scripted::status(500, "unexpected request"),
    });
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    daemon.send("cancel", "watch the logs").await;
    llm.wait_for_requests(2, Duration::from_secs(5)).await;
    let answer = daemon.send("cancel", "stop watching").await;
    assert_eq!(answer["reply"], "Stopped.");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while requests_with(&llm, RETRIGGER).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no re-trigger after cancel"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let retriggers = requests_with(&llm, RETRIGGER);
    assert_eq!(retriggers.len(), 1);
    assert!(FakeLlm::last_user_text(&retriggers[0]).contains("cancelled"));
    let processes = daemon.get("/api/agents/main/processes").await;
    assert_eq!(processes["processes"], json!([]));
    daemon.shutdown().await;
}

#[tokio::test]
async fn results_are_batched_into_one_retrigger() {
    let llm = FakeLlm::start().await;
    let mut calls: Vec<(String, Value)> = (1..=4)
        .map(|index| {
            (
                "branch".to_string(),
                json!({"prompt": format!("question {index}")}),
            )
        })
        .collect();
    calls.push(("reply".into(), json!({"content": "Four branches started."})));
    llm.push_when("ask four things", Scripted::ToolCalls(calls));
    for index in 1..=4 {
        llm.push_when(
            &format!("[Branch task] question {index}"),
            Scripted::text(format!("answer {index}")),
        );
    }
    llm.push_when(RETRIGGER, reply("All four answered."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    daemon.send("batch", "ask four things").await;
    daemon
        .wait_for_messages("batch", |messages| replies(messages).len() == 2)
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let retriggers = requests_with(&llm, RETRIGGER);
    assert_eq!(retriggers.len(), 1, "four quick results, one re-trigger");
    let text = FakeLlm::last_user_text(&retriggers[0]);
    for index in 1..=4 {
        assert!(text.contains(&format!("answer {index}")), "{text}");
    }
    daemon.shutdown().await;
}

#[tokio::test]
async fn retriggers_are_capped_and_later_results_wait_for_the_user() {
    let llm = FakeLlm::start().await;
    let mut calls: Vec<(String, Value)> = (1..=5)
        .map(|index| {
            (
                "branch".to_string(),
                json!({"prompt": format!("slow question {index}")}),
            )
        })
        .collect();
    calls.push(("reply".into(), json!({"content": "Five branches started."})));
    llm.push_when("ask five things", Scripted::ToolCalls(calls));
    for index in 1..=5u64 {
        // Results a second apart: each would be its own re-trigger.
        llm.push_when(
            &format!("[Branch task] slow question {index}"),
            Scripted::text(format!("late answer {index}"))
                .delayed(Duration::from_millis(1000 * (index - 1))),
        );
    }
    for _ in 0..5 {
        llm.push_when(RETRIGGER, Scripted::tool_call("skip", json!({})));
    }
    llm.push_when("anything else", reply("That is all."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(
        home.path(),
        &with_defaults(&llm, "retrigger_batch_ms = 200"),
    )
    .await;

    daemon.send("capped", "ask five things").await;
    llm.wait_for_requests(1 + 5 + 3, Duration::from_secs(15))
        .await;
    // The last two results arrive after the cap; they must not re-trigger.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(requests_with(&llm, RETRIGGER).len(), 3);
    let answer = daemon.send("capped", "anything else?").await;
    assert_eq!(answer["reply"], "That is all.");
    let user_turn = &requests_with(&llm, "anything else")[0];
    let system = FakeLlm::system_text(user_turn);
    assert!(system.contains("Finished since your last turn"), "{system}");
    assert!(system.contains("late answer 4"), "{system}");
    assert!(system.contains("late answer 5"), "{system}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn worker_file_tools_refuse_escapes_and_the_shell_has_no_secrets() {
    let llm = FakeLlm::start().await;
    let task = "inspect the environment";
    spawn_worker_on("inspect", &llm, task, "Inspecting.");
    llm.push_when(
        task,
        Scripted::ToolCalls(vec![
            ("file_read".into(), json!({"path": "../../../etc/passwd"})),
            ("file_read".into(), json!({"path": "etc-link/passwd"})),
            (
                "file_write".into(),
                json!({"path": "etc-link/evil", "content": "x"}),
            ),
            (
                "shell".into(),
                json!({"command": "env; echo key=sk-test-secret-key-12345"}),
            ),
        ]),
    );
    llm.push_when(
        task,
        Scripted::tool_call(
            "set_status",
            json!({"state": "done", "message": "inspected"}),
        ),
    );
    llm.push_when(RETRIGGER, Scripted::tool_call("skip", json!({})));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm).replace(
        "api_key = \"test-key\"",
        "api_key = \"sk-test-secret-key-12345\"",
    );
    let workspace = home.path().join("agents/main/workspace");
    std::fs::create_dir_all(&workspace).expect("workspace");
    std::os::unix::fs::symlink("/etc", workspace.join("etc-link")).expect("symlink");
    let daemon = TestDaemon::start(home.path(), &config).await;

    daemon.send("inspect", "inspect").await;
    let worker_requests = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let requests: Vec<Value> = llm.requests().into_iter().filter(is_worker).collect();
            if requests.len() >= 2 {
                break requests;
            }
            assert!(tokio::time::Instant::now() < deadline, "worker stalled");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    let results: Vec<String> = worker_requests[1]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|message| message["role"] == "tool")
        .map(|message| message["content"].to_string())
        .collect();
    assert_eq!(results.len(), 4, "{results:?}");
    assert!(
        results[0].contains("outside the workspace"),
        "{}",
        results[0]
    );
    // A symlink in the workspace is never followed, wherever it points.
    for refused in &results[1..3] {
        assert!(refused.contains("symlink"), "{refused}");
    }
    assert!(!workspace.join("../evil").exists());
    let shell = &results[3];
    assert!(shell.contains("exit code: 0"), "{shell}");
    assert!(
        !shell.contains("sk-test-secret-key-12345"),
        "secret leaked: {shell}"
    );
    assert!(shell.contains("key=[redacted]"), "{shell}");
    // Only the allow-listed variables reach the shell; the test process's are gone.
    assert!(!shell.contains("CARGO_MANIFEST_DIR"), "{shell}");
    assert!(!shell.contains("RUST_BACKTRACE"), "{shell}");
    assert!(shell.contains("HOME="), "{shell}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_group_burst_coalesces_but_a_direct_message_does_not_wait() {
    let llm = FakeLlm::start().await;
    llm.set_fallback(|request| {
        let text = FakeLlm::last_user_text(request);
        reply(&format!("seen: {}", text.len()))
    });
    let home = tempfile::tempdir().expect("tempdir");
    let config = with_defaults(
        &llm,
        "[defaults.coalesce]\ndebounce_ms = 700\nmax_wait_ms = 3000",
    );
    let daemon = TestDaemon::start(home.path(), &config).await;

    let post_group = |sender: &'static str, content: &'static str| {
        let http = daemon.http.clone();
        let url = daemon.url("/api/agents/main/messages");
        async move {
            let response = http
                .post(url)
                .json(&json!({"content": content, "conversation": "room", "sender": sender, "group": true}))
                .send()
                .await
                .expect("post");
            assert_eq!(response.status(), 202);
        }
    };
    post_group("alice", "lunch at noon?").await;
    post_group("bob", "noon works").await;
    post_group("carol", "I'll bring cake").await;
    // A direct message sent after the burst is answered before the burst's turn starts.
    let direct = daemon.send("dm", "a quick question").await;
    assert!(
        direct["reply"]
            .as_str()
            .is_some_and(|reply| reply.starts_with("seen"))
    );
    assert!(
        requests_with(&llm, "lunch at noon").is_empty(),
        "the burst waited for the debounce"
    );
    daemon
        .wait_for_messages("room", |messages| replies(messages).len() == 1)
        .await;
    let burst = requests_with(&llm, "lunch at noon");
    assert_eq!(burst.len(), 1, "one turn for the whole burst");
    assert_eq!(
        FakeLlm::last_user_text(&burst[0]),
        "[alice]: lunch at noon?\n\n[bob]: noon works\n\n[carol]: I'll bring cake"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn compaction_summarises_in_the_background_and_keeps_tool_pairs() {
    let llm = FakeLlm::start().await;
    llm.set_fallback(|request| {
        if FakeLlm::system_text(request).contains("Summarise the earlier part") {
            return Scripted::text("SUMMARY: the user described their garden at length.")
                .delayed(Duration::from_secs(2));
        }
        reply(&format!(
            "Noted: {}",
            FakeLlm::last_user_text(request)
                .chars()
                .take(200)
                .collect::<String>()
        ))
    });
    let home = tempfile::tempdir().expect("tempdir");
    let config = with_defaults(&llm, "context_window = 6000");
    let daemon = TestDaemon::start(home.path(), &config).await;
    let long = "The garden has tomatoes, beans, squash and a very old apple tree. ".repeat(6);

    let mut turns = 0;
    while !llm
        .requests()
        .iter()
        .any(|request| FakeLlm::system_text(request).contains("Summarise the earlier part"))
    {
        turns += 1;
        assert!(turns < 30, "compaction never started");
        daemon.send("garden", &format!("{turns}: {long}")).await;
        // The compactor looks after the answer is delivered.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The summary takes two seconds; the channel keeps answering meanwhile.
    let answer = daemon.send("garden", "still there?").await;
    assert_eq!(answer["reply"], "Noted: still there?");
    let database = home.path().join("agents/main/spacebot.db");
    let pool = crate::harness::open_database(&database).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let summaries: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM context_items WHERE kind = 'summary'")
                .fetch_one(&pool)
                .await
                .expect("query");
        if summaries > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "summary never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every tool result still follows the call that produced it.
    let items: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, body FROM context_items ORDER BY seq")
            .fetch_all(&pool)
            .await
            .expect("items");
    assert_eq!(
        items[0].0, "summary",
        "the summary stands where the span was"
    );
    for (index, (kind, body)) in items.iter().enumerate() {
        if kind == "message" && body.contains("\"toolresult\"") {
            let previous = &items[index - 1].1;
            assert!(
                previous.contains("\"function\""),
                "orphaned tool result at {index}"
            );
        }
    }
    pool.close().await;
    daemon.shutdown().await;

    // A restarted channel reloads the compacted history.
    let daemon = TestDaemon::start(home.path(), &config).await;
    daemon.send("garden", "what do I grow?").await;
    let last = llm
        .requests()
        .into_iter()
        .rfind(|request| FakeLlm::last_user_text(request).contains("what do I grow"))
        .expect("request");
    assert!(
        last["messages"]
            .to_string()
            .contains("[Summary of the earlier conversation]"),
        "{}",
        last["messages"]
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn an_interactive_worker_asks_and_gets_a_follow_up_through_route() {
    let llm = FakeLlm::start().await;
    let task = "paint the fence in the colour the user picks";
    llm.push_when(
        "paint my fence",
        Scripted::ToolCalls(vec![
            (
                "spawn_worker".into(),
                json!({"task": task, "interactive": true}),
            ),
            ("reply".into(), json!({"content": "A painter is starting."})),
        ]),
    );
    // The worker asks (plain text), then finishes once it has the answer.
    llm.push_when(task, Scripted::text("Which colour should the fence be?"));
    llm.push_when(
        "the user picked green",
        Scripted::tool_call(
            "set_status",
            json!({"state": "done", "message": "painted the fence green"}),
        ),
    );
    llm.set_fallback(|request| {
        let text = FakeLlm::last_user_text(request);
        if text.contains("is waiting for a follow-up") {
            // Relay the worker's question to the user.
            return reply("The painter asks: which colour?");
        }
        if text.contains("green please") {
            let id = worker_id_in_status(request).unwrap_or_default();
            return Scripted::ToolCalls(vec![
                (
                    "route".into(),
                    json!({"worker_id": id, "message": "the user picked green"}),
                ),
                ("reply".into(), json!({"content": "Passed on: green."})),
            ]);
        }
        if text.contains("painted the fence green") {
            return reply("The fence is green now.");
        }
        Scripted::status(500, "unexpected request")
    });
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    daemon.send("fence", "paint my fence").await;
    daemon
        .wait_for_messages("fence", |messages| replies(messages).len() == 2)
        .await;
    let answer = daemon.send("fence", "green please").await;
    assert_eq!(answer["reply"], "Passed on: green.");
    let transcript = daemon
        .wait_for_messages("fence", |messages| replies(messages).len() == 4)
        .await;
    assert_eq!(
        replies(&transcript),
        vec![
            "A painter is starting.",
            "The painter asks: which colour?",
            "Passed on: green.",
            "The fence is green now."
        ]
    );
    let processes = daemon.get("/api/agents/main/processes").await;
    assert_eq!(processes["processes"], json!([]));
    daemon.shutdown().await;
}
