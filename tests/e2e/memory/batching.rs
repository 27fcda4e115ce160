//! Saves that arrive together are embedded together: one request to the embeddings provider
//! (or one forward pass of the local model) for many memories.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::fake_llm::FakeLlm;
use crate::harness::{TestDaemon, config_with_memory};

/// An embeddings endpoint that takes 300 ms per request and records each request's inputs.
async fn slow_embeddings() -> (String, Arc<Mutex<Vec<usize>>>) {
    let batches: Arc<Mutex<Vec<usize>>> = Arc::default();
    let recorded = batches.clone();
    let app = Router::new().route(
        "/v1/embeddings",
        post(move |Json(body): Json<Value>| {
            let recorded = recorded.clone();
            async move {
                let inputs = body["input"].as_array().cloned().unwrap_or_default();
                recorded.lock().expect("lock").push(inputs.len());
                tokio::time::sleep(Duration::from_millis(300)).await;
                let data: Vec<Value> = inputs
                    .iter()
                    .enumerate()
                    .map(|(index, text)| {
                        let mut vector = vec![0.1f32; 16];
                        vector[text.as_str().unwrap_or("").len() % 16] += 1.0;
                        json!({"index": index, "embedding": vector})
                    })
                    .collect();
                Json(json!({"data": data}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/v1"), batches)
}

#[tokio::test]
async fn concurrent_saves_are_embedded_in_batches() {
    let llm = FakeLlm::start().await;
    let (base_url, batches) = slow_embeddings().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "{}\n[llm.providers.vectors]\nkind = \"openai\"\nbase_url = \"{base_url}\"\n",
        config_with_memory(&llm, "embedder = \"vectors/slow-embedding\"")
    );
    let daemon = TestDaemon::start(home.path(), &config).await;
    let saves = (0..12).map(|number| {
        let request = daemon
            .http
            .post(daemon.url("/api/agents/main/memories"))
            .json(&json!({"content": format!("Note number {number} about the garden"), "type": "fact"}));
        async move {
            let response = request.send().await.expect("request");
            assert!(response.status().is_success(), "{}", response.status());
            response.json::<Value>().await.expect("json")
        }
    });
    let saved = futures::future::join_all(saves).await;
    assert!(
        saved.iter().all(|outcome| outcome["embedded"] == true),
        "{saved:#?}"
    );
    let batches = batches.lock().expect("lock").clone();
    assert_eq!(batches.iter().sum::<usize>(), 12, "{batches:?}");
    // The first save is embedded alone; the others arrive while it runs and go together.
    assert!(batches.len() <= 3, "one request per save: {batches:?}");
    daemon.shutdown().await;
}
