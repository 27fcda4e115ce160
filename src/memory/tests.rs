//! Store-level tests on a real SQLite file, with hand-made embeddings passed to
//! `save_embedded`/`recall_embedded` (the real model is exercised by the e2e tests).

use std::sync::Arc;

use super::*;
use crate::event::EventBus;
use crate::prompts::Prompts;

const DAY: i64 = 86_400_000;

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

#[tokio::test]
async fn hybrid_recall_fuses_full_text_and_vector_ranks() {
    let fixture = store().await;
    let store = &fixture.store;
    save(
        store,
        "The lawn mower lives in the garden shed",
        MemoryType::Fact,
        Some(vector(0, 1, 0.1)),
    )
    .await;
    save(
        store,
        "Sharpen the lawn mower blades every spring",
        MemoryType::Todo,
        Some(vector(2, 3, 0.0)),
    )
    .await;
    save(
        store,
        "The garage needs a spring clean",
        MemoryType::Todo,
        Some(vector(0, 1, 0.5)),
    )
    .await;
    save(
        store,
        "Ana prefers tea to coffee",
        MemoryType::Preference,
        Some(vector(4, 5, 0.0)),
    )
    .await;

    let query = RecallQuery::new("lawn mower", 10);
    let result = store
        .recall_embedded(&query, Some(vector(0, 1, 0.0)))
        .await
        .expect("recall");
    assert!(!result.full_text_only);
    // The shed memory is first in both lists; the blades memory only matches the words, the
    // garage memory only the vector (and ranks second there).
    assert_eq!(ids(&result)[0], "The lawn mower lives in the garden shed");
    let first = &result.memories[0];
    assert!(first.full_text_rank.is_some());
    assert_eq!(first.vector_rank, Some(1));
    // Unrelated vectors (cosine below the floor) are not ranked at all.
    assert!(!ids(&result).iter().any(|content| content.contains("tea")));
    for recalled in &result.memories {
        let expected: f64 = [recalled.full_text_rank, recalled.vector_rank]
            .iter()
            .flatten()
            .map(|rank| 1.0 / (search::RRF_K + *rank as f64))
            .sum();
        assert!((recalled.score - expected).abs() < 1e-12, "{recalled:?}");
    }
    let scores: Vec<f64> = result
        .memories
        .iter()
        .map(|recalled| recalled.score)
        .collect();
    assert!(
        scores.windows(2).all(|pair| pair[0] >= pair[1]),
        "{scores:?}"
    );
    let garage = result
        .memories
        .iter()
        .find(|recalled| recalled.memory.content.contains("garage"))
        .expect("found by vector alone");
    assert_eq!((garage.full_text_rank, garage.vector_rank), (None, Some(2)));
}

#[tokio::test]
async fn type_filters_apply_to_every_list_and_the_walk() {
    let fixture = store().await;
    let store = &fixture.store;
    let fact = save(
        store,
        "The office is in Lisbon",
        MemoryType::Fact,
        Some(vector(0, 1, 0.0)),
    )
    .await;
    let mut linked = new("Lisbon office moves in May", MemoryType::Event);
    linked.associations.push(NewAssociation {
        target_id: fact.memory.id.clone(),
        relation: Relation::RelatedTo,
        weight: Some(0.9),
    });
    store
        .save_embedded(linked, Some(vector(5, 6, 0.0)))
        .await
        .expect("save");
    save(
        store,
        "Prefers the Lisbon office",
        MemoryType::Preference,
        Some(vector(0, 1, 0.2)),
    )
    .await;

    let mut query = RecallQuery::new("Lisbon office", 10);
    let everything = store
        .recall_embedded(&query, Some(vector(0, 1, 0.0)))
        .await
        .expect("recall");
    assert_eq!(everything.memories.len(), 3);
    query.memory_type = Some(MemoryType::Preference);
    let preferences = store
        .recall_embedded(&query, Some(vector(0, 1, 0.0)))
        .await
        .expect("recall");
    assert_eq!(ids(&preferences), vec!["Prefers the Lisbon office"]);
    query.memory_type = Some(MemoryType::Event);
    let events = store.recall_embedded(&query, None).await.expect("recall");
    assert_eq!(ids(&events), vec!["Lisbon office moves in May"]);
    assert!(events.full_text_only);
}

