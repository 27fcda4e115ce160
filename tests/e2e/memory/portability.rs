//! `spacebot memory export` / `import`: memories move between daemons as JSON Lines with their
//! associations, origin and embeddings; an import into another embedding model re-embeds.

use serde_json::{Value, json};

use super::{add, cli, config_with_model, fake_embeddings, memory_store, search};
use crate::fake_llm::FakeLlm;
use crate::harness::{TestDaemon, config_with_memory};

#[tokio::test]
async fn memories_move_between_daemons_with_associations_and_embeddings() {
    let llm = FakeLlm::start().await;
    let first_home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(first_home.path(), &config_with_model(&llm)).await;
    let cat = add(&daemon, "main", "The user's cat is named Miso", "fact").await;
    let cat_id = cat["memory"]["id"].as_str().expect("id").to_string();
    add(
        &daemon,
        "main",
        "The staging server is called hydra",
        "fact",
    )
    .await;
    let response = daemon
        .http
        .post(daemon.url("/api/agents/main/memories"))
        .json(&json!({
            "content": "Miso has a vet check-up every March",
            "type": "event",
            "associations": [{"target_id": cat_id, "relation": "related_to", "weight": 0.8}],
        }))
        .send()
        .await
        .expect("request");
    assert!(response.status().is_success());
    let vet: Value = response.json().await.expect("json");
    let vet_id = vet["memory"]["id"].as_str().expect("id").to_string();

    let export = first_home.path().join("memories.jsonl");
    let export_path = export.to_str().expect("utf-8 path");
    cli(
        &daemon,
        first_home.path(),
        &["memory", "export", "--output", export_path],
    )
    .await;
    let text = std::fs::read_to_string(&export).expect("export file");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0]["format"], "spacebot-memories");
    assert_eq!(lines[0]["embedding_model"], "all-MiniLM-L6-v2");
    let vet_line = lines
        .iter()
        .find(|line| line["id"] == vet_id.as_str())
        .expect("the vet memory");
    assert_eq!(vet_line["embedding_model"], "all-MiniLM-L6-v2");
    assert!(
        vet_line["embedding"]
            .as_str()
            .is_some_and(|blob| blob.len() > 1000)
    );
    assert_eq!(vet_line["associations"][0]["target_id"], cat_id.as_str());
    assert_eq!(vet_line["origin"]["trusted"], true);
    daemon.shutdown().await;

    // The same model: embeddings are taken as they are, ids, times and links kept.
    let second_home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(second_home.path(), &config_with_model(&llm)).await;
    let imported = cli(
        &daemon,
        second_home.path(),
        &["memory", "import", export_path],
    )
    .await;
    assert!(
        imported
            .contains("imported 3 memories (0 already present, 0 embedded again, 1 associations)"),
        "{imported}"
    );
    assert_eq!(memory_store(&daemon, "main").indexed(), 3);
    let found = search(&daemon, "main", "what is my pet called").await;
    assert_eq!(found["memories"][0]["id"], cat_id.as_str(), "{found:#}");
    assert_eq!(found["memories"][0]["vector_rank"], 1);
    let fetched = daemon
        .get(&format!("/api/agents/main/memories/{vet_id}"))
        .await;
    assert_eq!(fetched["associations"][0]["target_id"], cat_id.as_str());
    assert_eq!(fetched["memory"]["created_at"], vet["memory"]["created_at"]);
    let again = cli(
        &daemon,
        second_home.path(),
        &["memory", "import", export_path],
    )
    .await;
    assert!(
        again.contains("imported 0 memories (3 already present"),
        "{again}"
    );
    daemon.shutdown().await;

    // Another model: every memory is embedded again by it.
    let (base_url, requests) = fake_embeddings().await;
    let third_home = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "{}\n[llm.providers.vectors]\nkind = \"openai\"\nbase_url = \"{base_url}\"\n",
        config_with_memory(&llm, "embedder = \"vectors/fake-embedding\"")
    );
    let daemon = TestDaemon::start(third_home.path(), &config).await;
    let imported = cli(
        &daemon,
        third_home.path(),
        &["memory", "import", export_path],
    )
    .await;
    assert!(imported.contains("3 embedded again"), "{imported}");
    assert_eq!(memory_store(&daemon, "main").indexed(), 3);
    let embedded_texts: Vec<Value> = requests
        .lock()
        .expect("lock")
        .iter()
        .flat_map(|(_, body)| body["input"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(embedded_texts.contains(&json!("The staging server is called hydra")));
    let found = search(&daemon, "main", "staging server hydra").await;
    assert_eq!(
        found["memories"][0]["content"],
        "The staging server is called hydra"
    );
    assert_eq!(found["memories"][0]["vector_rank"], 1, "{found:#}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn an_import_refuses_malformed_and_endless_lines() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &crate::harness::config_for(&llm)).await;
    let import = |body: Vec<u8>| {
        daemon
            .http
            .post(daemon.url("/api/agents/main/memories/import"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
    };
    let malformed = import(b"{\"format\": \"spacebot-memories\"}\n{\"content\": 1}\n".to_vec())
        .await
        .expect("request");
    assert_eq!(malformed.status(), 400);
    assert!(
        malformed
            .text()
            .await
            .unwrap_or_default()
            .contains("line 2")
    );
    // Just past the limit, so the whole body is sent before the answer comes.
    let endless = import(vec![b'x'; (1 << 20) + (32 << 10)])
        .await
        .expect("request");
    assert_eq!(endless.status(), 413);
    let listed = daemon.get("/api/agents/main/memories").await;
    assert_eq!(listed["total"], 0);
    daemon.shutdown().await;
}
