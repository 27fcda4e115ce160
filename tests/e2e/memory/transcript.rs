//! `channel_recall` searches the transcript with memory recall's scoring: by meaning and by
//! informative words, not by requiring every word of the query.

use serde_json::json;

use super::{config_with_model, run_in_branch};
use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::TestDaemon;

#[tokio::test]
async fn transcript_search_finds_messages_by_meaning_and_rare_words() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_with_model(&llm)).await;
    for said in [
        "My cat Miso threw up on the rug this morning",
        "The staging server is called hydra",
        "Remind me to call the plumber about the boiler",
        "We had pasta for dinner",
    ] {
        // Answered in plain text: no tool results in the history the branch forks.
        llm.push_when(said, Scripted::text("Noted."));
        daemon.send("home", said).await;
    }
    let results = run_in_branch(
        &daemon,
        &llm,
        "home",
        vec![
            (
                "channel_recall",
                json!({"query": "what is my pet called", "max_results": 2}),
            ),
            (
                "channel_recall",
                json!({"query": "hydra", "max_results": 1}),
            ),
            (
                "channel_recall",
                json!({"query": "who fixes the heating", "max_results": 1}),
            ),
            (
                "channel_recall",
                json!({"query": "quantum chromodynamics lecture"}),
            ),
        ],
    )
    .await;
    // No message holds "pet": found by meaning, before the one sharing "called".
    let first_line = results[0].lines().next().unwrap_or_default();
    assert!(
        first_line.contains("My cat Miso threw up"),
        "{}",
        results[0]
    );
    assert!(
        results[1].contains("The staging server is called hydra"),
        "{}",
        results[1]
    );
    assert!(results[2].contains("plumber"), "{}", results[2]);
    assert_eq!(results[3], "no matching messages");
    daemon.shutdown().await;
}