#[tokio::test]
async fn the_association_walk_brings_linked_memories() {
    let fixture = store().await;
    let store = &fixture.store;
    let project = save(
        store,
        "Project Falcon ships the new billing system",
        MemoryType::Goal,
        Some(vector(0, 1, 0.0)),
    )
    .await;
    let mut deadline = new("The deadline is the end of March", MemoryType::Decision);
    deadline.associations.push(NewAssociation {
        target_id: project.memory.id.clone(),
        relation: Relation::PartOf,
        weight: None,
    });
    let deadline = store
        .save_embedded(deadline, Some(vector(6, 7, 0.0)))
        .await
        .expect("save");
    save(
        store,
        "Unrelated note about plants",
        MemoryType::Fact,
        Some(vector(3, 4, 0.0)),
    )
    .await;

    let result = store
        .recall_embedded(
            &RecallQuery::new("falcon billing", 10),
            Some(vector(0, 1, 0.0)),
        )
        .await
        .expect("recall");
    let walked = result
        .memories
        .iter()
        .find(|recalled| recalled.memory.id == deadline.memory.id)
        .expect("reached over the association");
    let via = walked.via.as_ref().expect("via");
    assert_eq!(via.from, project.memory.id);
    assert_eq!(via.relation, Relation::PartOf);
    assert_eq!(walked.full_text_rank, None);
    assert_eq!(
        store
            .associations(&deadline.memory.id)
            .await
            .expect("edges")
            .len(),
        1
    );
}

#[tokio::test]
async fn forgotten_memories_are_never_returned() {
    let fixture = store().await;
    let store = &fixture.store;
    let kept = save(
        store,
        "Kept: the wifi password is on the fridge",
        MemoryType::Fact,
        Some(vector(0, 1, 0.0)),
    )
    .await;
    let mut gone = new("Gone: the wifi password is hunter2", MemoryType::Fact);
    gone.associations.push(NewAssociation {
        target_id: kept.memory.id.clone(),
        relation: Relation::Contradicts,
        weight: Some(1.0),
    });
    let gone = store
        .save_embedded(gone, Some(vector(0, 1, 0.6)))
        .await
        .expect("save");
    assert!(!gone.merged);
    store.forget(&gone.memory.id).await.expect("forget");

    let result = store
        .recall_embedded(
            &RecallQuery::new("wifi password hunter2", 10),
            Some(vector(0, 1, 0.6)),
        )
        .await
        .expect("recall");
    assert_eq!(
        ids(&result),
        vec!["Kept: the wifi password is on the fridge"]
    );
    for mode in [RecallMode::Recent, RecallMode::Important] {
        let mut query = RecallQuery::new("", 10);
        query.mode = mode;
        let listed = store.recall_embedded(&query, None).await.expect("browse");
        assert_eq!(listed.memories.len(), 1);
    }
    let (listed, total) = store
        .list(None, ListOrder::Recent, 10, 0)
        .await
        .expect("list");
    assert_eq!((listed.len(), total), (1, 1));
    assert!(matches!(
        store.get(&gone.memory.id).await,
        Err(MemoryError::NotFound(_))
    ));
    assert!(matches!(
        store.forget(&gone.memory.id).await,
        Err(MemoryError::NotFound(_))
    ));
    assert!(
        store
            .associations(&kept.memory.id)
            .await
            .expect("edges")
            .is_empty()
    );
    let snapshot = store.snapshot().await.expect("snapshot");
    assert_eq!(snapshot.total, 1);
    // Not even after a restart (the index is rebuilt from the database).
    let reopened = reopen(&fixture).await;
    assert_eq!(reopened.indexed(), 1);
    // A new memory cannot link to it either.
    let mut link = new("Something else", MemoryType::Fact);
    link.associations.push(NewAssociation {
        target_id: gone.memory.id.clone(),
        relation: Relation::RelatedTo,
        weight: None,
    });
    assert!(matches!(
        reopened.save_embedded(link, None).await,
        Err(MemoryError::Invalid(_))
    ));
}

