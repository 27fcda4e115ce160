//! Errors produced while reading, parsing and validating configuration.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A syntax, type or validation problem. `key` is a dotted path such as
    /// `agents[1].routing.channel` (`(syntax)` for TOML syntax errors). Line and column are
    /// 1-based; both are 0 when the value came from an environment variable or was absent.
    #[error("{file}:{line}:{column}: {key}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A string that is not a valid `provider/model` id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid model id `{value}`: {reason}")]
pub struct ModelIdError {
    pub value: String,
    pub reason: String,
}
