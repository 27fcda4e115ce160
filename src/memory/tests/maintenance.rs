//! Maintenance: decay and pruning (never of identity memories) and merging near-duplicates
//! that were saved without an embedding.

use super::*;

const DAY: i64 = 86_400_000;

/// Gives memory `id` an embedding from the current embedder, as a backfill would.
async fn set_embedding(store: &MemoryStore, id: &str, vector: &[f32]) {
    let blob = index::to_blob(vector);
    sqlx::query!(
        "UPDATE memories SET embedding = ?, embedding_model = ? WHERE id = ?",
        blob,
        embedder::LOCAL_MODEL_ID,
        id,
    )
    .execute(&store.pool)
    .await
    .expect("embed");
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
    set_embedding(store, &older.memory.id, &vector(0, 1, 0.0)).await;
    // Identity memories are never merged, however similar.
    let identity_older = save(store, "I am Spacebot", MemoryType::Identity, None).await;
    save(
        store,
        "I am Spacebot, a helper",
        MemoryType::Identity,
        Some(vector(7, 6, 0.0)),
    )
    .await;
    set_embedding(store, &identity_older.memory.id, &vector(7, 6, 0.01)).await;
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