#[tokio::test]
async fn near_duplicates_update_the_existing_memory() {
    let fixture = store().await;
    let store = &fixture.store;
    let first = save(
        store,
        "Ana's favourite colour is green",
        MemoryType::Preference,
        Some(vector(0, 1, 0.0)),
    )
    .await;
    assert!(!first.merged);
    // cos ≈ 0.995: the same memory, reworded; the higher importance wins.
    let mut again = new("Ana's favorite color is green", MemoryType::Preference);
    again.importance = Some(0.9);
    let again = store
        .save_embedded(again, Some(vector(0, 1, 0.1)))
        .await
        .expect("save");
    assert!(again.merged);
    assert_eq!(again.memory.id, first.memory.id);
    assert_eq!(again.memory.content, "Ana's favorite color is green");
    assert_eq!(again.memory.importance, 0.9);
    // cos ≈ 0.89: a different memory.
    let other = save(
        store,
        "Ana's least favourite colour is grey",
        MemoryType::Preference,
        Some(vector(0, 1, 0.5)),
    )
    .await;
    assert!(!other.merged);
    // The same vector as another type is not a duplicate.
    let fact = save(
        store,
        "Green is Ana's colour",
        MemoryType::Fact,
        Some(vector(0, 1, 0.0)),
    )
    .await;
    assert!(!fact.merged);
    // Without embeddings, the same text (any case) is a duplicate.
    let plain = save(store, "Standup is at 9:30", MemoryType::Fact, None).await;
    let repeated = save(store, "standup is at 9:30", MemoryType::Fact, None).await;
    assert_eq!(repeated.memory.id, plain.memory.id);
    assert!(repeated.merged);
    assert_eq!(
        store
            .list(None, ListOrder::Recent, 10, 0)
            .await
            .expect("list")
            .1,
        4
    );
}

#[tokio::test]
async fn saved_memories_are_announced_on_the_event_bus() {
    let directory = tempfile::tempdir().expect("tempdir");
    let pool = crate::database::open(&directory.path().join("m.db"))
        .await
        .expect("db");
    let events = EventBus::new(16);
    let mut receiver = events.subscribe();
    let store = MemoryStore::open(
        "agent-a",
        pool,
        Arc::new(Embedder::disabled("test")),
        events,
    )
    .await
    .expect("store");
    let mut memory = new("The build server is called Hal", MemoryType::Fact);
    memory.channel_id = Some("portal:x".to_string());
    let saved = store.save(memory).await.expect("save");
    assert!(!saved.embedded);
    match receiver.recv().await.expect("event") {
        crate::event::ProcessEvent::MemorySaved {
            agent_id,
            memory_id,
            memory_type,
            merged,
            conversation_id,
            ..
        } => {
            assert_eq!(agent_id, "agent-a");
            assert_eq!(memory_id, saved.memory.id);
            assert_eq!(memory_type, "fact");
            assert!(!merged);
            assert_eq!(conversation_id.as_deref(), Some("portal:x"));
        }
        other => panic!("unexpected event {other:?}"),
    }
}

