//! Where worker shell commands run. With bubblewrap (the default) a command sees a new root
//! made of the system read-only (`/usr`, `/etc`), a fresh `/tmp`, `/dev`, `/proc` of its own
//! pid namespace, and its workspace read-write at `/workspace`: nothing of `$SPACEBOT_HOME`
//! (config, databases, other agents), no user home, no `/run` sockets, no daemon environment.
//! It runs without capabilities, as an unprivileged user when the daemon is root, under CPU,
//! memory, file-size and process-count limits; network access is a setting. The check that
//! bubblewrap works runs these same flags. Without it the shell is off, unless the owner set
//! `[sandbox] mode = "none"`.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};

use serde::Serialize;
use tokio::process::Command;

use super::workspace::{SANDBOX_ROOT, Workspace};
use crate::config::{SandboxConfig, SandboxMode};

/// The unprivileged user and group commands run as when the daemon runs as root (`nobody`).
const UNPRIVILEGED: (u32, u32) = (65534, 65534);
const PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Open files a command may hold.
const OPEN_FILES: u64 = 1024;
/// Top-level names that are symlinks into `/usr` on merged-usr systems, directories
/// elsewhere: bound read-only either way.
const SYSTEM_LINKS: [&str; 6] = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
/// Runs the user's script from the workspace, whatever bubblewrap's working directory.
const ENTER_WORKSPACE: &str = "cd \"$HOME\" || exit 126; exec sh -c \"$1\"";

/// What the status shows about the sandbox.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxStatus {
    pub mode: &'static str,
    /// Worker shell commands can run.
    pub shell: bool,
    /// They run contained (bubblewrap works).
    pub contained: bool,
    pub network: bool,
    pub detail: String,
}

/// How worker shell commands are run, decided once when the daemon starts.
#[derive(Debug)]
pub struct Sandbox {
    config: SandboxConfig,
    /// Bubblewrap works with the flags commands use.
    contained: bool,
    /// The user commands run as, when the daemon is root; the workspace is theirs.
    run_as: Option<(u32, u32)>,
}

impl Sandbox {
    /// Checks, with the real flags, whether bubblewrap works here (once per process and
    /// network setting), and says so in the log when the shell is off.
    pub fn new(config: &SandboxConfig) -> Self {
        let run_as = rustix::process::geteuid().is_root().then_some(UNPRIVILEGED);
        let mut sandbox = Self {
            config: config.clone(),
            contained: false,
            run_as,
        };
        sandbox.contained = match config.mode {
            SandboxMode::Bubblewrap => sandbox.probe(),
            SandboxMode::None => false,
        };
        match (config.mode, sandbox.contained) {
            (SandboxMode::Bubblewrap, true) => {
                tracing::info!(
                    network = config.network,
                    "worker shell commands run inside bubblewrap"
                )
            }
            (SandboxMode::Bubblewrap, false) => tracing::warn!(
                "bubblewrap (bwrap) does not work here, so the worker shell is OFF. Install \
                 bubblewrap (and allow unprivileged user namespaces when not root), or set \
                 [sandbox] mode = \"none\" to run commands uncontained"
            ),
            (SandboxMode::None, _) => tracing::warn!(
                "[sandbox] mode = \"none\": worker shell commands run UNCONTAINED, with the \
                 daemon's rights (limited only by rlimits and a clean environment)"
            ),
        }
        sandbox
    }

    /// The user the workspace belongs to when commands run as someone else.
    pub fn workspace_owner(&self) -> Option<(u32, u32)> {
        self.contained.then_some(self.run_as).flatten()
    }

