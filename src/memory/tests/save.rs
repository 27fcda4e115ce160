//! Saving and forgetting: forgotten memories stay hidden, near-duplicates update the
//! existing memory, saves are announced, and invalid input is refused readably.

use super::*;

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
    let snapshot = store
        .snapshot(&Audience::Everything)
        .await
        .expect("snapshot");
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
    memory.origin = Origin::conversation("portal:x", None, true);
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