#[tokio::test]
async fn decay_and_prune_leave_identity_memories_alone() {
    let fixture = store().await;
    let store = &fixture.store;
    let identity = save(
        store,
        "The user is Ana, a marine biologist",
        MemoryType::Identity,
        None,
    )
    .await;
    let fact = save(store, "The user's bike is red", MemoryType::Fact, None).await;
    let mut recalled = new("The user's bike is called Rocket", MemoryType::Fact);
    recalled.importance = Some(0.6);
    let recalled = store.save_embedded(recalled, None).await.expect("save");
    for _ in 0..20 {
        // Each recall counts as an access and slows decay.
        store
            .recall_embedded(&RecallQuery::new("Rocket", 1), None)
            .await
            .expect("recall");
    }
    let now = crate::database::now_millis();

    let report = store.maintain(now + 20 * DAY).await.expect("maintain");
    assert!(report.ran);
    assert_eq!((report.decayed, report.pruned), (2, 0));
    let decayed_fact = store.get(&fact.memory.id).await.expect("fact").importance;
    let decayed_recalled = store
        .get(&recalled.memory.id)
        .await
        .expect("recalled")
        .importance;
    assert!(decayed_fact < 0.6 && decayed_fact > 0.3, "{decayed_fact}");
    assert!(
        decayed_recalled > decayed_fact,
        "{decayed_recalled} vs {decayed_fact}"
    );
    assert_eq!(
        store
            .get(&identity.memory.id)
            .await
            .expect("identity")
            .importance,
        1.0
    );

    // Nothing changed since: the pass is skipped.
    assert!(!store.maintain(now + 40 * DAY).await.expect("maintain").ran);

    // A year later (after a change), the weak facts are pruned; identity is untouched.
    save(store, "A new note", MemoryType::Observation, None).await;
    let report = store.maintain(now + 500 * DAY).await.expect("maintain");
    assert!(report.ran);
    assert_eq!(report.pruned, 3, "{report:?}");
    let identity_after = store.get(&identity.memory.id).await.expect("identity kept");
    assert_eq!(identity_after.importance, 1.0);
    assert!(matches!(
        store.get(&fact.memory.id).await,
        Err(MemoryError::NotFound(_))
    ));
    let (remaining, _) = store
        .list(None, ListOrder::Recent, 10, 0)
        .await
        .expect("list");
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0].memory_type, MemoryType::Identity);
}

#[tokio::test]
async fn maintenance_merges_near_duplicates_that_slipped_in() {
    let fixture = store().await;
    let store = &fixture.store;
    // Saved while no embedding was available, then embedded (as a backfill would).
    let older = save(
        store,
        "Deploys happen on Tuesdays",
        MemoryType::Decision,
        None,
    )
    .await;
    let newer = save(
        store,
        "We deploy on Tuesdays",
        MemoryType::Decision,
        Some(vector(0, 1, 0.05)),
    )
    .await;
    let blob = index::to_blob(&vector(0, 1, 0.0));
    sqlx::query("UPDATE memories SET embedding = ?, embedding_model = ? WHERE id = ?")
        .bind(blob)
        .bind(embedder::LOCAL_MODEL_ID)
        .bind(&older.memory.id)
        .execute(&store.pool)
        .await
        .expect("embed");
    // Identity memories are never merged, however similar.
    let identity_older = save(store, "I am Spacebot", MemoryType::Identity, None).await;
    save(
        store,
        "I am Spacebot, a helper",
        MemoryType::Identity,
        Some(vector(7, 6, 0.0)),
    )
    .await;
    sqlx::query("UPDATE memories SET embedding = ?, embedding_model = ? WHERE id = ?")
        .bind(index::to_blob(&vector(7, 6, 0.01)))
        .bind(embedder::LOCAL_MODEL_ID)
        .bind(&identity_older.memory.id)
        .execute(&store.pool)
        .await
        .expect("embed");
    let store = reopen(&fixture).await;
    assert_eq!(store.indexed(), 4);

    let report = store
        .maintain(crate::database::now_millis())
        .await
        .expect("maintain");
    assert_eq!(report.merged, 1, "{report:?}");
    let survivor = store
        .get(&older.memory.id)
        .await
        .expect("the older survives");
    assert_eq!(survivor.content, "We deploy on Tuesdays");
    assert!(matches!(
        store.get(&newer.memory.id).await,
        Err(MemoryError::NotFound(_))
    ));
    assert_eq!(store.indexed(), 3);
    let (identities, _) = store
        .list(Some(MemoryType::Identity), ListOrder::Recent, 10, 0)
        .await
        .expect("list");
    assert_eq!(identities.len(), 2);
}

