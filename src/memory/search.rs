//! The pure parts of recall: turning a user's words into a safe FTS5 query, and reciprocal
//! rank fusion of ranked lists.

use std::collections::HashMap;

/// The `k` of reciprocal rank fusion: a document at rank `r` (1-based) of a list scores
/// `1 / (k + r)`, summed over the lists it is in.
pub const RRF_K: f64 = 60.0;

/// Words too common to rank by. Dropping them keeps BM25 from scoring most of the store.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "doing", "for",
    "from", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i",
    "if", "in", "into", "is", "it", "its", "just", "know", "me", "more", "most", "my", "no", "nor",
    "not", "now", "of", "on", "once", "only", "or", "other", "our", "ours", "out", "over", "own",
    "same", "she", "should", "so", "some", "such", "tell", "than", "that", "the", "their",
    "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too",
    "under", "until", "up", "us", "very", "was", "we", "were", "what", "when", "where", "which",
    "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours",
];

/// Terms kept from a query, at most.
const MAXIMUM_TERMS: usize = 16;

/// The words of free text worth searching for: letters and digits, lowercased, without stop
/// words and one-letter words, deduplicated, at most 16. A text of only such words keeps them
/// all (searching them beats searching nothing).
pub fn full_text_terms(text: &str) -> Vec<String> {
    let words: Vec<String> = text
        .split(|character: char| !character.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut terms: Vec<String> = Vec::new();
    for word in &words {
        let keep = word.chars().count() > 1 && !STOP_WORDS.contains(&word.as_str());
        if keep && !terms.contains(word) {
            terms.push(word.clone());
        }
    }
    if terms.is_empty() {
        for word in words {
            if !terms.contains(&word) {
                terms.push(word);
            }
        }
    }
    terms.truncate(MAXIMUM_TERMS);
    terms
}

/// One term as an FTS5 string: quoted, so FTS5 syntax in user text has no effect.
pub fn quote_term(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// An FTS5 MATCH expression for `terms`: any of them. `None` when there are none.
pub fn match_any(terms: &[&str]) -> Option<String> {
    if terms.is_empty() {
        return None;
    }
    Some(
        terms
            .iter()
            .map(|term| quote_term(term))
            .collect::<Vec<_>>()
            .join(" OR "),
    )
}

/// Which terms a ranked full-text query uses, given how many memories each one matches
/// (capped counts). Ranking costs time per matching memory, and a term in a large share of
/// memories adds little to BM25 anyway, so terms are taken rarest first while their matches
/// stay within `budget`. If none fits and `must_match` is set (no other ranked list exists),
/// the rarest term is used alone.
pub fn select_terms<'a>(counted: &[(&'a str, i64)], budget: i64, must_match: bool) -> Vec<&'a str> {
    let mut by_rarity: Vec<(&str, i64)> = counted
        .iter()
        .copied()
        .filter(|(_, matches)| *matches > 0)
        .collect();
    by_rarity.sort_by_key(|(term, matches)| (*matches, *term));
    let mut selected = Vec::new();
    let mut total = 0;
    for (term, matches) in &by_rarity {
        if total + matches <= budget {
            selected.push(*term);
            total += matches;
        }
    }
    if selected.is_empty()
        && must_match
        && let Some((term, _)) = by_rarity.first()
    {
        selected.push(*term);
    }
    selected
}

/// One fused result: the key, its RRF score, and its 1-based rank in each input list.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    pub key: String,
    pub score: f64,
    pub ranks: Vec<Option<usize>>,
}

/// Reciprocal rank fusion of ranked lists (best first). Higher scores first; ties go to the
/// better best rank, then to the earlier list, then to the key, so the order is deterministic.
/// A key repeated within one list counts at its first position.
pub fn reciprocal_rank_fusion(lists: &[Vec<String>]) -> Vec<Fused> {
    let mut fused: Vec<Fused> = Vec::new();
    let mut positions: HashMap<&str, usize> = HashMap::new();
    for (list_number, list) in lists.iter().enumerate() {
        for (offset, key) in list.iter().enumerate() {
            let position = *positions.entry(key.as_str()).or_insert_with(|| {
                fused.push(Fused {
                    key: key.clone(),
                    score: 0.0,
                    ranks: vec![None; lists.len()],
                });
                fused.len() - 1
            });
            let entry = &mut fused[position];
            if entry.ranks[list_number].is_none() {
                let rank = offset + 1;
                entry.ranks[list_number] = Some(rank);
                entry.score += 1.0 / (RRF_K + rank as f64);
            }
        }
    }
    let best_rank = |entry: &Fused| -> (usize, usize) {
        entry
            .ranks
            .iter()
            .enumerate()
            .filter_map(|(list, rank)| rank.map(|rank| (rank, list)))
            .min()
            .unwrap_or((usize::MAX, usize::MAX))
    };
    fused.sort_by(|left, right| {
        right
            .score
            .total_cmp(&left.score)
            .then_with(|| best_rank(left).cmp(&best_rank(right)))
            .then_with(|| left.key.cmp(&right.key))
    });
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|key| key.to_string()).collect()
    }

    #[test]
    fn fusion_rewards_agreement_between_lists() {
        let full_text = list(&["a", "b", "c", "d"]);
        let vector = list(&["c", "e", "a", "f"]);
        let graph = list(&["f"]);
        let fused = reciprocal_rank_fusion(&[full_text, vector, graph]);
        let order: Vec<&str> = fused.iter().map(|entry| entry.key.as_str()).collect();
        // a: 1/61 + 1/63; c: 1/63 + 1/61 (tie with a, broken by best rank 1 in list 0 vs
        // list 1); f: 1/64 + 1/61; b: 1/62; e: 1/62 (b wins on list order); d: 1/64.
        assert_eq!(order, vec!["a", "c", "f", "b", "e", "d"]);
        assert!((fused[0].score - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-12);
        assert_eq!(fused[0].ranks, vec![Some(1), Some(3), None]);
        assert_eq!(fused[2].ranks, vec![None, Some(4), Some(1)]);
    }

    #[test]
    fn fusion_counts_a_repeated_key_once_per_list() {
        let fused = reciprocal_rank_fusion(&[list(&["x", "x", "y"])]);
        assert_eq!(fused[0].key, "x");
        assert!((fused[0].score - 1.0 / 61.0).abs() < 1e-12);
        assert_eq!(fused[1].ranks, vec![Some(3)]);
    }

    #[test]
    fn full_text_terms_drop_stop_words_and_syntax() {
        assert_eq!(
            full_text_terms("What is my pet called?"),
            vec!["pet", "called"]
        );
        assert_eq!(
            full_text_terms("cats AND \"dogs\" NEAR(x) -y*"),
            vec!["cats", "dogs", "near"]
        );
        assert_eq!(full_text_terms("who is it"), vec!["who", "is", "it"]);
        assert!(full_text_terms("  ?! ").is_empty());
        assert_eq!(
            match_any(&["cats", "do\"gs"]).as_deref(),
            Some("\"cats\" OR \"do\"\"gs\"")
        );
        assert_eq!(match_any(&[]), None);
    }

    #[test]
    fn common_terms_are_left_out_of_the_ranked_query() {
        let counted = [("user", 5001), ("miso", 3), ("cat", 40), ("absent", 0)];
        assert_eq!(select_terms(&counted, 5000, false), vec!["miso", "cat"]);
        assert_eq!(select_terms(&counted, 20, false), vec!["miso"]);
        let common = [("user", 5001), ("likes", 5001)];
        assert!(select_terms(&common, 5000, false).is_empty());
        assert_eq!(select_terms(&common, 5000, true), vec!["likes"]);
    }
}