    /// Why the shell is off, when it is.
    pub fn shell_off(&self) -> Option<&'static str> {
        match (self.config.mode, self.contained) {
            (SandboxMode::Bubblewrap, false) => Some(
                "the shell is off: bubblewrap does not work on this machine, and commands only \
                 run contained",
            ),
            (SandboxMode::Bubblewrap, true) | (SandboxMode::None, _) => None,
        }
    }

    /// Whether commands run contained.
    pub fn contained(&self) -> bool {
        self.contained
    }

    pub fn status(&self) -> SandboxStatus {
        let (mode, detail) = match (self.config.mode, self.contained) {
            (SandboxMode::Bubblewrap, true) => (
                "bubblewrap",
                "commands see only their workspace and the system, read-only".to_string(),
            ),
            (SandboxMode::Bubblewrap, false) => (
                "bubblewrap",
                "bubblewrap does not work here: the worker shell is off; install bubblewrap, \
                 or set [sandbox] mode = \"none\""
                    .to_string(),
            ),
            (SandboxMode::None, _) => (
                "none",
                "commands run uncontained with the daemon's rights ([sandbox] mode = \"none\")"
                    .to_string(),
            ),
        };
        SandboxStatus {
            mode,
            shell: self.shell_off().is_none(),
            contained: self.contained,
            network: self.config.network,
            detail,
        }
    }

    /// A command running `script` for a worker of `workspace`, in its own process group.
    pub fn command(&self, workspace: &Workspace, script: &str) -> Command {
        let mut command = if self.contained {
            self.contained_command(workspace.root(), script)
        } else {
            let mut command = Command::new("prlimit");
            command
                .args(self.limits())
                .args(["--", "sh", "-c", script])
                .current_dir(workspace.root())
                .env_clear()
                .env("PATH", PATH)
                .env("HOME", workspace.root())
                .env("TERM", "dumb");
            command
        };
        command
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        command
    }

    /// bubblewrap around `setpriv` (as root) around `prlimit` around the script.
    fn contained_command(&self, workspace: &Path, script: &str) -> Command {
        let mut command = Command::new(&self.config.bwrap);
        command.env_clear().env("PATH", PATH);
        command.args(["--ro-bind", "/usr", "/usr"]);
        for name in SYSTEM_LINKS {
            let path = Path::new(name);
            match std::fs::read_link(path) {
                Ok(target) => {
                    command.arg("--symlink").arg(target).arg(name);
                }
                Err(_) if path.is_dir() => {
                    command.args(["--ro-bind", name, name]);
                }
                Err(_) => {}
            }
        }
        command.args([
            "--ro-bind",
            "/etc",
            "/etc",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
        ]);
        command
            .arg("--bind")
            .arg(workspace)
            .arg(SANDBOX_ROOT)
            .args(["--chdir", "/"]);
        command.args([
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
        ]);
        if !self.config.network {
            command.arg("--unshare-net");
        }
        if self.run_as.is_some() {
            // Only to drop to the unprivileged user; setuid clears every capability.
            command.args(["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]);
        }
        command.args([
            "--clearenv",
            "--setenv",
            "PATH",
            PATH,
            "--setenv",
            "HOME",
            SANDBOX_ROOT,
            "--setenv",
            "TERM",
            "dumb",
            "--",
        ]);
        if let Some((uid, gid)) = self.run_as {
            command.args([
                "setpriv".to_string(),
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".to_string(),
                "--".to_string(),
            ]);
        }
        command.arg("prlimit").args(self.limits()).args([
            "--",
            "sh",
            "-c",
            ENTER_WORKSPACE,
            "sh",
            script,
        ]);
        command
    }

    /// `prlimit` options: CPU seconds, address space, file size, open files, processes. The
    /// process limit counts every process of the user, so a daemon that runs commands as its
    /// own user adds what that user already runs.
    fn limits(&self) -> Vec<String> {
        let config = &self.config;
        let already = if self.contained && self.run_as.is_some() {
            0
        } else {
            processes_of(rustix::process::getuid().as_raw())
        };
        vec![
            format!("--cpu={}", config.cpu_secs),
            format!("--as={}", config.memory_bytes),
            format!("--fsize={}", config.file_bytes),
            format!("--nofile={OPEN_FILES}"),
            format!("--nproc={}", config.processes + already),
        ]
    }

    /// Runs `true` with the flags commands use, once per process and network setting.
    fn probe(&self) -> bool {
        type Probed = HashMap<(std::path::PathBuf, bool), bool>;
        static PROBES: OnceLock<Mutex<Probed>> = OnceLock::new();
        let probes = PROBES.get_or_init(|| Mutex::new(HashMap::new()));
        let key = (self.config.bwrap.clone(), self.config.network);
        if let Some(works) = probes
            .lock()
            .ok()
            .and_then(|probes| probes.get(&key).copied())
        {
            return works;
        }
        let works = self.probe_once();
        if let Ok(mut probes) = probes.lock() {
            probes.insert(key, works);
        }
        works
    }

    fn probe_once(&self) -> bool {
        let Ok(directory) = tempfile_directory() else {
            return false;
        };
        if let Some((uid, gid)) = self.run_as
            && std::os::unix::fs::chown(&directory, Some(uid), Some(gid)).is_err()
        {
            return false;
        }
        let command = self.contained_command(&directory, "true");
        let mut command = command.into_std();
        let works = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if let Err(error) = std::fs::remove_dir(&directory) {
            tracing::debug!(%error, "cannot remove the sandbox probe's directory");
        }
        works
    }
}

/// An empty directory for the probe.
fn tempfile_directory() -> std::io::Result<std::path::PathBuf> {
    let directory =
        std::env::temp_dir().join(format!("spacebot-probe-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&directory)?;
    Ok(directory)
}

/// How many processes (threads included, as the kernel counts them) `uid` runs now.
fn processes_of(uid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut count = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name
            .to_string_lossy()
            .bytes()
            .all(|byte| byte.is_ascii_digit())
        {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let owned = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            .and_then(|id| id.parse::<u32>().ok())
            == Some(uid);
        if owned {
            count += status
                .lines()
                .find_map(|line| line.strip_prefix("Threads:"))
                .and_then(|threads| threads.trim().parse::<u64>().ok())
                .unwrap_or(1);
        }
    }
    count
}
