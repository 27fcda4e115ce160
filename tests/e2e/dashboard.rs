//! The dashboard at `/`: its page and files come from the binary with a strict
//! Content-Security-Policy, hold no data, and every call they make meets the API's guard.

use serde_json::json;

use crate::fake_llm::FakeLlm;
use crate::harness::{TestDaemon, config_for};

const TOKEN: &str = "dashboard-token-42";

/// The page and every module it imports are served from the binary with a CSP that allows
/// no inline script; the data routes they call still need the token; a foreign Host gets
/// nothing, the page included.
#[tokio::test]
async fn the_dashboard_is_served_from_the_binary_and_guarded() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &format!("\n[api]\ntoken = \"{TOKEN}\"\n");
    let daemon = TestDaemon::start(home.path(), &config).await;

    let page = daemon.http.get(daemon.url("/")).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let policy = page
        .headers()
        .get("content-security-policy")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(policy.starts_with("default-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));
    let html = page.text().await.expect("html");
    assert!(
        html.contains(r#"<script type="module" src="/dashboard/app.js"></script>"#),
        "{html}"
    );
    assert_eq!(
        html.matches("<script").count(),
        1,
        "no inline script: {html}"
    );

    // Every module the app imports, transitively, is served as JavaScript.
    let mut queue = vec!["app.js".to_string()];
    let mut seen = Vec::new();
    while let Some(file) = queue.pop() {
        if seen.contains(&file) {
            continue;
        }
        let response = daemon
            .http
            .get(daemon.url(&format!("/dashboard/{file}")))
            .send()
            .await
            .expect("module");
        assert_eq!(response.status(), 200, "{file}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("type")
                .starts_with("text/javascript"),
            "{file}"
        );
        let source = response.text().await.expect("source");
        let folder = file.rsplit_once('/').map_or("", |(folder, _)| folder);
        for line in source.lines().filter(|line| line.starts_with("import ")) {
            let target = line
                .split(['"', '\''])
                .nth(1)
                .expect("import path")
                .to_string();
            let resolved = match (folder, target.strip_prefix("../")) {
                (_, Some(up)) => up.to_string(),
                ("", None) => target.trim_start_matches("./").to_string(),
                (folder, None) => format!("{folder}/{}", target.trim_start_matches("./")),
            };
            queue.push(resolved);
        }
        seen.push(file);
    }
    assert!(seen.len() >= 10, "{seen:?}");
    for file in ["style.css", "icon.svg"] {
        let response = daemon
            .http
            .get(daemon.url(&format!("/dashboard/{file}")))
            .send()
            .await
            .expect("file");
        assert_eq!(response.status(), 200, "{file}");
    }
    let missing = daemon
        .http
        .get(daemon.url("/dashboard/nothing.js"))
        .send()
        .await
        .expect("missing");
    assert_eq!(missing.status(), 404);

    // What the page calls is guarded: without the token, nothing.
    let agents = daemon
        .http
        .get(daemon.url("/api/agents"))
        .send()
        .await
        .expect("agents");
    assert_eq!(agents.status(), 401);
    let agents = daemon
        .http
        .get(daemon.url("/api/agents"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("agents");
    assert_eq!(agents.status(), 200);

    // A rebound domain name gets neither the page nor its files.
    for path in ["/", "/dashboard/app.js"] {
        let foreign = daemon
            .http
            .get(daemon.url(path))
            .header("host", "evil.example.com")
            .send()
            .await
            .expect("foreign");
        assert_eq!(foreign.status(), 421, "{path}");
    }
    daemon.shutdown().await;
}

/// The memory view's importance control: the owner sets how much a memory matters, within
/// 0 to 1, and the memory says so afterwards.
#[tokio::test]
async fn a_memorys_importance_can_be_set_over_the_api() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let created: serde_json::Value = daemon
        .http
        .post(daemon.url("/api/agents/main/memories"))
        .json(&json!({"content": "The boat is called Mistral", "type": "fact"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["memory"]["id"]
        .as_str()
        .or_else(|| created["id"].as_str())
        .unwrap_or_else(|| panic!("no id in {created}"))
        .to_string();
    let path = format!("/api/agents/main/memories/{id}/importance");

    let set = daemon
        .http
        .post(daemon.url(&path))
        .json(&json!({"importance": 0.95}))
        .send()
        .await
        .expect("set");
    assert_eq!(set.status(), 200);
    let memory = daemon.get(&format!("/api/agents/main/memories/{id}")).await;
    assert_eq!(memory["memory"]["importance"], 0.95, "{memory}");

    let refused = daemon
        .http
        .post(daemon.url(&path))
        .json(&json!({"importance": 3.0}))
        .send()
        .await
        .expect("set");
    assert_eq!(refused.status(), 400);
    let text = refused.text().await.expect("text");
    assert!(text.contains("between 0 and 1"), "{text}");
    let unknown = daemon
        .http
        .post(daemon.url("/api/agents/main/memories/no-such-memory/importance"))
        .json(&json!({"importance": 0.5}))
        .send()
        .await
        .expect("set");
    assert_eq!(unknown.status(), 404);
    let memory = daemon.get(&format!("/api/agents/main/memories/{id}")).await;
    assert_eq!(memory["memory"]["importance"], 0.95, "{memory}");
    daemon.shutdown().await;
}