#[tokio::test]
async fn the_prompt_render_is_bounded_deterministic_and_counts() {
    let fixture = store().await;
    let store = &fixture.store;
    let prompts = Prompts::new().expect("prompts");
    assert_eq!(store.prompt_block(&prompts).await, "");
    for number in 0..7 {
        let mut fact = new(&format!("Fact number {number}"), MemoryType::Fact);
        fact.importance = Some(0.1 * f64::from(number));
        store.save_embedded(fact, None).await.expect("save");
    }
    save(store, "The user is Ana", MemoryType::Identity, None).await;
    let long = "word ".repeat(200);
    save(store, &long, MemoryType::Observation, None).await;

    let block = store.prompt_block(&prompts).await;
    assert_eq!(block, store.prompt_block(&prompts).await);
    assert!(block.contains("### Identity (1 of 1)"), "{block}");
    assert!(block.contains("### Facts (5 of 7)"), "{block}");
    assert!(block.contains("### Observations (1 of 1)"), "{block}");
    assert!(block.find("### Identity") < block.find("### Facts"));
    assert!(
        block.contains("- Fact number 6\n- Fact number 5"),
        "{block}"
    );
    assert!(!block.contains("Fact number 1\n"), "{block}");
    assert!(block.contains('…'));
    assert!(block.len() < render::MAXIMUM_TOTAL_CHARS + 1000);
    // The cache follows changes.
    let top = store
        .list(Some(MemoryType::Fact), ListOrder::Important, 1, 0)
        .await
        .expect("list")
        .0;
    store.forget(&top[0].id).await.expect("forget");
    let after = store.prompt_block(&prompts).await;
    assert!(after.contains("### Facts (5 of 6)"), "{after}");
    assert!(!after.contains("Fact number 6"), "{after}");
}

#[tokio::test]
async fn recent_and_important_modes_order_the_matches() {
    let fixture = store().await;
    let store = &fixture.store;
    let mut low = new("Coffee beans from the market", MemoryType::Fact);
    low.importance = Some(0.2);
    store.save_embedded(low, None).await.expect("save");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut high = new("Coffee with oat milk", MemoryType::Preference);
    high.importance = Some(0.9);
    store.save_embedded(high, None).await.expect("save");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut middle = new("Coffee machine was repaired", MemoryType::Event);
    middle.importance = Some(0.5);
    store.save_embedded(middle, None).await.expect("save");

    let mut query = RecallQuery::new("coffee", 10);
    query.mode = RecallMode::Important;
    let important = store.recall_embedded(&query, None).await.expect("recall");
    assert_eq!(
        ids(&important),
        vec![
            "Coffee with oat milk",
            "Coffee machine was repaired",
            "Coffee beans from the market"
        ]
    );
    query.mode = RecallMode::Recent;
    let recent = store.recall_embedded(&query, None).await.expect("recall");
    assert_eq!(
        ids(&recent),
        vec![
            "Coffee machine was repaired",
            "Coffee with oat milk",
            "Coffee beans from the market"
        ]
    );
    query.mode = RecallMode::Hybrid;
    query.text = String::new();
    assert!(matches!(
        store.recall_embedded(&query, None).await,
        Err(MemoryError::Invalid(_))
    ));
}

#[tokio::test]
async fn invalid_input_is_refused_with_a_readable_error() {
    let fixture = store().await;
    let store = &fixture.store;
    assert!(matches!(
        store
            .save_embedded(new("   ", MemoryType::Fact), None)
            .await,
        Err(MemoryError::Invalid(_))
    ));
    let mut loud = new("x", MemoryType::Fact);
    loud.importance = Some(1.5);
    let error = store
        .save_embedded(loud, None)
        .await
        .expect_err("importance");
    assert!(error.to_string().contains("between 0 and 1"), "{error}");
    assert!("pets".parse::<MemoryType>().is_err());
    assert_eq!(
        "Identity".parse::<MemoryType>().expect("type"),
        MemoryType::Identity
    );
}

#[test]
fn the_memory_guidance_for_branches_renders() {
    let prompts = Prompts::new().expect("prompts");
    let guidance = prompts
        .render("memory_guidance", minijinja::context! {})
        .expect("renders");
    assert!(guidance.contains("memory_save") && guidance.contains("memory_recall"));
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
