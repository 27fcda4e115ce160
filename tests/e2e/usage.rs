//! Token usage and cost: `GET /api/usage` and `spacebot usage` by agent, model, process kind
//! and day, priced from the config's table over the built-in one, Anthropic cache reads and
//! writes recorded and priced, and the daily token budget.

use std::process::Command;

use serde_json::json;

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{TestDaemon, anthropic_config_for, config_for};

const PRICING: &str = "\n[llm.pricing.\"fake-model\"]\ninput = 1000.0\noutput = 2000.0\n\
[llm.pricing.\"fake/fake-claude\"]\ninput = 1000.0\noutput = 2000.0\ncache_read = 100.0\ncache_write = 1250.0\n";

#[tokio::test]
async fn usage_shows_tokens_and_cost_by_agent_model_process_and_day() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::tool_call("reply", json!({"content": "one"})));
    llm.push(Scripted::tool_call("reply", json!({"content": "two"})));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &(config_for(&llm) + PRICING)).await;
    daemon.send("costs", "first").await;
    daemon.send("costs", "second").await;
    let report = daemon.get("/api/usage?days=7").await;
    let total = &report["total"];
    assert_eq!(total["calls"], 2);
    assert_eq!(total["input_tokens"], 20);
    assert_eq!(total["output_tokens"], 10);
    // 20 input at $1000/M and 10 output at $2000/M.
    let cost = total["cost_usd"].as_f64().expect("cost");
    assert!((cost - 0.04).abs() < 1e-9, "{cost}");
    assert_eq!(report["by_agent"]["main"]["calls"], 2);
    assert_eq!(report["by_model"]["fake/fake-model"]["output_tokens"], 10);
    assert_eq!(report["by_process_type"]["channel"]["calls"], 2);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(report["by_day"][&today]["calls"], 2);
    assert_eq!(report["unpriced_models"], json!([]));

    let base_url = daemon.base_url.clone();
    // The daemon runs on this test's runtime: the CLI waits on another thread.
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_spacebot"))
            .env_remove("SPACEBOT_API_TOKEN")
            .args(["--url", &base_url, "usage", "--days", "7"])
            .output()
    })
    .await
    .expect("join")
    .expect("run spacebot");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("2 calls"), "{printed}");
    assert!(printed.contains("fake/fake-model"), "{printed}");
    assert!(printed.contains("channel"), "{printed}");
    assert!(printed.contains(&today), "{printed}");
    assert!(printed.contains("0.0400"), "{printed}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn anthropic_cache_reads_and_writes_are_recorded_and_priced() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::tool_call("reply", json!({"content": "cached"})));
    let home = tempfile::tempdir().expect("tempdir");
    let config = anthropic_config_for(&llm) + PRICING;
    let daemon = TestDaemon::start(home.path(), &config).await;
    daemon.send("cache", "hello").await;
    let report = daemon.get("/api/usage").await;
    let total = &report["total"];
    assert_eq!(total["input_tokens"], 10);
    assert_eq!(total["cache_read_tokens"], 30);
    assert_eq!(total["cache_write_tokens"], 20);
    assert_eq!(total["output_tokens"], 5);
    // 10 x 1000 + 30 x 100 + 20 x 1250 + 5 x 2000, per million.
    let cost = total["cost_usd"].as_f64().expect("cost");
    assert!((cost - 0.048).abs() < 1e-9, "{cost}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_spent_daily_budget_answers_without_calling_the_model() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::tool_call(
        "reply",
        json!({"content": "within budget"}),
    ));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm).replace(
        "id = \"main\"\ndefault = true\n",
        "id = \"main\"\ndefault = true\ndaily_token_budget = 12\n",
    );
    let daemon = TestDaemon::start(home.path(), &config).await;
    assert_eq!(
        daemon.send("budget", "first").await["reply"],
        "within budget"
    );
    let refused = daemon.send("budget", "second").await;
    let text = refused["reply"].as_str().expect("a reply");
    assert!(
        text.contains("token budget of 12 tokens is spent"),
        "{text}"
    );
    assert_eq!(llm.request_count(), 1, "the model was not called again");
    let status = daemon.get("/api/status").await;
    let agent = &status["agents"][0];
    assert_eq!(agent["daily_token_budget"], 12);
    assert_eq!(agent["tokens_today"], 15);
    assert_eq!(agent["budget_spent"], true);
    let command = daemon.send("budget", "/status").await;
    assert!(
        command["reply"]
            .as_str()
            .is_some_and(|text| text.contains("Tokens today: 15 of 12 (spent)")),
        "{command}"
    );
    daemon.shutdown().await;
}
