//! What packaging promises: the systemd unit passes `systemd-analyze verify`, the Dockerfile
//! builds with the README's steps and keeps its promises (non-root, /data as the home, a
//! health check), completions are generated, and `--log-format json` writes one JSON object
//! a line.

use std::io::Read;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::daemon_process::DaemonProcess;

fn repository_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("skipped: systemd-analyze is not installed here (systemd's package has it)");
        return;
    };
    assert!(version.status.success());
    // Verified as installed: the binary it starts must exist, so point it at this build.
    let unit = repository_file("contrib/spacebot.service")
        .replace("/usr/local/bin/spacebot", env!("CARGO_BIN_EXE_spacebot"));
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("spacebot.service");
    std::fs::write(&path, unit).expect("write unit");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("spacebot.service"), "warnings: {stderr}");
}

#[test]
fn the_dockerfile_builds_with_the_readmes_steps_as_a_non_root_user_on_data() {
    let dockerfile = repository_file("Dockerfile");
    let readme = repository_file("README.md");
    // Every build or install command of the Dockerfile is in the README, word for word.
    let joined = dockerfile.replace("\\\n", " ");
    let commands: Vec<String> = joined
        .lines()
        .filter_map(|line| line.trim().strip_prefix("RUN "))
        .flat_map(|run| run.split("&&"))
        .map(|command| command.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|command| command.starts_with("cargo ") || command.starts_with("apt-get install"))
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    for command in &commands {
        assert!(
            readme.contains(command.as_str()),
            "README lacks `{command}`"
        );
    }
    for promise in [
        "FROM debian:bookworm-slim",
        "bubblewrap",
        "USER spacebot",
        "ENV SPACEBOT_HOME=/data",
        "VOLUME [\"/data\"]",
        "HEALTHCHECK",
    ] {
        assert!(dockerfile.contains(promise), "Dockerfile lacks {promise}");
    }
    assert!(readme.contains("docker build -t spacebot ."));
}

#[test]
fn completions_are_generated_for_the_common_shells() {
    for (shell, marker) in [
        ("bash", "_spacebot()"),
        ("zsh", "#compdef spacebot"),
        ("fish", "complete -c spacebot"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_spacebot"))
            .args(["completions", shell])
            .output()
            .expect("run");
        assert!(output.status.success());
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        for verb in ["serve", "init", "status", "cron"] {
            assert!(script.contains(verb), "{shell} lacks {verb}");
        }
    }
}

#[tokio::test]
async fn log_format_json_writes_one_object_a_line() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_spacebot"));
    command.args(["--log-format", "json"]);
    // No provider and no owners: the daemon warns about both at startup.
    let config = "[[agents]]\nid = \"main\"\ndefault = true\n\n[memory]\nembedder = \"none\"\n";
    let mut daemon = DaemonProcess::start_with(home.path(), config, command, Stdio::piped()).await;
    daemon.signal("-TERM");
    daemon.wait_exit(std::time::Duration::from_secs(30)).await;
    let mut log = String::new();
    daemon
        .child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("read log");
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect();
    assert!(!lines.is_empty(), "no log");
    assert!(
        lines.iter().any(|line| line["level"] == "WARN"
            && line["fields"]["message"]
                .as_str()
                .is_some_and(|message| message.contains("no owners"))),
        "{log}"
    );
}
