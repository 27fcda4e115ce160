//! Skills: a skill folder added while the daemon runs is listed in the next turn's prompt and
//! `read_skill` returns its body, its file list and its files; the `skills` CLI installs,
//! lists and removes them.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{TestDaemon, config_for, reply, requests_with, worker_results};

const WORKER: &str = "You are a worker";

fn write_skill(directory: &Path) {
    std::fs::create_dir_all(directory.join("scripts")).expect("mkdir");
    std::fs::write(
        directory.join("SKILL.md"),
        "---\nname: deploy-site\ndescription: Ship the website to production safely\n---\n\n\
         # Deploying\n1. Run scripts/check.sh.\n2. Tag the release.\n",
    )
    .expect("write skill");
    std::fs::write(directory.join("scripts/check.sh"), "echo checking\n").expect("write");
}

#[tokio::test]
async fn a_skill_added_while_the_daemon_runs_is_offered_on_the_next_turn_and_read() {
    let llm = FakeLlm::start().await;
    llm.push_when(
        "deploy the site",
        Scripted::ToolCalls(vec![
            (
                "spawn_worker".into(),
                json!({"task": "deploy the site following the deploy-site skill"}),
            ),
            ("branch".into(), json!({"prompt": "check which skill fits"})),
            ("reply".into(), json!({"content": "On it."})),
        ]),
    );
    llm.set_fallback(|request| {
        if FakeLlm::last_user_text(request).contains("[Branch task]") {
            return Scripted::text("deploy-site fits.");
        }
        if !FakeLlm::system_text(request).contains(WORKER) {
            return reply("Noted.");
        }
        match FakeLlm::tool_results(request).len() {
            0 => Scripted::tool_call("read_skill", json!({"name": "deploy-site"})),
            1 => Scripted::tool_call(
                "read_skill",
                json!({"name": "deploy-site", "file": "scripts/check.sh"}),
            ),
            2 => Scripted::tool_call(
                "read_skill",
                json!({"name": "deploy-site", "file": "../../../config.toml"}),
            ),
            _ => Scripted::tool_call(
                "set_status",
                json!({"state": "done", "message": "deployed"}),
            ),
        }
    });
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    daemon.send("ops", "hello").await;
    let before = FakeLlm::system_text(&requests_with(&llm, "hello")[0]);
    assert!(!before.contains("deploy-site"), "{before}");

    write_skill(&home.path().join("skills/deploy-site"));
    daemon.send("ops", "deploy the site").await;
    let channel = FakeLlm::system_text(&requests_with(&llm, "deploy the site")[0]);
    assert!(
        channel.contains("- `deploy-site`: Ship the website to production safely"),
        "{channel}"
    );

    let (results, request) = worker_results(&llm, 3).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while requests_with(&llm, "[Branch task]").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the branch never ran"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let branch = FakeLlm::system_text(&requests_with(&llm, "[Branch task]")[0]);
    assert!(
        branch.contains("`deploy-site`: Ship the website") && branch.contains("`read_skill`"),
        "{branch}"
    );
    assert!(
        FakeLlm::system_text(&request).contains("`deploy-site`: Ship the website"),
        "the worker's prompt lists the skill"
    );
    assert!(FakeLlm::tool_names(&request).contains(&"read_skill".to_string()));
    assert!(
        results[0].contains("# Deploying\n1. Run scripts/check.sh.\n2. Tag the release.")
            && results[0].contains("- scripts/check.sh"),
        "{}",
        results[0]
    );
    assert!(results[1].ends_with("echo checking\n"), "{}", results[1]);
    assert!(
        results[2].starts_with("error:") && results[2].contains("not a file of the skill"),
        "{}",
        results[2]
    );
    daemon.shutdown().await;
}

fn spacebot(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spacebot"));
    command.env("SPACEBOT_HOME", home).env("NO_COLOR", "1");
    command
}

fn run(command: &mut Command) -> (bool, String) {
    let output = command.output().expect("run spacebot");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn the_skills_cli_adds_lists_and_removes() {
    let home = tempfile::tempdir().expect("tempdir");
    let source = home.path().join("drafts/any-folder-name");
    write_skill(&source);
    let (ok, text) = run(spacebot(home.path()).args(["skills", "add"]).arg(&source));
    assert!(ok, "{text}");
    assert!(
        home.path()
            .join("skills/deploy-site/scripts/check.sh")
            .is_file()
    );
    let (ok, text) = run(spacebot(home.path()).args(["skills", "list"]));
    assert!(ok, "{text}");
    assert!(
        text.contains("deploy-site: Ship the website to production safely"),
        "{text}"
    );
    let (ok, text) = run(spacebot(home.path()).args(["skills", "add"]).arg(&source));
    assert!(!ok && text.contains("already installed"), "{text}");

    let broken = home.path().join("drafts/broken");
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::write(broken.join("SKILL.md"), "no front matter").expect("write");
    let (ok, text) = run(spacebot(home.path()).args(["skills", "add"]).arg(&broken));
    assert!(!ok && text.contains("front matter"), "{text}");

    let (ok, text) = run(spacebot(home.path()).args(["skills", "remove", "deploy-site"]));
    assert!(ok, "{text}");
    assert!(!home.path().join("skills/deploy-site").exists());
    let (ok, text) = run(spacebot(home.path()).args(["skills", "remove", "deploy-site"]));
    assert!(!ok && text.contains("no skill named"), "{text}");
    let (ok, text) = run(spacebot(home.path()).args(["skills", "--agent", "ghost", "list"]));
    assert!(!ok && text.contains("no agent `ghost`"), "{text}");
}
