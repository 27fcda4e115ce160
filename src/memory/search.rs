//! The pure parts of recall: turning a user's words into a safe FTS5 query, weighing them
//! by how informative they are, and scoring candidates from both lists on one scale.

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
/// words and one-letter words (but with one-digit numbers), deduplicated, at most 16. A text of only such words keeps them
/// all (searching them beats searching nothing).
pub fn full_text_terms(text: &str) -> Vec<String> {
    let words: Vec<String> = text
        .split(|character: char| !character.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut terms: Vec<String> = Vec::new();
    for word in &words {
        // A one-digit number is a day or an hour ("on 7 May"): kept, so dates can match.
        let meaningful =
            word.chars().count() > 1 || word.chars().all(|character| character.is_ascii_digit());
        let keep = meaningful && !STOP_WORDS.contains(&word.as_str());
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

/// A word without its commonest English endings ("walked", "walking", "walks" -> "walk"),
/// for matching words outside FTS5 (which stems with Porter's algorithm).
pub fn stem(word: &str) -> &str {
    for ending in ["ing", "ed", "es", "s"] {
        if let Some(root) = word.strip_suffix(ending)
            && root.chars().count() >= 3
        {
            return root;
        }
    }
    word
}

/// The share of the query's information a text's words match (as `full_text_strength` does
/// for BM25 hits): `terms` are the query's terms with their idf, matched by stem.
pub fn words_share(text: &str, terms: &[(String, f64)]) -> f64 {
    let information: f64 = terms.iter().map(|(_, weight)| weight).sum();
    if information <= 0.0 {
        return 0.0;
    }
    let words: std::collections::HashSet<String> = text
        .split(|character: char| !character.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| stem(&word.to_lowercase()).to_string())
        .collect();
    let matched: f64 = terms
        .iter()
        .filter(|(term, _)| words.contains(stem(term)))
        .map(|(_, weight)| weight)
        .sum();
    (matched / information).clamp(0.0, 1.0)
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

/// Hybrid scoring. A candidate's score is its cosine similarity with the query, plus
/// `FULL_TEXT_WEIGHT` times the square of the share of the query's information its words
/// match (so matching one word of several counts far less than matching them all), counted
/// in full only when the meaning is at least loosely related (similarity `MEANING_GATE` or
/// more), plus small recency and importance terms. Similarity and word matches keep their
/// magnitudes: a weak match of one generic word cannot outrank a strong match of meaning.
/// Tuned on `cargo bench --bench memory_quality`.
pub const FULL_TEXT_WEIGHT: f64 = 0.1;
/// Below this similarity a word match counts in proportion (a coincidental match of a
/// word in an unrelated memory).
pub const MEANING_GATE: f64 = 0.3;
/// Added to a memory that is newer than another candidate about the same thing (an update
/// of it), so the current version of a changed preference comes first.
pub const RECENCY_WEIGHT: f64 = 0.03;
/// Weight of importance (0..=1, centred on 0.5).
pub const IMPORTANCE_WEIGHT: f64 = 0.02;
/// A memory reached over an association scores this share of its start's score, times the
/// association's weight.
pub const WALK_SHARE: f64 = 0.5;

/// BM25's inverse document frequency as FTS5 computes it: `ln((N - n + 0.5) / (n + 0.5))`,
/// never below 1e-6 (a term in most memories weighs nothing).
pub fn inverse_document_frequency(total: i64, matches: i64) -> f64 {
    let total = total.max(matches).max(0) as f64;
    let matches = matches.max(0) as f64;
    ((total - matches + 0.5) / (matches + 0.5)).ln().max(1e-6)
}

/// How much of the query a full-text hit matches: its BM25 score over the query's
/// information (the sum of its terms' idf, counting terms no memory contains at full
/// weight), at most 1. Matching only a generic word of a query that also asks for a rare one
/// gives a small share.
pub fn full_text_strength(bm25: f64, query_information: f64) -> f64 {
    if query_information <= 0.0 || !bm25.is_finite() {
        return 0.0;
    }
    (bm25 / query_information).clamp(0.0, 1.0)
}

/// What is known of one candidate when it is scored.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Signals {
    /// Cosine similarity with the query (`None` without a query embedding or a vector).
    pub similarity: Option<f32>,
    /// `full_text_strength`, 0 when its words did not match.
    pub full_text: f64,
    /// 1 for a memory newer than another candidate about the same thing, else 0.
    pub recency: f64,
    pub importance: f64,
}

pub fn hybrid_score(signals: &Signals) -> f64 {
    let relevance = match signals.similarity {
        Some(similarity) => {
            let similarity = f64::from(similarity);
            let words = signals.full_text * signals.full_text;
            similarity + FULL_TEXT_WEIGHT * words * (similarity / MEANING_GATE).clamp(0.0, 1.0)
        }
        // Without a query embedding the words' share is the relevance, on the same 0..1
        // scale as a similarity.
        None => signals.full_text,
    };
    relevance + RECENCY_WEIGHT * signals.recency + IMPORTANCE_WEIGHT * (signals.importance - 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weak_match_of_one_generic_word_loses_to_a_strong_match_of_meaning() {
        // "what is my pet called" over eleven memories: "called" is in one of them (the
        // staging server), "pet" in none; the cat memory matches by meaning only.
        let total = 11;
        let information =
            inverse_document_frequency(total, 1) + inverse_document_frequency(total, 0);
        let server = Signals {
            similarity: Some(0.12),
            full_text: full_text_strength(1.1 * inverse_document_frequency(total, 1), information),
            ..Signals::default()
        };
        let cat = Signals {
            similarity: Some(0.41),
            ..Signals::default()
        };
        assert!(server.full_text < 0.5, "{server:?}");
        assert!(hybrid_score(&cat) > hybrid_score(&server));
        // Every word of a one-word query matched, in an unrelated memory ("what do I do for
        // a living" and "Lena lives in Porto"), still loses to the meaning.
        let lives = Signals {
            similarity: Some(0.08),
            full_text: 1.0,
            ..Signals::default()
        };
        let nurse = Signals {
            similarity: Some(0.27),
            ..Signals::default()
        };
        assert!(hybrid_score(&nurse) > hybrid_score(&lives));
        // Between two memories of close meaning, the one that has the words wins.
        let both = Signals {
            similarity: Some(0.38),
            full_text: full_text_strength(information, information),
            ..Signals::default()
        };
        assert!(hybrid_score(&both) > hybrid_score(&cat));
        // Without a query embedding, words alone order the hits.
        let full = Signals {
            full_text: 0.9,
            ..Signals::default()
        };
        let partial = Signals {
            full_text: 0.4,
            ..Signals::default()
        };
        assert!(hybrid_score(&full) > hybrid_score(&partial));
    }

    #[test]
    fn recency_and_importance_only_separate_near_ties() {
        let old = Signals {
            similarity: Some(0.60),
            recency: 0.0,
            importance: 0.5,
            ..Signals::default()
        };
        let update = Signals {
            recency: 1.0,
            ..old
        };
        assert!(hybrid_score(&update) > hybrid_score(&old));
        let unrelated_but_new_and_important = Signals {
            similarity: Some(0.5),
            recency: 1.0,
            importance: 1.0,
            ..Signals::default()
        };
        assert!(hybrid_score(&old) > hybrid_score(&unrelated_but_new_and_important));
        assert!(inverse_document_frequency(10, 9) <= 1e-6);
        assert!(inverse_document_frequency(10, 0) > inverse_document_frequency(10, 1));
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
        assert_eq!(
            full_text_terms("What did I do on 7 May 2024?"),
            vec!["7", "may", "2024"]
        );
        assert!(full_text_terms("  ?! ").is_empty());
        assert_eq!(
            match_any(&["cats", "do\"gs"]).as_deref(),
            Some("\"cats\" OR \"do\"\"gs\"")
        );
        assert_eq!(match_any(&[]), None);
    }

    #[test]
    fn words_match_by_stem_and_weigh_by_their_idf() {
        let terms = vec![("walked".to_string(), 3.0), ("dog".to_string(), 1.0)];
        assert!((words_share("I walk the dogs daily", &terms) - 1.0).abs() < 1e-9);
        assert!((words_share("A dog barked", &terms) - 0.25).abs() < 1e-9);
        assert_eq!(words_share("nothing here", &terms), 0.0);
        assert_eq!(stem("walking"), "walk");
        assert_eq!(stem("is"), "is");
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
