//! Store-level tests on a real SQLite file, with hand-made embeddings passed to
//! `save_embedded`/`recall_embedded` (the real model is exercised by the e2e tests): the
//! fixtures they share, and how the embedder's status describes recall.

mod audience;
mod maintenance;
mod recall;
mod render;
mod save;

use std::sync::Arc;

use super::*;
use crate::event::EventBus;

struct Fixture {
    store: MemoryStore,
    _directory: tempfile::TempDir,
}

/// A store whose embedder is named but never called: embeddings come from the test.
async fn store() -> Fixture {
    let directory = tempfile::tempdir().expect("tempdir");
    let pool = crate::database::open(&directory.path().join("memory.db"))
        .await
        .expect("database");
    let embedder = Arc::new(Embedder::local(directory.path().join("no-model")));
    let store = MemoryStore::open("test", pool, embedder, EventBus::new(16))
        .await
        .expect("store");
    Fixture {
        store,
        _directory: directory,
    }
}

async fn reopen(fixture: &Fixture) -> MemoryStore {
    MemoryStore::open(
        "test",
        fixture.store.pool.clone(),
        fixture.store.embedder.clone(),
        EventBus::new(16),
    )
    .await
    .expect("reopen")
}

/// A unit vector along `axis` of 8 dimensions, tilted towards `toward` by `tilt`.
fn vector(axis: usize, toward: usize, tilt: f32) -> Vec<f32> {
    let mut values = vec![0.0; 8];
    values[axis] = 1.0;
    values[toward] += tilt;
    index::normalize(&mut values);
    values
}

fn new(content: &str, memory_type: MemoryType) -> NewMemory {
    NewMemory::new(content, memory_type, "test")
}

async fn save(
    store: &MemoryStore,
    content: &str,
    memory_type: MemoryType,
    embedding: Option<Vec<f32>>,
) -> SaveOutcome {
    store
        .save_embedded(new(content, memory_type), embedding)
        .await
        .expect("save")
}

fn ids(result: &RecallResult) -> Vec<String> {
    result
        .memories
        .iter()
        .map(|recalled| recalled.memory.content.clone())
        .collect()
}

#[test]
fn the_embedder_status_says_how_recall_works() {
    let directory = tempfile::tempdir().expect("tempdir");
    let missing = Embedder::local(directory.path().join("absent")).status();
    assert_eq!(
        (missing.state, missing.recall),
        ("unavailable", "full_text_only")
    );
    assert!(
        missing.detail.contains("embedding_model_dir"),
        "{}",
        missing.detail
    );
    let config = crate::config::MemoryConfig::default();
    let downloading =
        Embedder::from_config(&config, &Default::default(), directory.path()).status();
    assert_eq!(
        (downloading.state, downloading.recall),
        ("not_loaded", "hybrid")
    );
    assert!(
        downloading.detail.contains("downloads from"),
        "{}",
        downloading.detail
    );
    let disabled = Embedder::disabled("testing").status();
    assert_eq!((disabled.kind, disabled.recall), ("none", "full_text_only"));
}
