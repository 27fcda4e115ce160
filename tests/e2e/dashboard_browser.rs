//! The dashboard in headless Chromium against the real daemon and the scripted fake LLM:
//! each test clicks and types as a person would and reads what the page shows.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use serde_json::json;

use crate::browser::{Browser, Tab};
use crate::fake_llm::{FakeLlm, Scripted};
use crate::fake_telegram::FakeTelegram;
use crate::harness::{TestDaemon, access, config_for, reply, spawn_worker_on};

/// Every view, with a selector that exists once it has rendered.
const VIEWS: [(&str, &str); 9] = [
    ("chat", "#chat-input"),
    ("agents", "table"),
    ("conversations", "h1"),
    ("activity", "#event-feed"),
    ("memories", "#memory-results"),
    ("cron", "#cron-jobs"),
    ("usage", "#usage-body"),
    ("access", "#access-body"),
    ("health", "table"),
];

async fn open_dashboard(tab: &Tab<'_>, daemon: &TestDaemon) {
    tab.open(&daemon.url("/")).await;
    tab.wait_for("document.body.dataset.ready === 'true'", "the agents")
        .await;
}

async fn create_memory(daemon: &TestDaemon, content: &str, memory_type: &str) -> String {
    let created: serde_json::Value = daemon
        .http
        .post(daemon.url("/api/agents/main/memories"))
        .json(&json!({"content": content, "type": memory_type}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    created["memory"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {created}"))
        .to_string()
}

/// The page loads, lists the agent, and every view renders without one error in the
/// console (a refused script, a failed load or an exception would be one).
#[tokio::test]
async fn the_dashboard_loads_every_view_without_a_console_error_and_lists_the_agent() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let browser = Browser::launch().await;
    let tab = browser.tab(1280, 900).await;
    open_dashboard(&tab, &daemon).await;

    assert_eq!(
        tab.evaluate("document.getElementById('agent').value").await,
        "main"
    );
    tab.show_view("agents", ".agent-name").await;
    assert!(tab.text("#view table").await.contains("main"));
    assert!(tab.text(".agent-name").await.contains("(default)"));
    assert_eq!(
        tab.evaluate("document.querySelector(\"#nav a[aria-current='page']\").textContent")
            .await,
        "Agents"
    );
    for (view, ready) in VIEWS {
        tab.show_view(view, ready).await;
        let shown = tab.text("#view").await;
        assert!(
            !shown.contains("null") && !shown.contains("undefined"),
            "{view}: {shown}"
        );
    }
    // At phone width every view fits the screen (wide tables scroll inside their box), and
    // every control in it has a name a screen reader can say.
    let phone = browser.tab(390, 844).await;
    open_dashboard(&phone, &daemon).await;
    for (view, ready) in VIEWS {
        phone.show_view(view, ready).await;
        let overflow = phone
            .evaluate("document.documentElement.scrollWidth - window.innerWidth")
            .await;
        assert!(
            overflow.as_f64().unwrap_or(1.0) <= 0.0,
            "{view} is {overflow}px too wide"
        );
        let unnamed = phone
            .evaluate(
                "[...document.querySelectorAll('input, select, textarea, button')].filter(control => \
                 !(control.labels && control.labels.length) && !control.getAttribute('aria-label') && \
                 !control.textContent.trim()).map(control => control.outerHTML)",
            )
            .await;
        assert_eq!(unnamed, json!([]), "{view}: controls without a name");
    }
    assert!(
        tab.text("#view").await.contains("fake"),
        "the provider shows in health"
    );
    let errors = tab.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await;
    daemon.shutdown().await;
}

/// A message typed into the chat is answered in the page as the answer streams in.
#[tokio::test]
async fn the_dashboard_chat_shows_the_streamed_answer() {
    const ANSWER: &str = "Hello from the fake model, written a few words at a time for the page.";
    let llm = FakeLlm::start().await;
    llm.push_when(
        "hello dashboard",
        reply(ANSWER).paced(Duration::from_millis(40)),
    );
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let browser = Browser::launch().await;
    let tab = browser.tab(1280, 900).await;
    open_dashboard(&tab, &daemon).await;
    tab.wait_for(
        "document.getElementById('view').dataset.rendered === 'chat'",
        "the chat",
    )
    .await;
    // Every state the answer's bubble goes through.
    tab.evaluate(
        "window.seen = []; new MutationObserver(() => { for (const bubble of \
         document.querySelectorAll('.message.assistant')) window.seen.push(bubble.textContent); }) \
         .observe(document.getElementById('chat-log'), {subtree: true, childList: true, characterData: true}); true",
    )
    .await;

    tab.type_into("#chat-input", "hello dashboard").await;
    tab.press_enter().await;
    tab.wait_for(
        &format!(
            "[...document.querySelectorAll('.message.assistant')].some(bubble => bubble.textContent === {})",
            json!(ANSWER)
        ),
        "the answer",
    )
    .await;
    assert_eq!(tab.text(".message.user").await, "hello dashboard");
    assert_eq!(
        tab.evaluate("document.getElementById('chat-log').getAttribute('aria-live')")
            .await,
        "polite"
    );
    let seen = tab.evaluate("window.seen").await;
    let states = seen.as_array().expect("states");
    for text in states {
        assert!(ANSWER.starts_with(text.as_str().expect("text")), "{text}");
    }
    // The bubble showed part of the answer before all of it.
    assert!(
        states
            .iter()
            .filter_map(|text| text.as_str())
            .any(|text| !text.is_empty() && text.len() < ANSWER.len()),
        "{seen}"
    );
    // It went through the streamed endpoint into the conversation the page names.
    let transcript = daemon
        .wait_for_messages("web", |messages| messages.len() == 2)
        .await;
    assert_eq!(transcript[0]["content"], "hello dashboard");
    assert_eq!(transcript[1]["content"], ANSWER);
    // The call it cost shows in the usage view.
    tab.show_view("usage", "#usage-body table").await;
    let usage = tab.text("#usage-body").await;
    assert!(
        usage.contains("fake/fake-model") && usage.contains("1 call,"),
        "{usage}"
    );
    let errors = tab.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await;
    daemon.shutdown().await;
}

/// A running worker shows in the activity view with its status, and its shell output
/// streams into the event feed.
#[tokio::test]
async fn the_dashboard_shows_a_running_workers_status_and_output() {
    let llm = FakeLlm::start().await;
    let task = "survey the hosts";
    spawn_worker_on("start the survey", &llm, task, "Surveying.");
    llm.push_when(
        task,
        Scripted::tool_call("shell", json!({"command": "echo line-from-the-shell"})),
    );
    llm.push_when(
        task,
        Scripted::tool_call(
            "set_status",
            json!({"state": "working", "message": "surveyed 3 of 10 hosts"}),
        ),
    );
    llm.push_when(
        task,
        Scripted::tool_call(
            "set_status",
            json!({"state": "done", "message": "all done"}),
        )
        .delayed(Duration::from_secs(60)),
    );
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let browser = Browser::launch().await;
    let tab = browser.tab(1280, 900).await;
    open_dashboard(&tab, &daemon).await;
    tab.show_view("activity", "#processes").await;
    assert!(tab.text("#processes").await.contains("Nothing is running"));

    daemon.send("survey", "start the survey").await;
    tab.wait_for(
        "document.getElementById('processes').innerText.includes('surveyed 3 of 10 hosts')",
        "the worker's status",
    )
    .await;
    let running = tab.text("#processes").await;
    assert!(
        running.contains(task) && running.contains("worker"),
        "{running}"
    );
    tab.wait_for(
        "document.getElementById('event-feed').innerText.includes('line-from-the-shell')",
        "the shell's output",
    )
    .await;
    let feed = tab.text("#event-feed").await;
    assert!(feed.contains("worker_started"), "{feed}");
    browser.close().await;
    daemon.shutdown().await;
}

/// A stranger's pairing code waits in the access view; one click approves it, and the
/// stranger is told and becomes a member.
#[tokio::test]
async fn the_dashboard_approves_a_pairing_code() {
    let llm = FakeLlm::start().await;
    let telegram = FakeTelegram::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    telegram.push_message(7, 7, "hi, may I talk to you?");
    telegram.wait_for_sent(1).await;
    let pending = daemon.get("/api/access").await;
    let code = pending["pending"][0]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no pending code: {pending}"))
        .to_string();

    let browser = Browser::launch().await;
    let tab = browser.tab(1280, 900).await;
    open_dashboard(&tab, &daemon).await;
    tab.show_view("access", "#access-body h2").await;
    assert!(tab.text("#access-body").await.contains(&code));
    tab.click(&format!("button[data-code='{code}']")).await;
    tab.wait_for(
        "document.getElementById('access-body').innerText.includes('No pairing code is waiting')",
        "the approval",
    )
    .await;
    assert!(tab.text("#view .status").await.contains("is now a member"));
    assert!(tab.text("#access-body").await.contains("telegram:7"));

    let sent = telegram.wait_for_sent(2).await;
    assert!(
        sent[1]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("You are in"),
        "{sent:?}"
    );
    let approved = daemon.get("/api/access").await;
    assert_eq!(
        approved["approved"][0]["user_id"], "telegram:7",
        "{approved}"
    );
    assert_eq!(approved["approved"][0]["authority"], "member", "{approved}");

    // Revoking asks first (the person says yes here).
    tab.evaluate("window.confirm = () => true; true").await;
    tab.click("button[aria-label='Revoke telegram:7']").await;
    tab.wait_for(
        "document.getElementById('access-body').innerText.includes('Nobody was approved here')",
        "the revocation",
    )
    .await;
    let revoked = daemon.get("/api/access").await;
    assert_eq!(revoked["approved"], json!([]), "{revoked}");
    let errors = tab.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await;
    daemon.shutdown().await;
}

/// A search in the memory view finds the memory that matches and not the others; its
/// details show its associations, its importance can be changed and it can be forgotten
/// there, and a memory can be added.
#[tokio::test]
async fn the_dashboard_finds_a_memory_by_search_and_edits_its_importance() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let boat = create_memory(&daemon, "The boat is called Mistral", "fact").await;
    create_memory(
        &daemon,
        "Prefers tea over coffee in the morning",
        "preference",
    )
    .await;
    let mooring = daemon
        .http
        .post(daemon.url("/api/agents/main/memories"))
        .json(
            &json!({"content": "The mooring is in Brest harbour", "type": "fact",
            "associations": [{"target_id": boat, "relation": "part_of"}]}),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(mooring.status(), 201);

    let browser = Browser::launch().await;
    let tab = browser.tab(1280, 900).await;
    open_dashboard(&tab, &daemon).await;
    tab.show_view("memories", "#memory-results table").await;
    tab.type_into("#memory-query", "Mistral").await;
    tab.click("#memory-search").await;
    tab.wait_for(
        "document.querySelector('#view .status').innerText.includes('found')",
        "the search",
    )
    .await;
    let results = tab.text("#memory-results").await;
    assert!(results.contains("The boat is called Mistral"), "{results}");
    assert!(!results.contains("tea"), "{results}");

    tab.click("#memory-results button[aria-label^='Details of: The boat']")
        .await;
    tab.wait_for(
        "document.getElementById('memory-level')",
        "the memory's details",
    )
    .await;
    tab.wait_for(
        "document.querySelector('#memory-detail .associations')",
        "the associations",
    )
    .await;
    let associations = tab.text("#memory-detail .associations").await;
    assert!(
        associations.contains("part_of")
            && associations.contains("The mooring is in Brest harbour"),
        "{associations}"
    );
    tab.evaluate("document.getElementById('memory-level').value = ''; true")
        .await;
    tab.type_into("#memory-level", "0.9").await;
    tab.press_enter().await;
    tab.wait_for(
        "document.querySelector('#view .status').innerText.includes('Importance saved')",
        "the importance",
    )
    .await;
    let memory = daemon
        .get(&format!("/api/agents/main/memories/{boat}"))
        .await;
    assert_eq!(memory["memory"]["importance"], 0.9, "{memory}");

    // The details are shown again with the stored value before anything else is clicked.
    tab.wait_for(
        "document.getElementById('memory-level').value === '0.90'",
        "the details again",
    )
    .await;
    // Forgetting asks first (the person says yes here).
    tab.evaluate("window.confirm = () => true; true").await;
    tab.click("#memory-detail button.danger").await;
    tab.wait_for(
        "document.querySelector('#view .status').innerText.includes('Forgotten')",
        "the memory forgotten",
    )
    .await;
    let gone = daemon
        .http
        .get(daemon.url(&format!("/api/agents/main/memories/{boat}")))
        .send()
        .await
        .expect("get");
    assert_eq!(gone.status(), 404);

    tab.type_into("#memory-content", "The dog is called Biscuit")
        .await;
    tab.evaluate("document.getElementById('memory-type').value = 'fact'; true")
        .await;
    tab.click("#view form.stack button[type='submit']").await;
    tab.wait_for(
        "document.getElementById('memory-results').innerText.includes('The dog is called Biscuit')",
        "the new memory",
    )
    .await;
    let found = daemon
        .get("/api/agents/main/memories/search?q=Biscuit")
        .await;
    assert_eq!(
        found["memories"][0]["content"], "The dog is called Biscuit",
        "{found}"
    );
    let errors = tab.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await;
    daemon.shutdown().await;
}

/// A job created in the cron view is listed, can be disabled and enabled, runs when asked,
/// and its run shows in its history.
#[tokio::test]
async fn the_dashboard_creates_switches_and_runs_a_cron_job() {
    let llm = FakeLlm::start().await;
    llm.push_when("water the tomatoes", reply("Tomatoes watered."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let browser = Browser::launch().await;
    let tab = browser.tab(1280, 900).await;
    open_dashboard(&tab, &daemon).await;
    tab.show_view("cron", "#cron-jobs").await;
    assert!(tab.text("#cron-jobs").await.contains("No scheduled jobs"));

    tab.type_into("#cron-prompt", "water the tomatoes").await;
    tab.type_into("#cron-every", "6h").await;
    tab.click("#view form.stack button[type='submit']").await;
    tab.wait_for(
        "document.querySelector('#view .status').innerText.includes('Job created')",
        "the new job",
    )
    .await;
    let jobs = daemon.get("/api/agents/main/cron").await;
    let job = jobs["jobs"][0]["id"].as_str().expect("job id").to_string();
    assert_eq!(jobs["jobs"][0]["every_secs"], 21_600, "{jobs}");
    tab.wait_for(
        &format!(
            "document.getElementById('cron-jobs').innerText.includes({})",
            json!(job)
        ),
        "the job in the list",
    )
    .await;

    tab.click(&format!("button[aria-label='Disable {job}']"))
        .await;
    tab.wait_for(
        &format!("document.querySelector(\"button[aria-label='Enable {job}']\")"),
        "the job disabled",
    )
    .await;
    assert_eq!(
        daemon.get("/api/agents/main/cron").await["jobs"][0]["enabled"],
        false
    );
    tab.click(&format!("button[aria-label='Enable {job}']"))
        .await;
    tab.wait_for(
        &format!("document.querySelector(\"button[aria-label='Disable {job}']\")"),
        "the job enabled",
    )
    .await;
    assert_eq!(
        daemon.get("/api/agents/main/cron").await["jobs"][0]["enabled"],
        true
    );

    tab.click(&format!("button[aria-label='Run {job} now']"))
        .await;
    tab.wait_for(
        "document.querySelector('#view .status').innerText.includes('started')",
        "the run",
    )
    .await;
    // The list shows the run once it has refreshed (its columns may shift then).
    tab.wait_for(
        "!document.getElementById('cron-jobs').innerText.includes('never')",
        "the run in the list",
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        tab.click(&format!("button[aria-label='History of {job}']"))
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if tab
            .text("#cron-history")
            .await
            .contains("Tomatoes watered.")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            tab.text("#view").await
        );
    }
    let errors = tab.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await;
    daemon.shutdown().await;
}

/// The conversations view lists a conversation and opens its transcript, with the file a
/// message carried.
#[tokio::test]
async fn the_dashboard_shows_a_conversations_transcript() {
    let llm = FakeLlm::start().await;
    llm.push_when("where is the spare key", reply("Under the blue flowerpot."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let sent = daemon
        .http
        .post(daemon.url("/api/agents/main/messages"))
        .json(
            &json!({"conversation": "keys", "content": "where is the spare key?", "wait": true,
            "attachments": [{"name": "house-notes.txt",
                "data": base64::engine::general_purpose::STANDARD.encode("Key: blue flowerpot")}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(
        sent.status(),
        200,
        "{}",
        sent.text().await.unwrap_or_default()
    );
    let browser = Browser::launch().await;
    let tab = browser.tab(1280, 900).await;
    open_dashboard(&tab, &daemon).await;
    tab.show_view("conversations", "#view table").await;
    tab.click("#view table button.link").await;
    tab.wait_for(
        "document.getElementById('transcript').innerText.includes('Under the blue flowerpot.')",
        "the transcript",
    )
    .await;
    let transcript = tab.text("#transcript").await;
    assert!(transcript.contains("portal:keys"), "{transcript}");
    assert!(
        transcript.contains("where is the spare key?"),
        "{transcript}"
    );
    let files = tab.text("#transcript .attachments").await;
    assert!(
        files.contains("house-notes.txt") && files.contains("document"),
        "{transcript}"
    );
    assert_eq!(tab.evaluate("document.activeElement.tagName").await, "H2");
    let errors = tab.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await;
    daemon.shutdown().await;
}

/// Opens the dashboard with the API token already given for the tab (as the token prompt
/// leaves it), so no refused first call is in the console.
async fn open_dashboard_with_token(tab: &Tab<'_>, daemon: &TestDaemon, token: &str) {
    tab.before_each_page(&format!(
        "sessionStorage.setItem('spacebot-token', {})",
        json!(token)
    ))
    .await;
    open_dashboard(tab, daemon).await;
}

/// The bytes the API serves at `path` to the token holder.
async fn served_bytes(daemon: &TestDaemon, token: &str, path: &str) -> Vec<u8> {
    let response = daemon
        .http
        .get(daemon.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("download");
    assert_eq!(response.status(), 200, "{path}");
    response.bytes().await.expect("bytes").to_vec()
}

/// Files picked in the chat go with the message (a file alone is a message): the model sees
/// the picture as an image and the document's text; a file over the daemon's limit is
/// refused before anything is sent, a picked file can be taken off again; the sent files
/// show as a preview and a link in the chat and in the conversation's transcript, and those
/// links serve the bytes; a file the agent sends shows as a link in its answer; too much at
/// once shows the daemon's 413; pasting or dropping a file chooses it.
#[tokio::test]
async fn the_dashboard_chat_sends_picked_files_and_shows_them_in_the_transcript() {
    const TOKEN: &str = "chat-files-token";
    let llm = FakeLlm::start().await;
    llm.push_when(
        "square.png",
        reply("A green square, and the key is under the pot."),
    );
    llm.push_when(
        "send me the report",
        Scripted::tool_call("send_file", json!({"path": "report.txt"})),
    );
    llm.push_when(
        "send me the report",
        reply("Here it is: /api/agents/main/files/report.txt."),
    );
    let home = tempfile::tempdir().expect("tempdir");
    let config =
        config_for(&llm) + &format!("\n[api]\ntoken = \"{TOKEN}\"\n[media]\nmax_file_mb = 1\n");
    let daemon = TestDaemon::start(home.path(), &config).await;
    let report = "Quarterly report: all green.";
    std::fs::write(home.path().join("agents/main/workspace/report.txt"), report).expect("report");
    let picked = tempfile::tempdir().expect("files");
    let photo = crate::media::png(20, 10);
    let notes = "The spare key is under the blue flowerpot.";
    let photo_path = picked.path().join("square.png");
    let notes_path = picked.path().join("notes.txt");
    let extra_path = picked.path().join("extra.txt");
    let big_path = picked.path().join("big.bin");
    std::fs::write(&photo_path, &photo).expect("photo");
    std::fs::write(&notes_path, notes).expect("notes");
    std::fs::write(&extra_path, "not this one").expect("extra");
    std::fs::write(&big_path, vec![7u8; 1_500_000]).expect("big");

    let browser = Browser::launch().await;
    let tab = browser.tab(1280, 900).await;
    open_dashboard_with_token(&tab, &daemon, TOKEN).await;
    tab.wait_for(
        "document.getElementById('view').dataset.rendered === 'chat'",
        "the chat",
    )
    .await;

    tab.set_files("#chat-file", &[&big_path]).await;
    tab.wait_for(
        "document.getElementById('chat-file-status').innerText.includes('larger than the 1.0 MB')",
        "the refusal of the large file",
    )
    .await;
    assert_eq!(tab.text("#chat-files").await, "");
    tab.set_files("#chat-file", &[&photo_path, &notes_path, &extra_path])
        .await;
    tab.wait_for(
        "document.getElementById('chat-files').innerText.includes('extra.txt')",
        "the chosen files",
    )
    .await;
    tab.click("button[aria-label='Remove extra.txt']").await;
    let chosen = tab.text("#chat-files").await;
    assert!(
        chosen.contains("square.png")
            && chosen.contains("notes.txt")
            && !chosen.contains("extra.txt"),
        "{chosen}"
    );

    // No text: the files alone are the message.
    tab.click("#chat-send").await;
    tab.wait_for(
        "[...document.querySelectorAll('.message.assistant')].some(bubble => bubble.textContent.includes('green square'))",
        "the answer",
    )
    .await;
    assert_eq!(tab.text("#chat-files").await, "");
    let request = crate::harness::requests_with(&llm, "square.png")
        .into_iter()
        .next()
        .expect("the model was asked");
    let images = crate::media::image_parts(&request);
    assert_eq!(images.len(), 1, "{request}");
    let (media_type, bytes) = crate::media::data_url_bytes(&images[0]);
    assert_eq!((media_type.as_str(), bytes), ("image/png", photo.clone()));
    let text = FakeLlm::last_user_text(&request);
    assert!(
        text.contains(notes) && !text.contains("extra.txt"),
        "{text}"
    );

    // The sent message's bubble previews the picture and links both files, from the API.
    tab.wait_for(
        "(() => { const image = document.querySelector('.message.user img.preview'); \
         return image && image.src.startsWith('blob:') && image.complete && image.naturalWidth === 20; })()",
        "the preview of the picture in the chat",
    )
    .await;
    let links = tab
        .evaluate(
            "[...document.querySelectorAll('.message.user a.download')].map(link => \
             [link.getAttribute('download'), link.getAttribute('href')])",
        )
        .await;
    let link_of = |name: &str| {
        links
            .as_array()
            .into_iter()
            .flatten()
            .find(|link| link[0] == name)
            .and_then(|link| link[1].as_str())
            .unwrap_or_else(|| panic!("no link to {name}: {links}"))
            .to_string()
    };
    assert_eq!(
        served_bytes(&daemon, TOKEN, &link_of("square.png")).await,
        photo
    );
    assert_eq!(
        served_bytes(&daemon, TOKEN, &link_of("notes.txt")).await,
        notes.as_bytes()
    );

    // A file the agent sent is a link in its answer.
    tab.type_into("#chat-input", "send me the report").await;
    tab.press_enter().await;
    tab.wait_for(
        "[...document.querySelectorAll('.message.assistant a.download')].some(link => link.textContent === 'report.txt')",
        "the link to the sent file",
    )
    .await;
    let sent_link = tab
        .evaluate(
            "[...document.querySelectorAll('.message.assistant a.download')].find(link => \
             link.textContent === 'report.txt').getAttribute('href')",
        )
        .await;
    assert_eq!(sent_link, "/api/agents/main/files/report.txt");
    assert_eq!(
        served_bytes(&daemon, TOKEN, "/api/agents/main/files/report.txt").await,
        report.as_bytes()
    );

    // The conversation's transcript shows the same preview and links.
    tab.show_view("conversations", "#view table").await;
    tab.click("#view table button.link").await;
    tab.wait_for(
        "(() => { const image = document.querySelector('#transcript img.preview'); \
         return image && image.complete && image.naturalWidth === 20; })()",
        "the preview in the transcript",
    )
    .await;
    let source = tab
        .evaluate("document.querySelector('#transcript img.preview').dataset.source")
        .await;
    assert_eq!(
        served_bytes(&daemon, TOKEN, source.as_str().expect("source")).await,
        photo
    );
    let transcript = tab.text("#transcript").await;
    assert!(
        transcript.contains("notes.txt") && transcript.contains("report.txt"),
        "{transcript}"
    );
    let errors = tab.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // More than the daemon takes at once: its refusal (413) is shown, and the files stay.
    tab.show_view("chat", "#chat-input").await;
    let parts: Vec<PathBuf> = (0..3)
        .map(|index| {
            let path = picked.path().join(format!("part-{index}.bin"));
            std::fs::write(&path, vec![index as u8; 900_000]).expect("part");
            path
        })
        .collect();
    let parts: Vec<&std::path::Path> = parts.iter().map(PathBuf::as_path).collect();
    tab.set_files("#chat-file", &parts).await;
    tab.wait_for(
        "document.getElementById('chat-files').innerText.includes('part-2.bin')",
        "the chosen parts",
    )
    .await;
    tab.click("#chat-send").await;
    tab.wait_for(
        "document.getElementById('chat-file-status').innerText.includes('Too large for this daemon')",
        "the refusal",
    )
    .await;
    assert!(tab.text("#chat-files").await.contains("part-0.bin"));

    // A file pasted into the message box or dropped on the chat is chosen too.
    tab.evaluate(
        "(() => { const file = name => { const data = new DataTransfer(); \
         data.items.add(new File(['some text'], name, {type: 'text/plain'})); return data; }; \
         document.getElementById('chat-input').dispatchEvent(new ClipboardEvent('paste', \
           {clipboardData: file('pasted.txt'), bubbles: true, cancelable: true})); \
         document.getElementById('chat-log').dispatchEvent(new DragEvent('drop', \
           {dataTransfer: file('dropped.txt'), bubbles: true, cancelable: true})); \
         return true; })()",
    )
    .await;
    let chosen = tab.text("#chat-files").await;
    assert!(
        chosen.contains("pasted.txt") && chosen.contains("dropped.txt"),
        "{chosen}"
    );
    browser.close().await;
    daemon.shutdown().await;
}

/// A model that keeps failing shows in the health view as passed over, with its error, and
/// the agent as degraded.
#[tokio::test]
async fn the_dashboard_health_view_shows_a_failing_model() {
    let llm = FakeLlm::start().await;
    llm.set_fallback(|_| Scripted::status(401, "invalid api key"));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    for conversation in ["one", "two", "three"] {
        daemon.post(conversation, "are you there?").await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while daemon.get("/api/agents/main/cortex").await["model_breakers"]
        .as_array()
        .is_none_or(|breakers| breakers.is_empty())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the breaker never opened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let browser = Browser::launch().await;
    let tab = browser.tab(1280, 900).await;
    open_dashboard(&tab, &daemon).await;
    tab.show_view("health", "table").await;
    let shown = tab.text("#view").await;
    assert!(shown.contains("Models whose breaker is open"), "{shown}");
    assert!(
        shown.contains("fake/fake-model") && shown.contains("invalid api key"),
        "{shown}"
    );
    assert!(
        shown.contains("failed 3 times in a row"),
        "the agent is degraded: {shown}"
    );
    browser.close().await;
    daemon.shutdown().await;
}

/// The keyboard alone reaches every view: Tab moves through the menu, Enter opens a view,
/// and the focus moves to the view's heading.
#[tokio::test]
async fn the_dashboard_works_from_the_keyboard() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let browser = Browser::launch().await;
    let tab = browser.tab(1280, 900).await;
    open_dashboard(&tab, &daemon).await;
    let mut presses = 0;
    while tab
        .evaluate("document.activeElement.getAttribute('href')")
        .await
        != "#memories"
    {
        presses += 1;
        assert!(presses < 30, "Tab never reached the Memories link");
        tab.press_tab().await;
    }
    tab.press_enter().await;
    tab.wait_for(
        "document.getElementById('view').dataset.rendered === 'memories'",
        "the memories view",
    )
    .await;
    assert_eq!(
        tab.evaluate("document.activeElement.tagName + ' ' + document.activeElement.textContent")
            .await,
        "H1 Memories"
    );
    // The next Tab goes into the view, to its first control.
    tab.press_tab().await;
    assert_eq!(
        tab.evaluate("document.activeElement.id").await,
        "memory-query"
    );
    browser.close().await;
    daemon.shutdown().await;
}

/// With two agents the picker lists both, and the views show the chosen agent's data.
#[tokio::test]
async fn the_dashboard_shows_the_chosen_agent() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + "\n[[agents]]\nid = \"ops\"\ndisplay_name = \"Ops\"\n";
    let daemon = TestDaemon::start(home.path(), &config).await;
    create_memory(&daemon, "The boat is called Mistral", "fact").await;
    let created = daemon
        .http
        .post(daemon.url("/api/agents/ops/memories"))
        .json(&json!({"content": "The backup runs at 3 am", "type": "fact"}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let browser = Browser::launch().await;
    let tab = browser.tab(1280, 900).await;
    open_dashboard(&tab, &daemon).await;
    assert_eq!(
        tab.evaluate(
            "[...document.querySelectorAll('#agent option')].map(option => option.textContent)"
        )
        .await,
        json!(["main", "Ops"])
    );
    tab.show_view("memories", "#memory-results table").await;
    assert!(tab.text("#memory-results").await.contains("Mistral"));
    tab.evaluate(
        "const picker = document.getElementById('agent'); picker.value = 'ops'; \
         picker.dispatchEvent(new Event('change')); true",
    )
    .await;
    tab.wait_for(
        "document.getElementById('memory-results').innerText.includes('The backup runs at 3 am')",
        "the other agent's memories",
    )
    .await;
    assert!(!tab.text("#memory-results").await.contains("Mistral"));
    let errors = tab.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await;
    daemon.shutdown().await;
}

/// With a token configured the page asks for it, keeps it for the tab, and then works.
#[tokio::test]
async fn the_dashboard_asks_for_the_api_token() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + "\n[api]\ntoken = \"page-token-7\"\n";
    let daemon = TestDaemon::start(home.path(), &config).await;
    let browser = Browser::launch().await;
    let tab = browser.tab(1280, 900).await;
    tab.open(&daemon.url("/")).await;
    tab.wait_for(
        "document.getElementById('token-dialog').open",
        "the token prompt",
    )
    .await;
    assert_eq!(
        tab.evaluate("document.activeElement.id").await,
        "token-input"
    );
    tab.type_into("#token-input", "page-token-7").await;
    tab.press_enter().await;
    tab.wait_for("document.body.dataset.ready === 'true'", "the agents")
        .await;
    assert_eq!(
        tab.evaluate("sessionStorage.getItem('spacebot-token')")
            .await,
        "page-token-7"
    );
    tab.show_view("agents", ".agent-name").await;
    // The refused first call is what the console reports (this also shows the console is
    // watched at all).
    let errors = tab.console_errors();
    assert!(
        errors.iter().any(|error| error.contains("401")),
        "{errors:#?}"
    );
    browser.close().await;
    daemon.shutdown().await;
}

/// Not a check: writes a PNG of each view, wide and phone-wide, to
/// `$SPACEBOT_SCREENSHOTS` (default `target/dashboard-screenshots`).
/// `cargo test --test e2e dashboard_screenshots -- --ignored`
#[tokio::test]
#[ignore]
async fn dashboard_screenshots() {
    let folder = std::env::var_os("SPACEBOT_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots")
        });
    std::fs::create_dir_all(&folder).expect("screenshot folder");
    let llm = FakeLlm::start().await;
    llm.push_when(
        "what is my boat called",
        reply("Your boat is called Mistral."),
    );
    let task = "survey the hosts";
    spawn_worker_on("start the survey", &llm, task, "Surveying.");
    llm.push_when(
        task,
        Scripted::tool_call(
            "set_status",
            json!({"state": "working", "message": "surveyed 3 of 10 hosts"}),
        ),
    );
    llm.push_when(
        task,
        Scripted::tool_call(
            "set_status",
            json!({"state": "done", "message": "all done"}),
        )
        .delayed(Duration::from_secs(120)),
    );
    let telegram = FakeTelegram::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + &telegram.config(&[]) + &access(&["telegram:42"], &[]);
    let daemon = TestDaemon::start(home.path(), &config).await;
    create_memory(&daemon, "The boat is called Mistral", "fact").await;
    create_memory(
        &daemon,
        "Prefers tea over coffee in the morning",
        "preference",
    )
    .await;
    daemon
        .http
        .post(daemon.url("/api/agents/main/cron"))
        .json(&json!({"id": "morning-brief", "prompt": "Summarise the night's messages", "cron": "0 7 * * *"}))
        .send()
        .await
        .expect("cron");
    telegram.push_message(7, 7, "hi, may I talk to you?");
    telegram.wait_for_sent(1).await;
    daemon.send("web", "what is my boat called?").await;
    daemon.send("survey", "start the survey").await;

    let browser = Browser::launch().await;
    for (width, height, suffix) in [(1280, 900, "wide"), (390, 844, "phone")] {
        let tab = browser.tab(width, height).await;
        open_dashboard(&tab, &daemon).await;
        for (view, ready) in VIEWS {
            tab.show_view(view, ready).await;
            if view == "memories" {
                tab.type_into("#memory-query", "boat").await;
                tab.click("#memory-search").await;
                tab.wait_for(
                    "document.querySelector('#view .status').innerText.includes('found')",
                    "the search",
                )
                .await;
            }
            if view == "activity" {
                tab.wait_for(
                    "document.getElementById('processes').innerText.includes('surveyed')",
                    "the worker",
                )
                .await;
            }
            let path = folder.join(format!("{view}-{suffix}.png"));
            tab.screenshot(&path).await;
            println!("wrote {}", path.display());
        }
    }
    browser.close().await;
    daemon.shutdown().await;
}
