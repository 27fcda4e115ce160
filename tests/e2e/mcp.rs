//! MCP servers from the config, through the real `rmcp` client: a test server over stdio
//! (`tests/support/mcp_server.py`, started by the daemon) and the same server over
//! streamable HTTP on 127.0.0.1. Workers list and call their tools and read the results; a
//! killed server is restarted; a changed tool list reaches the model; a member's turn is
//! never offered (nor allowed) a tool that acts; a reload starts added servers and stops
//! removed ones.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fake_llm::{FakeLlm, Scripted};
use crate::fake_telegram::FakeTelegram;
use crate::harness::{
    TestDaemon, access, config_for, reply, requests_with, spawn_worker_on, wait_for_replies,
};

fn server_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mcp_server.py")
}

/// A `[[mcp_servers]]` entry for the test server over stdio, logging to `log`.
fn stdio_server(name: &str, log: &Path) -> String {
    format!(
        "\n[[mcp_servers]]\nname = \"{name}\"\ncommand = \"python3\"\nargs = [{:?}]\n\
         env = {{ MCP_LOG = {:?} }}\n",
        server_script().display().to_string(),
        log.display().to_string(),
    )
}

/// What reached the server: its starts and calls, one JSON object each.
fn server_log(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn calls_of(log: &Path, tool: &str) -> usize {
    server_log(log)
        .iter()
        .filter(|entry| entry["call"] == tool)
        .count()
}

/// The status of the MCP server `name`, once `ready` holds for it.
async fn wait_for_server(daemon: &TestDaemon, name: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = daemon.get("/api/status").await;
        let server = status["mcp_servers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|server| server["name"] == name)
            .cloned()
            .unwrap_or(Value::Null);
        if ready(&server) {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "the MCP server `{name}` never got there: {server}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn running(server: &Value) -> bool {
    server["state"] == "running"
}

/// The requests of the worker on `task` once there are `count` of them.
async fn worker_requests(llm: &FakeLlm, task: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let requests = requests_with(llm, task);
        if requests.len() >= count {
            return requests;
        }
        assert!(
            Instant::now() < deadline,
            "the worker on {task:?} made {} requests, not {count}",
            requests.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A worker on `task` that makes `calls` one after the other, then reports done.
fn worker_script(llm: &FakeLlm, trigger: &str, task: &str, calls: &[(&str, Value)]) {
    spawn_worker_on(trigger, llm, task, "On it.");
    for (tool, arguments) in calls {
        llm.push_when(task, Scripted::tool_call(tool, arguments.clone()));
    }
    llm.push_when(
        task,
        Scripted::tool_call("set_status", json!({"state": "done", "message": "done"})),
    );
}

fn offered<'a>(request: &'a Value, name: &str) -> Option<&'a Value> {
    request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|tool| &tool["function"])
        .find(|function| function["name"] == name)
}

#[tokio::test]
async fn a_worker_lists_and_calls_a_stdio_server_s_tool_and_reads_the_result() {
    let llm = FakeLlm::start().await;
    let task = "look up the word alpha with the dictionary";
    worker_script(
        &llm,
        "please look it up",
        task,
        &[
            ("files__lookup", json!({"query": "alpha"})),
            ("files__write_note", json!({"text": "from the owner"})),
        ],
    );
    llm.set_fallback(|_| reply("ok"));
    let home = tempfile::tempdir().expect("tempdir");
    let log = home.path().join("mcp.log");
    // A second server, enabled only for another agent.
    let config = config_for(&llm)
        + &stdio_server("files", &log)
        + &stdio_server("hidden", &home.path().join("hidden.log"))
        + "agents = [\"helper\"]\n\n[[agents]]\nid = \"helper\"\n";
    let daemon = TestDaemon::start(home.path(), &config).await;
    let hidden = wait_for_server(&daemon, "hidden", running).await;
    assert_eq!(hidden["agents"], json!(["helper"]));
    let server = wait_for_server(&daemon, "files", running).await;
    assert_eq!(server["transport"], "stdio");
    assert_eq!(
        server["tools"],
        json!([
            "files__lookup",
            "files__write_note",
            "files__add_tool",
            "files__big",
            "files__slow"
        ])
    );

    daemon.send("mcp", "please look it up").await;
    let requests = worker_requests(&llm, task, 3).await;
    // The worker is offered the server's tools, described and with their schemas.
    let lookup = offered(&requests[0], "files__lookup").expect("lookup offered");
    let description = lookup["description"].as_str().unwrap_or_default();
    assert!(
        description.contains("Looks a word up") && description.contains("`files`"),
        "{description}"
    );
    assert_eq!(lookup["parameters"]["required"], json!(["query"]));
    assert!(offered(&requests[0], "files__write_note").is_some());
    assert!(offered(&requests[0], "hidden__lookup").is_none());
    // The results reach the next requests: text, and the image as a note.
    let results = FakeLlm::tool_results(&requests[2]);
    assert!(results[0].contains("LOOKUP alpha"), "{results:?}");
    assert!(
        results[0].contains("an image (image/png, 70 bytes)"),
        "{results:?}"
    );
    assert_eq!(results[1], "noted: from the owner");
    assert_eq!(calls_of(&log, "lookup"), 1);
    assert_eq!(calls_of(&log, "write_note"), 1);
    // A channel only answers and delegates: it never gets MCP tools, but it knows workers
    // have them, and so do the workers.
    let channel = &requests_with(&llm, "please look it up")[0];
    assert!(offered(channel, "files__lookup").is_none());
    for request in [channel, &requests[0]] {
        let system = FakeLlm::system_text(request);
        assert!(system.contains("the MCP servers files"), "{system}");
        assert!(!system.contains("hidden"), "{system}");
    }
    daemon.shutdown().await;
}

/// The test server over streamable HTTP on 127.0.0.1, refusing requests without the token.
struct HttpServer {
    child: Child,
    url: String,
    port: u16,
}

impl HttpServer {
    fn start(log: &Path, token: &str) -> HttpServer {
        Self::start_on(log, token, 0)
    }

    /// On `port` (0: any).
    fn start_on(log: &Path, token: &str, port: u16) -> HttpServer {
        let mut child = Command::new("python3")
            .arg(server_script())
            .arg("http")
            .env("MCP_LOG", log)
            .env("MCP_TOKEN", token)
            .env("MCP_PORT", port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the HTTP MCP server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("port");
        let port: u16 = line.trim().parse().expect("a port");
        HttpServer {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
            port,
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_worker_calls_a_streamable_http_server_with_its_secret_header() {
    let home = tempfile::tempdir().expect("tempdir");
    let log = home.path().join("mcp.log");
    let http = HttpServer::start(&log, "token-for-the-test");
    let llm = FakeLlm::start().await;
    let task = "look up beta over http";
    worker_script(
        &llm,
        "ask the web server",
        task,
        &[("web__lookup", json!({"query": "beta"}))],
    );
    llm.set_fallback(|_| reply("ok"));
    let config = config_for(&llm)
        + &format!(
            "\n[[mcp_servers]]\nname = \"web\"\nurl = \"{}\"\n\
             headers = {{ Authorization = \"env:MCP_HEADER\" }}\n",
            http.url
        );
    let environment = HashMap::from([(
        "MCP_HEADER".to_string(),
        "Bearer token-for-the-test".to_string(),
    )]);
    let daemon = TestDaemon::start_with_environment(home.path(), &config, environment).await;
    let server = wait_for_server(&daemon, "web", running).await;
    assert_eq!(server["transport"], "http");

    daemon.send("mcp", "ask the web server").await;
    let requests = worker_requests(&llm, task, 2).await;
    assert!(offered(&requests[0], "web__lookup").is_some());
    let results = FakeLlm::tool_results(&requests[1]);
    assert!(results[0].contains("LOOKUP beta"), "{results:?}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_failing_server_restarts_the_daemon_answers_and_the_status_shows_both() {
    let home = tempfile::tempdir().expect("tempdir");
    let log = home.path().join("mcp.log");
    let http = HttpServer::start(&log, "the-right-token");
    let llm = FakeLlm::start().await;
    llm.set_fallback(|_| reply("still here"));
    let config = config_for(&llm)
        + &format!(
            "\n[[mcp_servers]]\nname = \"web\"\nurl = \"{}\"\n\
             headers = {{ Authorization = \"Bearer a-wrong-token\" }}\n",
            http.url
        )
        + &stdio_server("files", &home.path().join("files.log"));
    let daemon = TestDaemon::start(home.path(), &config).await;
    let server = wait_for_server(&daemon, "web", |server| {
        server["restarts"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    assert!(
        server["last_error"]
            .as_str()
            .is_some_and(|error| !error.is_empty()),
        "{server}"
    );
    assert_ne!(server["state"], "running");
    let answer = daemon.send("mcp", "hello").await;
    assert!(answer.to_string().contains("still here"), "{answer}");
    wait_for_server(&daemon, "files", running).await;
    // `spacebot status` shows both servers.
    let base_url = daemon.base_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_spacebot"))
            .args(["--url", &base_url, "status"])
            .env_remove("SPACEBOT_URL")
            .env_remove("SPACEBOT_API_TOKEN")
            .output()
            .expect("run status")
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("mcp server files (stdio): running, 5 tools"),
        "{text}"
    );
    assert!(
        text.lines().any(|line| line.starts_with("mcp server web (http): ")
            && line.contains("last error:")),
        "{text}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_killed_server_is_restarted_and_its_tools_work_again() {
    let llm = FakeLlm::start().await;
    let first = "look up gamma before the crash";
    let second = "look up delta after the restart";
    worker_script(
        &llm,
        "first lookup",
        first,
        &[("files__lookup", json!({"query": "gamma"}))],
    );
    worker_script(
        &llm,
        "second lookup",
        second,
        &[("files__lookup", json!({"query": "delta"}))],
    );
    llm.set_fallback(|_| reply("ok"));
    let home = tempfile::tempdir().expect("tempdir");
    let log = home.path().join("mcp.log");
    let config = config_for(&llm) + &stdio_server("files", &log);
    let daemon = TestDaemon::start(home.path(), &config).await;
    wait_for_server(&daemon, "files", running).await;
    daemon.send("mcp", "first lookup").await;
    let results = FakeLlm::tool_results(&worker_requests(&llm, first, 2).await[1]);
    assert!(results[0].contains("LOOKUP gamma"), "{results:?}");

    // Kill the server the daemon started, as a crash or the OOM killer would.
    let pid = server_log(&log)
        .iter()
        .find_map(|entry| entry["start"].as_u64())
        .expect("the server logged its start");
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let server = wait_for_server(&daemon, "files", |server| {
        running(server) && server["restarts"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    assert!(
        server["last_error"]
            .as_str()
            .is_some_and(|error| error.contains("closed")),
        "{server}"
    );
    let starts: Vec<u64> = server_log(&log)
        .iter()
        .filter_map(|entry| entry["start"].as_u64())
        .collect();
    assert_eq!(starts.len(), 2, "{starts:?}");

    daemon.send("mcp", "second lookup").await;
    let results = FakeLlm::tool_results(&worker_requests(&llm, second, 2).await[1]);
    assert!(
        results[0].contains("LOOKUP delta") && results[0].contains(&starts[1].to_string()),
        "{results:?}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_tools_list_changed_notification_refreshes_the_tools_of_a_running_worker() {
    let llm = FakeLlm::start().await;
    let task = "add a tool, then use it";
    spawn_worker_on("grow the server", &llm, task, "On it.");
    llm.push_when(task, Scripted::tool_call("files__add_tool", json!({})));
    // The fake model answers at once; give the daemon a moment to list the tools again
    // before the call reaches it.
    llm.push_when(
        task,
        Scripted::tool_call("files__fresh", json!({})).delayed(Duration::from_secs(1)),
    );
    llm.push_when(
        task,
        Scripted::tool_call("set_status", json!({"state": "done", "message": "done"})),
    );
    llm.set_fallback(|_| reply("ok"));
    let home = tempfile::tempdir().expect("tempdir");
    let log = home.path().join("mcp.log");
    let config = config_for(&llm) + &stdio_server("files", &log);
    let daemon = TestDaemon::start(home.path(), &config).await;
    wait_for_server(&daemon, "files", running).await;
    daemon.send("mcp", "grow the server").await;
    wait_for_server(&daemon, "files", |server| {
        server["tools"]
            .as_array()
            .is_some_and(|tools| tools.iter().any(|tool| tool == "files__fresh"))
    })
    .await;
    let requests = worker_requests(&llm, task, 3).await;
    assert!(offered(&requests[0], "files__fresh").is_none());
    assert!(
        offered(&requests[2], "files__fresh").is_some(),
        "{:?}",
        FakeLlm::tool_names(&requests[2])
    );
    let results = FakeLlm::tool_results(&requests[2]);
    assert_eq!(results.last().map(String::as_str), Some("fresh works"));
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_member_s_turn_is_never_offered_nor_allowed_a_tool_that_acts() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    llm.push_when(
        "what does alpha mean",
        Scripted::tool_call("branch", json!({"prompt": "find out what alpha means"})),
    );
    llm.push_when("what does alpha mean", reply("let me think"));
    llm.push_when(
        "[Branch task] find out what alpha means",
        Scripted::ToolCalls(vec![
            ("files__lookup".into(), json!({"query": "alpha"})),
            (
                "files__write_note".into(),
                json!({"text": "a member was here"}),
            ),
        ]),
    );
    llm.push_when(
        "[Branch task] find out what alpha means",
        Scripted::text("alpha is a word"),
    );
    llm.set_fallback(|_| reply("ok"));
    let home = tempfile::tempdir().expect("tempdir");
    let log = home.path().join("mcp.log");
    let config = config_for(&llm)
        + &stdio_server("files", &log)
        + &telegram.config(&[])
        + &access(&["telegram:42"], &[])
        + "members = [\"telegram:7\"]\n";
    let daemon = TestDaemon::start(home.path(), &config).await;
    wait_for_server(&daemon, "files", running).await;

    telegram.push_message(7, 7, "what does alpha mean");
    let deadline = Instant::now() + Duration::from_secs(30);
    while requests_with(&llm, "[Branch task] find out").len() < 2 {
        assert!(Instant::now() < deadline, "the branch never finished");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let branch = requests_with(&llm, "[Branch task] find out");
    let tools = FakeLlm::tool_names(&branch[0]);
    assert!(
        tools.iter().any(|tool| tool == "files__lookup"),
        "{tools:?}"
    );
    assert!(
        !tools
            .iter()
            .any(|tool| tool == "files__write_note" || tool == "files__add_tool"),
        "{tools:?}"
    );
    let results = FakeLlm::tool_results(&branch[1]);
    assert!(results[0].contains("LOOKUP alpha"), "{results:?}");
    assert!(results[1].starts_with("error:"), "{results:?}");
    assert_eq!(calls_of(&log, "lookup"), 1);
    assert_eq!(
        calls_of(&log, "write_note"),
        0,
        "the acting tool reached the server"
    );
    wait_for_replies(&daemon, "main", "telegram:7", 1).await;
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_huge_result_is_cut_and_a_slow_call_times_out() {
    let llm = FakeLlm::start().await;
    let task = "fetch the big text, then wait for the slow one";
    worker_script(
        &llm,
        "big and slow",
        task,
        &[("files__big", json!({})), ("files__slow", json!({}))],
    );
    llm.set_fallback(|_| reply("ok"));
    let home = tempfile::tempdir().expect("tempdir");
    let log = home.path().join("mcp.log");
    let config = config_for(&llm) + &stdio_server("files", &log) + "timeout_secs = 1\n";
    let daemon = TestDaemon::start(home.path(), &config).await;
    wait_for_server(&daemon, "files", running).await;
    daemon.send("mcp", "big and slow").await;
    let requests = worker_requests(&llm, task, 3).await;
    let results = FakeLlm::tool_results(&requests[2]);
    assert!(
        results[0].starts_with("[resource file:///notes.txt]\nnotes\nxxx"),
        "{}",
        &results[0][..100]
    );
    assert!(
        results[0].len() < 40_000 && results[0].contains("[cut: the result has 100"),
        "{}",
        results[0].len()
    );
    assert_eq!(
        results[1],
        "error: `slow` of the MCP server `files` did not answer within 1s"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn the_daemon_never_waits_for_a_server_that_does_not_start() {
    let llm = FakeLlm::start().await;
    llm.set_fallback(|_| reply("answered without the server"));
    let home = tempfile::tempdir().expect("tempdir");
    // `sleep` never answers `initialize`.
    let config = config_for(&llm)
        + "\n[[mcp_servers]]\nname = \"mute\"\ncommand = \"sleep\"\nargs = [\"600\"]\n";
    let daemon = TestDaemon::start(home.path(), &config).await;
    let answer = daemon.send("mcp", "hello").await;
    assert!(
        answer.to_string().contains("answered without the server"),
        "{answer}"
    );
    let status = daemon.get("/api/status").await;
    assert_eq!(status["mcp_servers"][0]["name"], "mute");
    assert_eq!(status["mcp_servers"][0]["state"], "starting");
    daemon.shutdown().await;
}

/// Whether the process `pid` still runs (a zombie waiting to be reaped does not).
fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

async fn reload(daemon: &TestDaemon) -> Value {
    let answer = daemon
        .http
        .post(daemon.url("/api/reload"))
        .json(&json!({}))
        .send()
        .await
        .expect("reload");
    assert_eq!(answer.status(), 200);
    answer.json().await.expect("json")
}

#[tokio::test]
async fn servers_added_and_removed_in_the_config_are_started_and_stopped_by_a_reload() {
    let llm = FakeLlm::start().await;
    let first = "look up epsilon with the new server";
    let second = "look around after the server was removed";
    worker_script(
        &llm,
        "first lookup",
        first,
        &[("files__lookup", json!({"query": "epsilon"}))],
    );
    worker_script(&llm, "second look", second, &[]);
    llm.set_fallback(|_| reply("ok"));
    let home = tempfile::tempdir().expect("tempdir");
    let log = home.path().join("mcp.log");
    let config = config_for(&llm);
    let daemon = TestDaemon::start(home.path(), &config).await;
    assert_eq!(daemon.get("/api/status").await["mcp_servers"], json!([]));

    // Added: started without a restart, and the running agent's workers get its tools.
    let with_server = config.clone() + &stdio_server("files", &log);
    std::fs::write(home.path().join("config.toml"), &with_server).expect("edit");
    let body = reload(&daemon).await;
    assert_eq!(body["reload"]["outcome"], "applied", "{body}");
    assert_eq!(body["reload"]["restart_needed"], json!([]), "{body}");
    assert!(
        body["reload"]["changes"]
            .as_array()
            .is_some_and(|changes| changes.iter().any(|change| change == "mcp_servers")),
        "{body}"
    );
    wait_for_server(&daemon, "files", running).await;
    daemon.send("mcp", "first lookup").await;
    let requests = worker_requests(&llm, first, 2).await;
    assert!(offered(&requests[0], "files__lookup").is_some());
    let system = FakeLlm::system_text(&requests[0]);
    assert!(system.contains("the MCP servers files"), "{system}");
    let results = FakeLlm::tool_results(&requests[1]);
    assert!(results[0].contains("LOOKUP epsilon"), "{results:?}");
    let pid = server_log(&log)
        .iter()
        .find_map(|entry| entry["start"].as_u64())
        .expect("the server logged its start");
    assert!(alive(pid));

    // Removed: its process stops and the next worker is not offered its tools.
    std::fs::write(home.path().join("config.toml"), &config).expect("edit");
    let body = reload(&daemon).await;
    assert_eq!(body["reload"]["outcome"], "applied", "{body}");
    assert_eq!(daemon.get("/api/status").await["mcp_servers"], json!([]));
    let deadline = Instant::now() + Duration::from_secs(15);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the removed server {pid} still runs"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.send("mcp", "second look").await;
    let requests = worker_requests(&llm, second, 1).await;
    assert!(offered(&requests[0], "files__lookup").is_none());
    assert!(offered(&requests[0], "file_read").is_some());
    let system = FakeLlm::system_text(&requests[0]);
    assert!(!system.contains("the MCP servers files"), "{system}");
    assert_eq!(
        server_log(&log)
            .iter()
            .filter(|entry| entry["start"].is_u64())
            .count(),
        1
    );
    daemon.shutdown().await;
}

/// An HTTP server that goes away says so only when a call fails: that call's error restarts
/// the session, which connects again once the server is back.
#[tokio::test]
async fn an_http_server_that_went_away_is_reconnected_after_a_failed_call() {
    let home = tempfile::tempdir().expect("tempdir");
    let log = home.path().join("mcp.log");
    let http = HttpServer::start(&log, "token");
    let port = http.port;
    let llm = FakeLlm::start().await;
    let first = "look up epsilon while the server is gone";
    let second = "look up zeta once it is back";
    worker_script(
        &llm,
        "first lookup",
        first,
        &[("web__lookup", json!({"query": "epsilon"}))],
    );
    worker_script(
        &llm,
        "second lookup",
        second,
        &[("web__lookup", json!({"query": "zeta"}))],
    );
    llm.set_fallback(|_| reply("ok"));
    let config = config_for(&llm)
        + &format!(
            "\n[[mcp_servers]]\nname = \"web\"\nurl = \"{}\"\n\
             headers = {{ Authorization = \"Bearer token\" }}\n",
            http.url
        );
    let daemon = TestDaemon::start(home.path(), &config).await;
    wait_for_server(&daemon, "web", running).await;
    drop(http);

    daemon.send("mcp", "first lookup").await;
    let results = FakeLlm::tool_results(&worker_requests(&llm, first, 2).await[1]);
    assert!(results[0].starts_with("error:"), "{results:?}");
    wait_for_server(&daemon, "web", |server| {
        server["restarts"].as_u64().unwrap_or(0) >= 1
    })
    .await;

    let _back = HttpServer::start_on(&log, "token", port);
    wait_for_server(&daemon, "web", running).await;
    daemon.send("mcp", "second lookup").await;
    let results = FakeLlm::tool_results(&worker_requests(&llm, second, 2).await[1]);
    assert!(results[0].contains("LOOKUP zeta"), "{results:?}");
    daemon.shutdown().await;
}
