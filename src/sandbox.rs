//! Containment for worker tools: paths that cannot leave the agent workspace, a sanitised
//! environment for subprocesses, bubblewrap when it is available, and secret redaction.

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use tokio::process::Command;

/// Variables a subprocess may inherit. Everything else (provider keys, platform tokens,
/// LD_PRELOAD-style loader variables) is dropped.
const INHERITED_VARIABLES: &[&str] = &["PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ"];
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("`{0}` is outside the workspace")]
    OutsideWorkspace(String),
    #[error("the path is empty")]
    EmptyPath,
    #[error("cannot resolve `{path}`: {source}")]
    Resolve {
        path: String,
        source: std::io::Error,
    },
}

/// The directory an agent's workers act in.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// `root` must exist; it is canonicalised so symlink checks compare real paths.
    pub fn new(root: &Path) -> std::io::Result<Self> {
        Ok(Self {
            root: root.canonicalize()?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a path given by a tool (relative to the workspace, or absolute inside it) to
    /// a real path inside the workspace. `..` that climbs out and symlinks that point out are
    /// refused; the path itself need not exist yet.
    pub fn resolve(&self, requested: &str) -> Result<PathBuf, SandboxError> {
        let requested = requested.trim();
        if requested.is_empty() {
            return Err(SandboxError::EmptyPath);
        }
        let outside = || SandboxError::OutsideWorkspace(requested.to_string());
        let joined = self.root.join(requested);
        let mut normal = PathBuf::new();
        for component in joined.components() {
            match component {
                Component::ParentDir => {
                    if !normal.pop() {
                        return Err(outside());
                    }
                }
                Component::CurDir => {}
                other => normal.push(other),
            }
        }
        if !normal.starts_with(&self.root) {
            return Err(outside());
        }
        // The deepest part that exists decides where symlinks really lead.
        let mut existing = normal.as_path();
        while !existing.exists() {
            existing = match existing.parent() {
                Some(parent) => parent,
                None => return Err(outside()),
            };
        }
        let real = existing
            .canonicalize()
            .map_err(|source| SandboxError::Resolve {
                path: requested.to_string(),
                source,
            })?;
        if !real.starts_with(&self.root) {
            return Err(outside());
        }
        let rest = normal.strip_prefix(existing).unwrap_or(Path::new(""));
        // A dangling symlink inside the workspace could still be created through; refuse it.
        if let Ok(metadata) = std::fs::symlink_metadata(&normal)
            && metadata.file_type().is_symlink()
            && !normal.exists()
        {
            return Err(outside());
        }
        if rest.as_os_str().is_empty() {
            // `join("")` would add a trailing separator, which only a directory accepts.
            return Ok(real);
        }
        Ok(real.join(rest))
    }

    /// A `sh -c script` command running in the workspace with a sanitised environment, inside
    /// bubblewrap (read-only system, writable workspace) when it is available.
    pub fn command(&self, script: &str) -> Command {
        let mut command = if sandbox_available() {
            let root = self.root.to_string_lossy().to_string();
            let mut command = Command::new("bwrap");
            command.args([
                "--ro-bind",
                "/",
                "/",
                "--dev",
                "/dev",
                "--proc",
                "/proc",
                "--tmpfs",
                "/tmp",
                "--bind",
                &root,
                &root,
                "--chdir",
                &root,
                "--unshare-pid",
                "--die-with-parent",
                "--new-session",
                "--",
                "sh",
                "-c",
                script,
            ]);
            command
        } else {
            let mut command = Command::new("sh");
            command.args(["-c", script]);
            command
        };
        command.current_dir(&self.root).env_clear();
        for name in INHERITED_VARIABLES {
            if let Ok(value) = std::env::var(name) {
                command.env(name, value);
            }
        }
        if std::env::var_os("PATH").is_none() {
            command.env("PATH", DEFAULT_PATH);
        }
        command
            .env("HOME", &self.root)
            .env("TERM", "dumb")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        command
    }
}

/// Whether bubblewrap works here; checked once, and said loudly when it does not.
pub fn sandbox_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let works = std::process::Command::new("bwrap")
            .args([
                "--ro-bind",
                "/",
                "/",
                "--dev",
                "/dev",
                "--unshare-pid",
                "--",
                "true",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if works {
            tracing::info!("worker shell commands run inside bubblewrap");
        } else {
            tracing::warn!(
                "bubblewrap (bwrap) is not available: worker shell commands run WITHOUT a \
                 sandbox, limited only to the workspace directory and a sanitised environment. \
                 Install bubblewrap to contain them."
            );
        }
        works
    })
}

/// Replaces every configured secret value in tool output before it reaches an LLM or a chat.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Secrets shorter than 6 characters are ignored: replacing them would garble output.
    pub fn new(secrets: Vec<String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|secret| secret.len() >= 6)
            .collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        secrets.dedup();
        Self { secrets }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "[redacted]");
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_workspace() {
        let directory = tempfile::tempdir().expect("tempdir");
        let workspace = Workspace::new(directory.path()).expect("workspace");
        let root = workspace.root().to_path_buf();
        assert_eq!(
            workspace.resolve("notes/today.md").expect("inside"),
            root.join("notes/today.md")
        );
        assert_eq!(
            workspace.resolve("a/../b.txt").expect("inside"),
            root.join("b.txt")
        );
        for escape in ["../secret", "a/../../x", "/etc/passwd", "../../../../etc"] {
            assert!(
                matches!(
                    workspace.resolve(escape),
                    Err(SandboxError::OutsideWorkspace(_))
                ),
                "{escape} was allowed"
            );
        }
        std::fs::write(root.join("exists.txt"), "x").expect("write");
        assert_eq!(
            workspace.resolve("exists.txt").expect("inside"),
            root.join("exists.txt"),
            "an existing file resolves to itself, with no trailing separator"
        );
        let absolute_inside = root.join("inside.txt");
        assert!(
            workspace
                .resolve(&absolute_inside.to_string_lossy())
                .is_ok()
        );
    }

    #[test]
    fn symlinks_out_of_the_workspace_are_refused() {
        let directory = tempfile::tempdir().expect("tempdir");
        let workspace = Workspace::new(directory.path()).expect("workspace");
        std::os::unix::fs::symlink("/etc", directory.path().join("etc")).expect("symlink");
        std::os::unix::fs::symlink("/nonexistent/target", directory.path().join("dangling"))
            .expect("symlink");
        for escape in ["etc/passwd", "etc", "dangling", "etc/new-file"] {
            assert!(
                workspace.resolve(escape).is_err(),
                "{escape} escaped through a symlink"
            );
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let redactor = Redactor::new(vec!["sk-live-123456".into(), "abc".into()]);
        assert_eq!(
            redactor.redact("key=sk-live-123456 abc"),
            "key=[redacted] abc"
        );
    }
}
