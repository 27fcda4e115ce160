//! Parsing TOML into the raw serde structs (`raw`) and resolving them into a validated
//! `Config`. `Resolver` carries what every resolution step needs to point an error at its
//! file, line and key; the steps live beside it by section: models and providers
//! (`models`), defaults, agents and their jobs (`agents`), platforms, bindings and memory
//! (`platforms`).

mod access;
mod agents;
mod mcp;
mod models;
mod platforms;
mod raw;
mod web;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;

use serde_path_to_error::Segment;
use toml::Spanned;

use super::{ApiConfig, Config, ConfigError, LlmConfig, ProviderConfig, ReloadConfig};
use raw::RawConfig;

pub(super) fn parse(
    text: &str,
    file_label: &str,
    environment: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut resolver = Resolver {
        text,
        file_label,
        environment,
        providers: BTreeMap::new(),
    };
    let deserializer =
        toml::Deserializer::parse(text).map_err(|error| resolver.toml_error(&error, "(syntax)"))?;
    let raw: RawConfig = serde_path_to_error::deserialize(deserializer)
        .map_err(|error| resolver.toml_error(error.inner(), &key_path(error.path())))?;
    resolver.providers = resolver.providers(&raw.llm.providers)?;
    let defaults = resolver.defaults(&raw.defaults)?;
    let mut messaging = resolver.messaging(&raw.messaging)?;
    let memory = resolver.memory(&raw.memory)?;
    let agents = resolver.agents(&raw.agents, &defaults, &messaging, &memory)?;
    let bindings = resolver.bindings(raw.bindings, &agents)?;
    let mcp_servers = resolver.mcp_servers(&raw.mcp_servers, &agents)?;
    let mut notices = Vec::new();
    let access = resolver.access(&raw.access, &raw.messaging, &mut notices)?;
    let sandbox = resolver.sandbox(&raw.sandbox)?;
    let web = resolver.web(&raw.web)?;
    let media = resolver.media(&raw.media)?;
    messaging.max_file_bytes = media.max_file_bytes;
    let reload = ReloadConfig {
        watch: raw.reload.watch.unwrap_or(true),
        interval_ms: match &raw.reload.interval_ms {
            None => ReloadConfig::default().interval_ms,
            Some(value) if (50..=3_600_000).contains(value.get_ref()) => *value.get_ref(),
            Some(value) => {
                return Err(resolver.error(
                    Some(value.span()),
                    "reload.interval_ms",
                    "must be between 50 and 3600000 (an hour)",
                ));
            }
        },
    };
    let api = ApiConfig {
        enabled: raw.api.enabled.unwrap_or(true),
        bind: raw.api.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        port: raw.api.port.unwrap_or(19898),
        token: raw
            .api
            .token
            .as_ref()
            .map(|token| {
                let value = resolver.secret(token, "api.token")?;
                if value.trim().is_empty() {
                    return Err(resolver.error(
                        Some(token.span()),
                        "api.token",
                        "the token is empty, which would lock every client out; remove the \
                         key for no token, or set a long random value",
                    ));
                }
                Ok(value)
            })
            .transpose()?,
        allowed_hosts: raw.api.allowed_hosts.clone(),
    };
    Ok(Config {
        path: None,
        llm: LlmConfig {
            models: resolver.model_settings(&raw.llm.models)?,
            pricing: models::pricing(&raw.llm.pricing),
            providers: resolver.providers,
        },
        defaults,
        agents,
        api,
        messaging,
        bindings,
        memory,
        access,
        sandbox,
        reload,
        web,
        media,
        mcp_servers,
        notices,
    })
}

/// Turns raw values into resolved ones, producing errors that point into `text`.
/// Why a value is invalid, before the resolver places it in the file (file, line, key).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Invalid(String);

struct Resolver<'a> {
    text: &'a str,
    file_label: &'a str,
    environment: &'a dyn Fn(&str) -> Option<String>,
    providers: BTreeMap<String, ProviderConfig>,
}

impl Resolver<'_> {
    fn error(
        &self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl std::fmt::Display,
    ) -> ConfigError {
        let (line, column) = span.map_or((0, 0), |span| {
            let before = self.text.get(..span.start).unwrap_or(self.text);
            let line_start = before.rfind('\n').map_or(0, |index| index + 1);
            (
                before.matches('\n').count() + 1,
                before[line_start..].chars().count() + 1,
            )
        });
        ConfigError::Invalid {
            file: self.file_label.to_string(),
            line,
            column,
            key: key.to_string(),
            message: message.to_string(),
        }
    }

    fn toml_error(&self, error: &toml::de::Error, key: &str) -> ConfigError {
        self.error(error.span(), key, error.message().trim())
    }

    /// An environment variable, with empty values treated as unset.
    fn variable(&self, name: &str) -> Option<String> {
        (self.environment)(name).filter(|value| !value.is_empty())
    }

    /// A literal secret, or the value of the variable named by `env:VARIABLE`.
    fn secret(&self, value: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
        match value.get_ref().strip_prefix("env:") {
            None => Ok(value.get_ref().clone()),
            Some(variable) => self.variable(variable).ok_or_else(|| {
                let message = format!("environment variable `{variable}` is not set");
                self.error(Some(value.span()), key, &message)
            }),
        }
    }

    fn at_least_one<T: Copy + PartialOrd + From<u8>>(
        &self,
        value: Option<&Spanned<T>>,
        key: &str,
        default: T,
    ) -> Result<T, ConfigError> {
        match value {
            None => Ok(default),
            Some(value) if *value.get_ref() >= T::from(1) => Ok(*value.get_ref()),
            Some(value) => Err(self.error(Some(value.span()), key, "must be at least 1")),
        }
    }
}

/// Renders a serde path as a dotted key, hiding the internals of `Spanned`.
fn key_path(path: &serde_path_to_error::Path) -> String {
    let mut key = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Map { key: name } if name.starts_with("$__serde_spanned_private") => {}
            Segment::Map { key: name } | Segment::Enum { variant: name } => {
                key = if key.is_empty() {
                    dotted_name(name)
                } else {
                    dotted(&key, name)
                };
            }
            Segment::Unknown => key.push_str(".?"),
        }
    }
    if key.is_empty() {
        "(root)".to_string()
    } else {
        key
    }
}

/// `prefix.name`, quoting `name` unless it is a bare TOML key.
fn dotted(prefix: &str, name: &str) -> String {
    format!("{prefix}.{}", dotted_name(name))
}

fn dotted_name(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || matches!(character, '_' | '-'));
    if bare {
        name.to_string()
    } else {
        format!("{name:?}")
    }
}
