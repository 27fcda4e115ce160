//! `web_fetch` and `web_search` used by a worker through the fake LLM: a fake SearXNG and a
//! local page (allowed by config) on 127.0.0.1, and the SSRF guard refusing loopback and the
//! metadata address by default and through a redirect from an allowed host.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{TestDaemon, config_for, reply, spawn_worker_on, worker_results};

const WORKER: &str = "You are a worker";

const PAGE: &str = r#"<!doctype html><html><head><title>Tomato guide</title>
<script>window.tracking = "do not show";</script></head>
<body><nav><a href="/">Home</a></nav><main><h1>Growing tomatoes</h1>
<p>Water them <b>every morning</b> and read <a href="/more">more</a>.</p>
<ul><li>Full sun</li><li>Loamy soil</li></ul></main><footer>© Garden</footer></body></html>"#;

/// A web server on 127.0.0.1 that records every path it is asked for.
#[derive(Clone)]
struct FakeWeb {
    port: u16,
    hits: Arc<Mutex<Vec<String>>>,
}

impl FakeWeb {
    async fn start() -> FakeWeb {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let fake = FakeWeb {
            port,
            hits: Arc::default(),
        };
        let app = Router::new().fallback(serve).with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().expect("hits").clone()
    }
}

async fn serve(
    State(fake): State<FakeWeb>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: String,
) -> Response {
    fake.hits.lock().expect("hits").push(
        uri.path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default(),
    );
    let redirect =
        |location: String| (StatusCode::FOUND, [(header::LOCATION, location)], "").into_response();
    match uri.path() {
        "/page" => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response(),
        "/to-metadata" => redirect("http://169.254.169.254/latest/meta-data/".to_string()),
        "/to-localhost" => redirect(format!("http://localhost:{}/secret", fake.port)),
        "/to-page" => redirect("/page".to_string()),
        "/secret" => "the secret".into_response(),
        // Brave's web search: the key in X-Subscription-Token, results under web.results.
        "/res/v1/web/search" => {
            if headers
                .get("x-subscription-token")
                .and_then(|v| v.to_str().ok())
                != Some("brave-key")
            {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            assert!(query.unwrap_or_default().contains("q=grow+tomatoes"));
            axum::Json(json!({"web": {"results": [
                {"title": "Brave tomatoes", "url": "https://example.org/b", "description": "Grow <strong>tomatoes</strong>"}
            ]}}))
            .into_response()
        }
        // Tavily: a JSON POST with a bearer key, results with their content.
        "/tavily/search" => {
            if headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                != Some("Bearer tavily-key")
            {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            let request: Value = serde_json::from_str(&body).expect("a JSON body");
            assert_eq!(request["query"], "grow tomatoes");
            axum::Json(json!({"query": "grow tomatoes", "results": [
                {"title": "Tavily tomatoes", "url": "https://example.org/t", "content": "Tomatoes like sun", "score": 0.9}
            ]}))
            .into_response()
        }
        "/report.pdf" => (
            [(header::CONTENT_TYPE, "application/pdf")],
            crate::media::pdf_with_text("Quarterly tomato yield: 42 kg"),
        )
            .into_response(),
        "/search" => {
            let query = query.unwrap_or_default();
            assert!(query.contains("format=json"), "{query}");
            axum::Json(json!({
                "query": "grow tomatoes",
                "results": [
                    {"title": "Tomato guide", "url": fake.url("/page"), "content": "How to <b>grow</b> tomatoes &amp; more", "engine": "fake"},
                    {"title": "Second", "url": "https://example.org/2", "content": "Another page"}
                ]
            }))
            .into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The worker calls each of `calls` in turn, then reports done; the channel answers
/// anything else with a short reply.
fn script_worker(llm: &FakeLlm, calls: Vec<(&'static str, Value)>) {
    llm.set_fallback(move |request| {
        if !FakeLlm::system_text(request).contains(WORKER) {
            return reply("Noted.");
        }
        let done = FakeLlm::tool_results(request).len();
        match calls.get(done) {
            Some((name, arguments)) => Scripted::tool_call(name, arguments.clone()),
            None => Scripted::tool_call("set_status", json!({"state": "done", "message": "read"})),
        }
    });
}

#[tokio::test]
async fn a_worker_searches_and_reads_a_local_page_allowed_by_config() {
    let web = FakeWeb::start().await;
    let llm = FakeLlm::start().await;
    spawn_worker_on(
        "research tomatoes",
        &llm,
        "find how to grow tomatoes",
        "Looking.",
    );
    script_worker(
        &llm,
        vec![
            ("web_search", json!({"query": "grow tomatoes"})),
            ("web_fetch", json!({"url": web.url("/to-page")})),
            ("web_fetch", json!({"url": web.url("/to-metadata")})),
            ("web_fetch", json!({"url": web.url("/to-localhost")})),
            ("web_fetch", json!({"url": web.url("/report.pdf")})),
        ],
    );
    let config = format!(
        "{}\n[web]\nallow_hosts = [\"127.0.0.1\"]\n\n[web.search]\nbackend = \"searxng\"\nurl = \"{}\"\n",
        config_for(&llm),
        web.url("")
    );
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config).await;
    daemon.send("web", "research tomatoes").await;
    let (results, request) = worker_results(&llm, 5).await;
    let offered = FakeLlm::tool_names(&request);
    assert!(
        offered.contains(&"web_fetch".to_string()) && offered.contains(&"web_search".to_string()),
        "{offered:?}"
    );

    let found: Value = serde_json::from_str(&results[0]).expect("search results are JSON");
    assert_eq!(
        found[0],
        json!({"title": "Tomato guide", "url": web.url("/page"), "snippet": "How to grow tomatoes & more"})
    );
    assert_eq!(found.as_array().map(Vec::len), Some(2));

    let page = &results[1];
    assert!(
        page.contains(&format!("URL: {}", web.url("/page"))),
        "{page}"
    );
    assert!(page.contains("Status: 200"), "{page}");
    assert!(
        page.contains(&format!(
            "# Growing tomatoes\n\nWater them **every morning** and read [more]({}).\n\n- Full sun\n- Loamy soil",
            web.url("/more")
        )),
        "{page}"
    );
    assert!(
        !page.contains("tracking") && !page.contains("Garden"),
        "{page}"
    );

    assert!(results[2].starts_with("error:"), "{}", results[2]);
    assert!(
        results[2].contains("169.254.169.254") && results[2].contains("metadata"),
        "{}",
        results[2]
    );
    assert!(results[3].starts_with("error:"), "{}", results[3]);
    assert!(
        results[3].contains("`localhost`") && results[3].contains("loopback"),
        "{}",
        results[3]
    );
    assert!(
        results[4].contains("Quarterly tomato yield: 42 kg"),
        "a PDF's text: {}",
        results[4]
    );
    let hits = web.hits();
    assert!(
        hits.iter()
            .any(|hit| hit.starts_with("/search?q=grow+tomatoes")),
        "{hits:?}"
    );
    assert!(!hits.contains(&"/secret".to_string()), "{hits:?}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn the_guard_refuses_loopback_and_metadata_addresses_by_default() {
    let web = FakeWeb::start().await;
    let llm = FakeLlm::start().await;
    spawn_worker_on("peek inside", &llm, "read the internal pages", "Looking.");
    script_worker(
        &llm,
        vec![
            ("web_fetch", json!({"url": web.url("/secret")})),
            (
                "web_fetch",
                json!({"url": "http://169.254.169.254/latest/meta-data/"}),
            ),
            (
                "web_fetch",
                json!({"url": format!("http://[::1]:{}/secret", web.port)}),
            ),
            (
                "web_fetch",
                json!({"url": format!("http://localhost:{}/page", web.port)}),
            ),
            ("web_fetch", json!({"url": "file:///etc/passwd"})),
        ],
    );
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    daemon.send("peek", "peek inside").await;
    let (results, request) = worker_results(&llm, 5).await;
    assert!(
        !FakeLlm::tool_names(&request).contains(&"web_search".to_string()),
        "web_search is offered only with a backend"
    );
    for (result, expected) in results.iter().zip([
        "`127.0.0.1` resolves to 127.0.0.1, a loopback address",
        "`169.254.169.254` resolves to 169.254.169.254, a cloud metadata address",
        "`::1` resolves to ::1, a loopback address",
        "`localhost` resolves to",
        "only http:// and https:// URLs",
    ]) {
        assert!(
            result.starts_with("error:") && result.contains(expected),
            "{result}"
        );
    }
    assert!(web.hits().is_empty(), "{:?}", web.hits());
    daemon.shutdown().await;
}

/// Brave and Tavily, each against a fake of its API on 127.0.0.1: the key goes where the
/// backend wants it and the answer becomes title, URL and snippet.
#[tokio::test]
async fn brave_and_tavily_answer_web_search_with_their_keys() {
    let web = FakeWeb::start().await;
    for (backend, url, variable, key, expected) in [
        (
            "brave",
            web.url(""),
            "BRAVE_KEY",
            "brave-key",
            json!({"title": "Brave tomatoes", "url": "https://example.org/b", "snippet": "Grow tomatoes"}),
        ),
        (
            "tavily",
            web.url("/tavily"),
            "TAVILY_KEY",
            "tavily-key",
            json!({"title": "Tavily tomatoes", "url": "https://example.org/t", "snippet": "Tomatoes like sun"}),
        ),
    ] {
        let llm = FakeLlm::start().await;
        spawn_worker_on("search it", &llm, "find how to grow tomatoes", "Looking.");
        script_worker(
            &llm,
            vec![("web_search", json!({"query": "grow tomatoes"}))],
        );
        let config = format!(
            "{}\n[web.search]\nbackend = \"{backend}\"\nurl = \"{url}\"\napi_key = \"env:{variable}\"\n",
            config_for(&llm),
        );
        let home = tempfile::tempdir().expect("tempdir");
        let environment =
            std::collections::HashMap::from([(variable.to_string(), key.to_string())]);
        let daemon = TestDaemon::start_with_environment(home.path(), &config, environment).await;
        daemon.send("search", "search it").await;
        let (results, _) = worker_results(&llm, 1).await;
        let found: Value = serde_json::from_str(&results[0])
            .unwrap_or_else(|_| panic!("{backend}: results are JSON: {}", results[0]));
        assert_eq!(found, json!([expected]), "{backend}");
        daemon.shutdown().await;
    }
}
