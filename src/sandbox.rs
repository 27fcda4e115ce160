//! Containment for what workers do: the workspace and its file operations (`workspace`), the
//! sandbox shell commands run in (`shell`: bubblewrap, an unprivileged user, rlimits, no
//! inherited environment), and the redaction of secrets from everything that leaves the
//! daemon (`redactor`).

mod redactor;
mod shell;
mod workspace;

pub use redactor::Redactor;
pub use shell::{Sandbox, SandboxStatus};
pub use workspace::{Entry, EntryKind, FileContents, SANDBOX_ROOT, Workspace};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("`{0}` is outside the workspace")]
    OutsideWorkspace(String),
    #[error("the path is empty")]
    EmptyPath,
    #[error("`{0}` is not valid UTF-8")]
    NotUnicode(String),
    #[error("`{0}` is or passes through a symlink, which file tools never follow")]
    Symlink(String),
    #[error("`{0}` does not exist")]
    NotFound(String),
    #[error("a part of `{0}` is not a directory")]
    NotADirectory(String),
    #[error("`{path}` is {kind}; file tools only read and write regular files")]
    NotAFile { path: String, kind: &'static str },
    #[error("`{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}
