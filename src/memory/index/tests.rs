//! The vector index against exact brute force: small, large (through the sign scan), after
//! removals, and the stored BLOB format.

use super::*;

fn random_unit(state: &mut u64, dimensions: usize) -> Vec<f32> {
    let mut vector: Vec<f32> = (0..dimensions)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            ((*state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    normalize(&mut vector);
    vector
}

#[test]
fn search_agrees_with_exact_brute_force() {
    let mut state = 0x9E37_79B9_7F4A_7C15;
    let vectors: Vec<Vec<f32>> = (0..2000).map(|_| random_unit(&mut state, 384)).collect();
    let mut index = VectorIndex::new();
    for (number, vector) in vectors.iter().enumerate() {
        index
            .upsert(&format!("m{number}"), (number % 3) as u8, vector)
            .expect("dimensions");
    }
    for _ in 0..20 {
        // A query near a stored vector, like a paraphrase.
        let base = &vectors[(state % 2000) as usize];
        let noise = random_unit(&mut state, 384);
        let mut query: Vec<f32> = base.iter().zip(&noise).map(|(a, b)| a + 0.6 * b).collect();
        normalize(&mut query);
        let mut exact: Vec<(usize, f32)> = vectors
            .iter()
            .enumerate()
            .map(|(number, vector)| (number, dot(&query, vector)))
            .collect();
        exact.sort_by(|a, b| b.1.total_cmp(&a.1));
        let hits = index.search(&query, 10, None);
        assert_eq!(hits.len(), 10);
        assert_eq!(&*hits[0].id, format!("m{}", exact[0].0));
        for (hit, (_, similarity)) in hits.iter().zip(&exact) {
            assert!(
                (hit.similarity - similarity).abs() < 0.01,
                "{hit:?} vs {similarity}"
            );
        }
        let filtered = index.search(&query, 5, Some(1));
        assert!(filtered.iter().all(|hit| {
            let number: usize = hit.id[1..].parse().expect("id");
            number % 3 == 1
        }));
    }
}

#[test]
fn a_large_index_finds_the_same_nearest_vectors_through_the_sign_scan() {
    let mut state = 0x2545_F491_4F6C_DD1D;
    let count = SIGN_SCAN_FROM + 5_000;
    // Clustered like real embeddings: each vector near one of 50 topic centres.
    let centres: Vec<Vec<f32>> = (0..50).map(|_| random_unit(&mut state, 384)).collect();
    let mut index = VectorIndex::new();
    let mut vectors = Vec::with_capacity(count);
    for number in 0..count {
        let noise = random_unit(&mut state, 384);
        let centre = &centres[number % centres.len()];
        let mut vector: Vec<f32> = centre
            .iter()
            .zip(&noise)
            .map(|(c, n)| c + 1.2 * n)
            .collect();
        normalize(&mut vector);
        index
            .upsert(&format!("m{number}"), 0, &vector)
            .expect("dimensions");
        vectors.push(vector);
    }
    let mut overlap = 0;
    for round in 0..20 {
        let base = &vectors[(round * 997) % count];
        let noise = random_unit(&mut state, 384);
        let mut query: Vec<f32> = base.iter().zip(&noise).map(|(a, b)| a + 0.8 * b).collect();
        normalize(&mut query);
        let mut exact: Vec<(usize, f32)> = vectors
            .iter()
            .enumerate()
            .map(|(number, vector)| (number, dot(&query, vector)))
            .collect();
        exact.sort_by(|a, b| b.1.total_cmp(&a.1));
        let hits = index.search(&query, 10, None);
        assert_eq!(&*hits[0].id, format!("m{}", exact[0].0));
        let expected: Vec<String> = exact
            .iter()
            .take(10)
            .map(|(number, _)| format!("m{number}"))
            .collect();
        overlap += hits
            .iter()
            .filter(|hit| expected.contains(&hit.id.to_string()))
            .count();
    }
    // Nearly every one of the exact top ten (of 200) is found.
    assert!(overlap >= 190, "{overlap} of 200");
    // Removing keeps the signs in step with the slots.
    assert!(index.remove("m0"));
    let hits = index.search(&vectors[count - 1], 1, None);
    assert_eq!(&*hits[0].id, format!("m{}", count - 1));
}

#[test]
fn remove_moves_the_last_slot_and_keeps_ids_straight() {
    let mut index = VectorIndex::new();
    index.upsert("a", 0, &[1.0, 0.0]).expect("dims");
    index.upsert("b", 0, &[0.0, 1.0]).expect("dims");
    index.upsert("c", 0, &[0.6, 0.8]).expect("dims");
    assert!(index.remove("a"));
    assert!(!index.remove("a"));
    assert_eq!(index.len(), 2);
    let hits = index.search(&[0.0, 1.0], 2, None);
    assert_eq!(&*hits[0].id, "b");
    assert_eq!(&*hits[1].id, "c");
    index.upsert("b", 0, &[1.0, 0.0]).expect("dims");
    assert_eq!(&*index.search(&[1.0, 0.0], 1, None)[0].id, "b");
    assert!(index.upsert("d", 0, &[1.0, 0.0, 0.0]).is_err());
}

#[test]
fn blobs_round_trip() {
    let vector = vec![0.25f32, -1.5, 3.0];
    assert_eq!(from_blob(&to_blob(&vector)), Some(vector));
    assert_eq!(from_blob(&[0, 1, 2]), None);
}
