//! Recall: hybrid scoring of full-text and vector candidates, type filters, the association
//! walk, the audience filter, and the recent and important modes.

use super::*;

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
    // Each score is the similarity plus the weighted full-text share and the small
    // recency and importance terms: it keeps both magnitudes.
    for recalled in &result.memories {
        assert!(recalled.similarity.is_some(), "{recalled:?}");
        let similarity = f64::from(recalled.similarity.unwrap_or_default());
        assert!(recalled.score >= similarity - 0.02, "{recalled:?}");
        assert!(
            recalled.score <= similarity + search::FULL_TEXT_WEIGHT + 0.05,
            "{recalled:?}"
        );
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
