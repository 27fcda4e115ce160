//! `GET /metrics` scraped as Prometheus would, and read with a strict text-format parser (both
//! the classic Prometheus text and OpenMetrics): what a turn, an LLM failure, a scheduled run
//! and the daemon's state show there.

use std::time::{Duration, Instant};

use openmetrics_parser::{
    MetricsExposition, OpenMetricsType, OpenMetricsValue, PrometheusType, PrometheusValue,
};

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{TestDaemon, config_for, reply};

type Classic = MetricsExposition<PrometheusType, PrometheusValue>;

/// The value of the sample of `family` whose labels include `labels` (a histogram's count).
fn value(exposition: &Classic, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let family = exposition.families.get(family)?;
    family
        .iter_samples()
        .find(|sample| {
            let Ok(set) = sample.get_labelset() else {
                return false;
            };
            labels.iter().all(|(name, wanted)| {
                set.iter()
                    .any(|(label, value)| label == name && value == wanted)
            })
        })
        .map(|sample| match &sample.value {
            PrometheusValue::Counter(counter) => counter.value.as_f64(),
            PrometheusValue::Gauge(number) | PrometheusValue::Unknown(number) => number.as_f64(),
            PrometheusValue::Histogram(histogram) => histogram.count.unwrap_or(0) as f64,
            PrometheusValue::Summary(summary) => summary.count.unwrap_or(0) as f64,
        })
}

async fn scrape(daemon: &TestDaemon, accept: Option<&str>) -> (String, String) {
    let mut request = daemon.http.get(daemon.url("/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (content_type, response.text().await.expect("body"))
}

/// Scrapes until `ready` holds for the parsed classic exposition.
async fn scrape_until(daemon: &TestDaemon, ready: impl Fn(&Classic) -> bool) -> Classic {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = scrape(daemon, None).await;
        let exposition = openmetrics_parser::prometheus::parse_prometheus(&body)
            .unwrap_or_else(|error| panic!("not Prometheus text: {error:?}\n{body}"));
        if ready(&exposition) {
            return exposition;
        }
        assert!(Instant::now() < deadline, "metrics never matched:\n{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_show_turns_llm_calls_errors_jobs_and_state_in_both_text_formats() {
    let llm = FakeLlm::start().await;
    // The first call fails with a 500, the retry answers.
    llm.push(Scripted::status(500, "overloaded"));
    llm.push(reply("counted"));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm)
        + "\n[[agents.cron]]\nid = \"nightly\"\nprompt = \"check\"\ncron = \"0 3 * * *\"\n";
    let daemon = TestDaemon::start(home.path(), &config).await;
    let answer = daemon.send("metrics", "hello").await;
    assert_eq!(answer["reply"], "counted", "{answer}");
    daemon
        .http
        .post(daemon.url("/api/agents/main/memories"))
        .json(&serde_json::json!({"content": "Ana likes tea", "type": "preference"}))
        .send()
        .await
        .expect("memory");

    let exposition = scrape_until(&daemon, |exposition| {
        value(exposition, "spacebot_turns_total", &[("agent", "main")]).is_some()
    })
    .await;
    let model = [("model", "fake/fake-model")];
    let turns = [("agent", "main"), ("outcome", "replied")];
    assert_eq!(
        value(&exposition, "spacebot_turns_total", &turns),
        Some(1.0)
    );
    assert_eq!(
        value(
            &exposition,
            "spacebot_turn_duration_seconds",
            &[("agent", "main")]
        ),
        Some(1.0),
        "one turn observed in the latency histogram"
    );
    let calls = |result| {
        value(
            &exposition,
            "spacebot_llm_calls_total",
            &[model[0], ("result", result)],
        )
    };
    assert_eq!(calls("ok"), Some(1.0));
    assert_eq!(calls("error"), Some(1.0));
    assert_eq!(
        value(
            &exposition,
            "spacebot_llm_errors_total",
            &[model[0], ("kind", "status_5xx")]
        ),
        Some(1.0)
    );
    let input_tokens = value(
        &exposition,
        "spacebot_llm_tokens_total",
        &[model[0], ("direction", "input")],
    );
    assert!(
        input_tokens.is_some_and(|tokens| tokens > 0.0),
        "{input_tokens:?}"
    );
    for (family, labels, expected) in [
        ("spacebot_workers_running", vec![("agent", "main")], 0.0),
        ("spacebot_branches_running", vec![("agent", "main")], 0.0),
        ("spacebot_pending_messages", vec![("agent", "main")], 0.0),
        ("spacebot_inbox_depth", vec![("agent", "main")], 0.0),
        (
            "spacebot_memories",
            vec![("agent", "main"), ("type", "preference")],
            1.0,
        ),
        (
            "spacebot_cron_jobs",
            vec![("agent", "main"), ("state", "enabled")],
            1.0,
        ),
        (
            "spacebot_adapter_state",
            vec![("adapter", "telegram"), ("state", "disabled")],
            1.0,
        ),
        (
            "spacebot_adapter_state",
            vec![("adapter", "portal"), ("state", "connected")],
            1.0,
        ),
        ("spacebot_config_reload_failing", vec![], 0.0),
    ] {
        assert_eq!(
            value(&exposition, family, &labels),
            Some(expected),
            "{family} {labels:?}"
        );
    }
    let database = value(
        &exposition,
        "spacebot_database_size_bytes",
        &[("database", "agent:main")],
    );
    assert!(database.is_some_and(|bytes| bytes > 0.0), "{database:?}");

    // A scheduled run is counted by its end state.
    let run = daemon
        .http
        .post(daemon.url("/api/agents/main/cron/nightly/run"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("run");
    assert!(run.status().is_success(), "{}", run.status());
    llm.push(reply("all quiet"));
    scrape_until(&daemon, |exposition| {
        value(
            exposition,
            "spacebot_cron_runs_total",
            &[("agent", "main"), ("state", "succeeded")],
        ) == Some(1.0)
    })
    .await;

    // OpenMetrics for a scraper that asks for it, read by the strict OpenMetrics parser.
    let (content_type, body) = scrape(&daemon, Some("application/openmetrics-text")).await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let open = openmetrics_parser::openmetrics::parse_openmetrics(&body)
        .unwrap_or_else(|error| panic!("not OpenMetrics: {error:?}\n{body}"));
    let turns = open.families.get("spacebot_turns").expect("turns family");
    assert_eq!(turns.family_type, OpenMetricsType::Counter);
    let histogram = open
        .families
        .get("spacebot_turn_duration_seconds")
        .expect("histogram family");
    assert_eq!(histogram.family_type, OpenMetricsType::Histogram);
    assert!(
        histogram
            .iter_samples()
            .any(|sample| matches!(&sample.value, OpenMetricsValue::Histogram(value) if value.count >= Some(1))),
        "{body}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn metrics_need_the_token_when_one_is_set() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + "\n[api]\ntoken = \"metrics-token-123\"\n";
    let daemon = TestDaemon::start(home.path(), &config).await;
    let anonymous = daemon
        .http
        .get(daemon.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(anonymous.status(), 401);
    let scraper = daemon
        .http
        .get(daemon.url("/metrics"))
        .bearer_auth("metrics-token-123")
        .send()
        .await
        .expect("scrape");
    assert_eq!(scraper.status(), 200);
    let body = scraper.text().await.expect("body");
    openmetrics_parser::prometheus::parse_prometheus(&body).expect("Prometheus text");
    daemon.shutdown().await;
}
