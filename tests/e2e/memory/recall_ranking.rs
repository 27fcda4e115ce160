//! Recall ranks by meaning, as a new user tries it: facts saved through the API, questions
//! asked through the API, the real embedding model. A question that shares only a generic
//! word ("called", "work", "name") with a wrong memory must still get the right one first.

use serde_json::Value;

use super::{add, config_with_model, search};
use crate::fake_llm::FakeLlm;
use crate::harness::TestDaemon;

/// Eleven facts, as in the report that "what is my pet called" found the staging server
/// first, and a few more that share generic words with the questions below.
const FACTS: [(&str, &str); 16] = [
    ("The staging server is called hydra.", "fact"),
    ("The user's cat is named Miso.", "fact"),
    ("The user's sister Lena lives in Porto.", "fact"),
    ("The user works as a nurse at the city hospital.", "fact"),
    ("The user is allergic to peanuts.", "fact"),
    ("The user drives an old blue Volvo.", "fact"),
    ("The user's favourite band is Radiohead.", "preference"),
    ("The weekly team meeting is on Monday at 10.", "event"),
    ("The user's birthday is on 14 March.", "fact"),
    ("The user is learning to play the cello.", "goal"),
    ("The user's partner Sam is a carpenter.", "fact"),
    ("The new café in town is called Grind.", "fact"),
    ("The user's manager at work is named Carla.", "fact"),
    ("The Wi-Fi network at home is called Hollow.", "fact"),
    ("The project at work is called Falcon.", "fact"),
    (
        "The user's running club meets on Thursday evenings.",
        "event",
    ),
];

/// (question, the memory that answers it)
const QUESTIONS: [(&str, &str); 13] = [
    ("what is my pet called", "The user's cat is named Miso."),
    (
        "where does my sister live",
        "The user's sister Lena lives in Porto.",
    ),
    (
        "what do I do for a living",
        "The user works as a nurse at the city hospital.",
    ),
    (
        "which food makes me ill",
        "The user is allergic to peanuts.",
    ),
    ("what car do I have", "The user drives an old blue Volvo."),
    (
        "what music do I like",
        "The user's favourite band is Radiohead.",
    ),
    (
        "when do we have the team meeting",
        "The weekly team meeting is on Monday at 10.",
    ),
    ("when was I born", "The user's birthday is on 14 March."),
    (
        "which instrument am I practising",
        "The user is learning to play the cello.",
    ),
    (
        "what is my partner's job",
        "The user's partner Sam is a carpenter.",
    ),
    (
        "what is the name of the test machine",
        "The staging server is called hydra.",
    ),
    (
        "who is my boss",
        "The user's manager at work is named Carla.",
    ),
    (
        "where can I get a coffee",
        "The new café in town is called Grind.",
    ),
];

#[tokio::test]
async fn recall_puts_the_meaning_first_over_a_generic_word_match() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_with_model(&llm)).await;
    for (content, memory_type) in FACTS {
        add(&daemon, "main", content, memory_type).await;
    }
    let mut wrong = Vec::new();
    for (question, answer) in QUESTIONS {
        let result = search(&daemon, "main", question).await;
        assert_eq!(result["full_text_only"], false);
        let first = result["memories"][0]["content"]
            .as_str()
            .unwrap_or_default();
        if first != answer {
            let top: Vec<String> = result["memories"]
                .as_array()
                .into_iter()
                .flatten()
                .take(3)
                .map(describe)
                .collect();
            wrong.push(format!("{question:?} -> {top:?}"));
        }
    }
    assert!(wrong.is_empty(), "ranked wrong:\n{}", wrong.join("\n"));
    daemon.shutdown().await;
}

fn describe(memory: &Value) -> String {
    format!(
        "{} (score {:.3}, similarity {:.3}, full-text rank {})",
        memory["content"].as_str().unwrap_or_default(),
        memory["score"].as_f64().unwrap_or_default(),
        memory["similarity"].as_f64().unwrap_or_default(),
        memory["full_text_rank"]
    )
}
