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

/// The file a message carried, as the dashboard's transcript and chat link to it: served with
/// its type, as a download nothing runs, to the token holder on this API's own pages only;
/// a name that climbs out, another conversation's message, a link put in its place and
/// another site's page get nothing.
#[tokio::test]
async fn a_stored_attachment_is_served_only_from_its_message_folder() {
    let llm = FakeLlm::start().await;
    llm.push_when("square.png", crate::harness::reply("A green square."));
    llm.push_when("other.txt", crate::harness::reply("Noted."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &format!("\n[api]\ntoken = \"{TOKEN}\"\n");
    let daemon = TestDaemon::start(home.path(), &config).await;
    let photo = crate::media::png(20, 10);
    let notes = "Key: blue flowerpot";
    let send = |conversation: &str, files: serde_json::Value| {
        daemon
            .http
            .post(daemon.url("/api/agents/main/messages"))
            .bearer_auth(TOKEN)
            .json(
                &json!({"conversation": conversation, "attachments": files, "wait": true,
                "timeout_secs": 30}),
            )
            .send()
    };
    let sent = send(
        "files",
        json!([{"name": "square.png", "data": crate::media::base64(&photo)},
               {"name": "my notes.txt", "data": crate::media::base64(notes.as_bytes())}]),
    )
    .await
    .expect("send");
    assert_eq!(
        sent.status(),
        200,
        "{}",
        sent.text().await.unwrap_or_default()
    );
    let other = send(
        "other",
        json!([{"name": "other.txt", "data": crate::media::base64(b"other conversation")}]),
    )
    .await
    .expect("send");
    assert_eq!(other.status(), 200);

    let get = |path: String| daemon.http.get(daemon.url(&path)).bearer_auth(TOKEN);
    let listed: serde_json::Value =
        get("/api/agents/main/conversations/portal:files/attachments".to_string())
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
    let files = listed["attachments"]
        .as_array()
        .expect("attachments")
        .clone();
    assert_eq!(files.len(), 2, "{listed}");
    let url_of = |name: &str| {
        files
            .iter()
            .find(|file| file["name"] == name)
            .and_then(|file| file["url"].as_str())
            .unwrap_or_else(|| panic!("no url for {name}: {listed}"))
            .to_string()
    };
    let (photo_url, notes_url) = (url_of("square.png"), url_of("my notes.txt"));
    let message_id = files[0]["message_id"]
        .as_str()
        .expect("message id")
        .to_string();
    assert!(
        photo_url.starts_with("/api/agents/main/conversations/portal%3Afiles/attachments/"),
        "{photo_url}"
    );

    let served = get(photo_url.clone()).send().await.expect("photo");
    assert_eq!(served.status(), 200);
    let header = |name: &str| served.headers()[name].to_str().expect("header").to_string();
    assert_eq!(header("content-type"), "image/png");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(
        header("content-disposition").starts_with("attachment; filename=\"square.png\""),
        "{}",
        header("content-disposition")
    );
    assert!(header("content-security-policy").contains("sandbox"));
    assert_eq!(
        served.bytes().await.expect("bytes").as_ref(),
        photo.as_slice()
    );
    let served = get(notes_url.clone()).send().await.expect("notes");
    assert_eq!(served.status(), 200);
    let disposition = served.headers()["content-disposition"]
        .to_str()
        .expect("header")
        .to_string();
    assert!(
        disposition.contains("filename=\"my_notes.txt\"")
            && disposition.contains("filename*=UTF-8''my%20notes.txt"),
        "{disposition}"
    );
    assert_eq!(served.text().await.expect("text"), notes);

    // No token, or another site's page: nothing.
    let anonymous = daemon
        .http
        .get(daemon.url(&photo_url))
        .send()
        .await
        .expect("anonymous");
    assert_eq!(anonymous.status(), 401);
    let foreign = get(photo_url.clone())
        .header("origin", "http://evil.example.com")
        .send()
        .await
        .expect("foreign");
    assert_eq!(foreign.status(), 403);
    let embedded = get(photo_url.clone())
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("embedded");
    assert_eq!(embedded.status(), 403);
    let own_page = get(photo_url.clone())
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("own page");
    assert_eq!(own_page.status(), 200);

    // A name that climbs out of the folder, or a message of another conversation: a 404,
    // whatever the file outside holds.
    std::fs::write(home.path().join("secret.txt"), "the secret").expect("secret");
    let files_folder = "/api/agents/main/conversations/portal%3Afiles/attachments";
    let other_listed = daemon
        .http
        .get(daemon.url("/api/agents/main/conversations/portal:other/attachments"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("list")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    let other_message = other_listed["attachments"][0]["message_id"]
        .as_str()
        .expect("other message")
        .to_string();
    for path in [
        format!("{files_folder}/{message_id}/..%2F..%2F..%2F..%2F..%2F..%2Fsecret.txt"),
        format!("{files_folder}/{message_id}/..%2F{message_id}%2Fsquare.png"),
        format!("{files_folder}/..%2F..%2F..%2F..%2F/secret.txt"),
        format!("{files_folder}/{message_id}/.."),
        format!("{files_folder}/{message_id}/config.toml"),
        format!("{files_folder}/{other_message}/other.txt"),
        format!(
            "/api/agents/main/conversations/portal%3Aother/attachments/{message_id}/square.png"
        ),
    ] {
        let refused = get(path.clone()).send().await.expect("refused");
        let status = refused.status();
        let body = refused.text().await.unwrap_or_default();
        assert!(status == 404 || status == 400, "{path}: {status} {body}");
        assert!(!body.contains("the secret"), "{path}: {body}");
    }

    // A link put where the file was is not followed.
    let kept = home
        .path()
        .join("agents/main/workspace/attachments/portal_files")
        .join(&message_id)
        .join("my_notes.txt");
    std::fs::remove_file(&kept).expect("remove");
    std::os::unix::fs::symlink(home.path().join("secret.txt"), &kept).expect("symlink");
    let linked = get(notes_url).send().await.expect("linked");
    assert_eq!(linked.status(), 404);
    assert!(
        !linked
            .text()
            .await
            .unwrap_or_default()
            .contains("the secret")
    );

    // The files the agent sends to the web chat are refused to other sites' pages too.
    let sent_file = get(format!(
        "/api/agents/main/files/attachments/portal_files/{message_id}/square.png"
    ))
    .send()
    .await
    .expect("sent file");
    assert_eq!(sent_file.status(), 200);
    assert_eq!(
        sent_file.headers()["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    let embedded = get(format!(
        "/api/agents/main/files/attachments/portal_files/{message_id}/square.png"
    ))
    .header("sec-fetch-site", "cross-site")
    .send()
    .await
    .expect("embedded");
    assert_eq!(embedded.status(), 403);
    daemon.shutdown().await;
}
