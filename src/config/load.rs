//! Parsing TOML into raw serde structs and resolving them into a validated `Config`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;

use serde::Deserialize;
use serde_path_to_error::Segment;
use toml::Spanned;

use super::{
    AgentConfig, ApiConfig, BindingConfig, CoalesceConfig, Config, ConfigError, CortexConfig,
    DEFAULT_MODEL_DOWNLOAD_URL, DefaultsConfig, DiscordConfig, EmbedderConfig, LlmConfig,
    MemoryConfig, MessagingConfig, ModelId, ProcessLimits, ProviderConfig, ProviderKind,
    RetryConfig, RoutingConfig, SlackConfig, TelegramConfig,
};
use crate::cron::schedule::{ActiveHours, Zone, parse_duration};
use crate::cron::{CronSettings, JobSpec};

const PLATFORMS: [&str; 5] = ["discord", "telegram", "slack", "webhook", "portal"];

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    llm: RawLlm,
    defaults: RawDefaults,
    agents: Vec<RawAgent>,
    api: RawApi,
    messaging: RawMessaging,
    bindings: Vec<RawBinding>,
    memory: RawMemory,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawMemory {
    embedder: Option<Spanned<String>>,
    embedding_model_dir: Option<std::path::PathBuf>,
    download_model: Option<bool>,
    model_download_url: Option<Spanned<String>>,
    maintenance_interval_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawMessaging {
    discord: Option<RawDiscord>,
    telegram: Option<RawTelegram>,
    slack: Option<RawSlack>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscord {
    enabled: Option<bool>,
    token: Spanned<String>,
    #[serde(default)]
    dm_allowed_users: Vec<String>,
    #[serde(default)]
    allow_bot_messages: bool,
    api_base: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTelegram {
    enabled: Option<bool>,
    token: Spanned<String>,
    #[serde(default)]
    dm_allowed_users: Vec<String>,
    api_url: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlack {
    enabled: Option<bool>,
    bot_token: Spanned<String>,
    app_token: Spanned<String>,
    api_url: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawLlm {
    providers: BTreeMap<String, RawProvider>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    kind: Option<ProviderKind>,
    base_url: Option<Spanned<String>>,
    api_key: Option<Spanned<String>>,
    timeout_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawDefaults {
    routing: RawRouting,
    retry: RawRetry,
    max_turns: Option<Spanned<usize>>,
    history_messages: Option<Spanned<usize>>,
    channel_inbox: Option<Spanned<usize>>,
    shutdown_grace_secs: Option<u64>,
    max_concurrent_branches: Option<Spanned<usize>>,
    max_concurrent_workers: Option<Spanned<usize>>,
    branch_max_turns: Option<Spanned<usize>>,
    worker_max_turns: Option<Spanned<usize>>,
    worker_timeout_secs: Option<Spanned<u64>>,
    context_window: Option<Spanned<usize>>,
    retrigger_batch_ms: Option<u64>,
    max_retriggers: Option<usize>,
    channel_idle_secs: Option<u64>,
    coalesce: RawCoalesce,
    timezone: Option<Spanned<String>>,
    cron: RawCronDefaults,
    cortex: RawCortex,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawCronDefaults {
    grace: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawCortex {
    stall_secs: Option<Spanned<u64>>,
    branch_timeout_secs: Option<Spanned<u64>>,
    breaker_threshold: Option<Spanned<u32>>,
    breaker_cooldown_secs: Option<Spanned<u64>>,
    maintenance_interval_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCronJob {
    id: Spanned<String>,
    prompt: Spanned<String>,
    cron: Option<Spanned<String>>,
    every: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    delivery_target: Option<Spanned<String>>,
    active_hours: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    enabled: Option<bool>,
    run_once: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawCoalesce {
    enabled: Option<bool>,
    debounce_ms: Option<u64>,
    max_wait_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawRouting {
    channel: Option<Spanned<String>>,
    branch: Option<Spanned<String>>,
    worker: Option<Spanned<String>>,
    compactor: Option<Spanned<String>>,
    cortex: Option<Spanned<String>>,
    /// Values are spanned so that a bad key can point at its line.
    fallbacks: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawRetry {
    max_retries: Option<u32>,
    initial_backoff_ms: Option<Spanned<u64>>,
    max_backoff_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    id: Spanned<String>,
    default: Option<Spanned<bool>>,
    display_name: Option<String>,
    max_turns: Option<Spanned<usize>>,
    history_messages: Option<Spanned<usize>>,
    #[serde(default)]
    routing: RawRouting,
    timezone: Option<Spanned<String>>,
    #[serde(default)]
    cron: Vec<RawCronJob>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawApi {
    enabled: Option<bool>,
    bind: Option<IpAddr>,
    port: Option<u16>,
    token: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBinding {
    agent: Spanned<String>,
    platform: Spanned<String>,
    guild_id: Option<String>,
    #[serde(default)]
    channel_ids: Vec<String>,
    chat_id: Option<String>,
    team_id: Option<String>,
    #[serde(default)]
    require_mention: bool,
}

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
    let messaging = resolver.messaging(&raw.messaging)?;
    let agents = resolver.agents(&raw.agents, &defaults, &messaging)?;
    let bindings = resolver.bindings(raw.bindings, &agents)?;
    let memory = resolver.memory(&raw.memory)?;
    let api = ApiConfig {
        enabled: raw.api.enabled.unwrap_or(true),
        bind: raw.api.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        port: raw.api.port.unwrap_or(19898),
        token: raw
            .api
            .token
            .as_ref()
            .map(|token| resolver.secret(token, "api.token"))
            .transpose()?,
    };
    Ok(Config {
        path: None,
        llm: LlmConfig {
            providers: resolver.providers,
        },
        defaults,
        agents,
        api,
        messaging,
        bindings,
        memory,
    })
}

/// Turns raw values into resolved ones, producing errors that point into `text`.
struct Resolver<'a> {
    text: &'a str,
    file_label: &'a str,
    environment: &'a dyn Fn(&str) -> Option<String>,
    providers: BTreeMap<String, ProviderConfig>,
}

impl Resolver<'_> {
    fn error(&self, span: Option<Range<usize>>, key: &str, message: &str) -> ConfigError {
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

    fn providers(
        &self,
        raw: &BTreeMap<String, RawProvider>,
    ) -> Result<BTreeMap<String, ProviderConfig>, ConfigError> {
        if raw.is_empty() {
            return self.environment_providers();
        }
        let mut providers = BTreeMap::new();
        for (name, provider) in raw {
            let key = dotted("llm.providers", name);
            let base_url = provider
                .base_url
                .as_ref()
                .map(|url| {
                    normalize_base_url(url.get_ref()).map_err(|message| {
                        self.error(Some(url.span()), &format!("{key}.base_url"), &message)
                    })
                })
                .transpose()?;
            let api_key = provider
                .api_key
                .as_ref()
                .map(|api_key| self.secret(api_key, &format!("{key}.api_key")))
                .transpose()?;
            let resolved = ProviderConfig {
                name: name.clone(),
                kind: provider.kind.unwrap_or(if name == "anthropic" {
                    ProviderKind::Anthropic
                } else {
                    ProviderKind::OpenAi
                }),
                base_url,
                api_key,
                timeout_secs: self.at_least_one(
                    provider.timeout_secs.as_ref(),
                    &format!("{key}.timeout_secs"),
                    120,
                )?,
            };
            providers.insert(name.clone(), resolved);
        }
        Ok(providers)
    }

    /// Providers implied by `OPENAI_*` / `ANTHROPIC_*` when the file configures none.
    fn environment_providers(&self) -> Result<BTreeMap<String, ProviderConfig>, ConfigError> {
        let candidates = [
            ("openai", ProviderKind::OpenAi, "OPENAI"),
            ("anthropic", ProviderKind::Anthropic, "ANTHROPIC"),
        ];
        let mut providers = BTreeMap::new();
        for (name, kind, prefix) in candidates {
            let url_variable = format!("{prefix}_BASE_URL");
            let api_key = self.variable(&format!("{prefix}_API_KEY"));
            let base_url = self.variable(&url_variable);
            if api_key.is_none() && base_url.is_none() {
                continue;
            }
            let base_url = base_url
                .map(|url| {
                    normalize_base_url(&url)
                        .map_err(|message| self.error(None, &url_variable, &message))
                })
                .transpose()?;
            tracing::debug!(
                provider = name,
                "no [llm.providers] configured; using {prefix}_* environment variables"
            );
            let provider = ProviderConfig {
                name: name.to_string(),
                kind,
                base_url,
                api_key,
                timeout_secs: 120,
            };
            providers.insert(name.to_string(), provider);
        }
        Ok(providers)
    }

    /// Checks that `model` names a configured provider (any provider when none are configured).
    fn check_provider(&self, model: &ModelId) -> Result<(), String> {
        if self.providers.is_empty() || self.providers.contains_key(&model.provider) {
            return Ok(());
        }
        let names: Vec<&str> = self.providers.keys().map(String::as_str).collect();
        Err(format!(
            "unknown provider `{}`; configured providers: {}",
            model.provider,
            names.join(", ")
        ))
    }

    fn model(&self, value: &Spanned<String>, key: &str) -> Result<ModelId, ConfigError> {
        self.model_at(value.get_ref(), Some(value.span()), key)
    }

    /// Parses a model id whose provider must be configured; errors point at `span`.
    fn model_at(
        &self,
        text: &str,
        span: Option<Range<usize>>,
        key: &str,
    ) -> Result<ModelId, ConfigError> {
        text.parse::<ModelId>()
            .map_err(|error| error.to_string())
            .and_then(|model| self.check_provider(&model).map(|()| model))
            .map_err(|message| self.error(span, key, &message))
    }

    /// The channel model when `defaults.routing.channel` is absent.
    fn default_channel(&self) -> Result<ModelId, ConfigError> {
        if let Some(value) = self.variable("SPACEBOT_MODEL") {
            return self.model_at(&value, None, "SPACEBOT_MODEL");
        }
        let only_anthropic = self.providers.len() == 1 && self.providers.contains_key("anthropic");
        let (provider, model) = if only_anthropic {
            ("anthropic", "claude-sonnet-4-5")
        } else {
            ("openai", "gpt-4o-mini")
        };
        let model = ModelId {
            provider: provider.to_string(),
            model: model.to_string(),
        };
        self.check_provider(&model).map_err(|reason| {
            let message = format!(
                "no model configured and the built-in default `{model}` cannot be used ({reason}); set defaults.routing.channel or SPACEBOT_MODEL"
            );
            self.error(None, "defaults.routing.channel", &message)
        })?;
        Ok(model)
    }

    /// Applies the values present in `raw` over `base`, merging fallback maps.
    fn routing(
        &self,
        raw: &RawRouting,
        prefix: &str,
        base: &RoutingConfig,
    ) -> Result<RoutingConfig, ConfigError> {
        let pick = |value: &Option<Spanned<String>>, field: &str, inherited: &ModelId| {
            value.as_ref().map_or(Ok(inherited.clone()), |value| {
                self.model(value, &format!("{prefix}.{field}"))
            })
        };
        let mut fallbacks = base.fallbacks.clone();
        for (from, targets) in &raw.fallbacks {
            let key = dotted(&format!("{prefix}.fallbacks"), from);
            let from = self.model_at(from, Some(targets.span()), &key)?;
            let targets = targets
                .get_ref()
                .iter()
                .enumerate()
                .map(|(index, target)| self.model(target, &format!("{key}[{index}]")))
                .collect::<Result<Vec<_>, _>>()?;
            fallbacks.insert(from, targets);
        }
        Ok(RoutingConfig {
            channel: pick(&raw.channel, "channel", &base.channel)?,
            branch: pick(&raw.branch, "branch", &base.branch)?,
            worker: pick(&raw.worker, "worker", &base.worker)?,
            compactor: pick(&raw.compactor, "compactor", &base.compactor)?,
            cortex: pick(&raw.cortex, "cortex", &base.cortex)?,
            fallbacks,
        })
    }

    fn defaults(&self, raw: &RawDefaults) -> Result<DefaultsConfig, ConfigError> {
        let channel = match &raw.routing.channel {
            Some(value) => self.model(value, "defaults.routing.channel")?,
            None => self.default_channel()?,
        };
        let base = RoutingConfig {
            channel: channel.clone(),
            branch: channel.clone(),
            worker: channel.clone(),
            compactor: channel.clone(),
            cortex: channel,
            fallbacks: BTreeMap::new(),
        };
        let initial = raw.retry.initial_backoff_ms.as_ref();
        let maximum = raw.retry.max_backoff_ms.as_ref();
        let retry = RetryConfig {
            max_retries: raw.retry.max_retries.unwrap_or(3),
            initial_backoff_ms: initial.map_or(500, |value| *value.get_ref()),
            max_backoff_ms: maximum.map_or(8000, |value| *value.get_ref()),
        };
        if retry.initial_backoff_ms > retry.max_backoff_ms {
            let (key, span) = match maximum {
                Some(value) => ("defaults.retry.max_backoff_ms", Some(value.span())),
                None => (
                    "defaults.retry.initial_backoff_ms",
                    initial.map(Spanned::span),
                ),
            };
            let message = "initial_backoff_ms must not exceed max_backoff_ms";
            return Err(self.error(span, key, message));
        }
        Ok(DefaultsConfig {
            routing: self.routing(&raw.routing, "defaults.routing", &base)?,
            retry,
            max_turns: self.at_least_one(raw.max_turns.as_ref(), "defaults.max_turns", 5)?,
            history_messages: self.at_least_one(
                raw.history_messages.as_ref(),
                "defaults.history_messages",
                40,
            )?,
            channel_inbox: self.at_least_one(
                raw.channel_inbox.as_ref(),
                "defaults.channel_inbox",
                64,
            )?,
            shutdown_grace_secs: raw.shutdown_grace_secs.unwrap_or(20),
            limits: ProcessLimits {
                max_concurrent_branches: self.at_least_one(
                    raw.max_concurrent_branches.as_ref(),
                    "defaults.max_concurrent_branches",
                    5,
                )?,
                max_concurrent_workers: self.at_least_one(
                    raw.max_concurrent_workers.as_ref(),
                    "defaults.max_concurrent_workers",
                    5,
                )?,
                branch_max_turns: self.at_least_one(
                    raw.branch_max_turns.as_ref(),
                    "defaults.branch_max_turns",
                    10,
                )?,
                worker_max_turns: self.at_least_one(
                    raw.worker_max_turns.as_ref(),
                    "defaults.worker_max_turns",
                    30,
                )?,
                worker_timeout_secs: self.at_least_one(
                    raw.worker_timeout_secs.as_ref(),
                    "defaults.worker_timeout_secs",
                    600,
                )?,
                context_window: self.at_least_one(
                    raw.context_window.as_ref(),
                    "defaults.context_window",
                    128_000,
                )?,
                retrigger_batch_ms: raw.retrigger_batch_ms.unwrap_or(500),
                max_retriggers: raw.max_retriggers.unwrap_or(3),
                channel_idle_secs: raw.channel_idle_secs.unwrap_or(600),
            },
            coalesce: CoalesceConfig {
                enabled: raw.coalesce.enabled.unwrap_or(true),
                debounce_ms: raw.coalesce.debounce_ms.unwrap_or(1500),
                max_wait_ms: raw.coalesce.max_wait_ms.unwrap_or(5000),
            },
            timezone: self.zone(raw.timezone.as_ref(), "defaults.timezone", Zone::Local)?,
            cron: self.cron_settings(&raw.cron)?,
            cortex: self.cortex(&raw.cortex)?,
        })
    }

    fn zone(
        &self,
        value: Option<&Spanned<String>>,
        key: &str,
        inherited: Zone,
    ) -> Result<Zone, ConfigError> {
        value.map_or(Ok(inherited), |value| {
            Zone::parse(value.get_ref())
                .map_err(|message| self.error(Some(value.span()), key, &message))
        })
    }

    fn duration(
        &self,
        value: Option<&Spanned<String>>,
        key: &str,
        default: std::time::Duration,
    ) -> Result<std::time::Duration, ConfigError> {
        value.map_or(Ok(default), |value| {
            parse_duration(value.get_ref())
                .map_err(|message| self.error(Some(value.span()), key, &message))
        })
    }

    fn cron_settings(&self, raw: &RawCronDefaults) -> Result<CronSettings, ConfigError> {
        let defaults = CronSettings::default();
        Ok(CronSettings {
            grace: self.duration(raw.grace.as_ref(), "defaults.cron.grace", defaults.grace)?,
            timeout: self.duration(
                raw.timeout.as_ref(),
                "defaults.cron.timeout",
                defaults.timeout,
            )?,
        })
    }

    fn cortex(&self, raw: &RawCortex) -> Result<CortexConfig, ConfigError> {
        let defaults = CortexConfig::default();
        Ok(CortexConfig {
            stall_secs: self.at_least_one(
                raw.stall_secs.as_ref(),
                "defaults.cortex.stall_secs",
                defaults.stall_secs,
            )?,
            branch_timeout_secs: self.at_least_one(
                raw.branch_timeout_secs.as_ref(),
                "defaults.cortex.branch_timeout_secs",
                defaults.branch_timeout_secs,
            )?,
            breaker_threshold: self.at_least_one(
                raw.breaker_threshold.as_ref(),
                "defaults.cortex.breaker_threshold",
                defaults.breaker_threshold,
            )?,
            breaker_cooldown_secs: self.at_least_one(
                raw.breaker_cooldown_secs.as_ref(),
                "defaults.cortex.breaker_cooldown_secs",
                defaults.breaker_cooldown_secs,
            )?,
            maintenance_interval_secs: self.at_least_one(
                raw.maintenance_interval_secs.as_ref(),
                "defaults.cortex.maintenance_interval_secs",
                defaults.maintenance_interval_secs,
            )?,
        })
    }

    /// The `[[agents.cron]]` jobs of one agent, each checked where it is written.
    fn cron_jobs(
        &self,
        raw: &[RawCronJob],
        prefix: &str,
        zone: Zone,
        settings: &CronSettings,
        messaging: &MessagingConfig,
    ) -> Result<Vec<JobSpec>, ConfigError> {
        let mut jobs: Vec<JobSpec> = Vec::with_capacity(raw.len());
        for (index, job) in raw.iter().enumerate() {
            let prefix = format!("{prefix}.cron[{index}]");
            let located = |value: &Spanned<String>, field: &str, message: &str| {
                self.error(Some(value.span()), &format!("{prefix}.{field}"), message)
            };
            let id = job.id.get_ref().trim().to_string();
            crate::cron::validate_id(&id).map_err(|message| located(&job.id, "id", &message))?;
            if jobs.iter().any(|existing| existing.id == id) {
                return Err(located(
                    &job.id,
                    "id",
                    &format!("duplicate cron job id `{id}` in this agent"),
                ));
            }
            let prompt = crate::cron::validate_prompt(job.prompt.get_ref())
                .map_err(|message| located(&job.prompt, "prompt", &message))?;
            let schedule = crate::cron::parse_schedule(
                job.cron.as_ref().map(|value| value.get_ref().as_str()),
                job.every.as_ref().map(|value| value.get_ref().as_str()),
            )
            .map_err(|(field, message)| {
                let value = match field {
                    "cron" => job.cron.as_ref(),
                    _ => job.every.as_ref(),
                };
                match value {
                    Some(value) => located(value, field, &message),
                    None => self.error(Some(job.id.span()), &prefix, &message),
                }
            })?;
            let timezone = job
                .timezone
                .as_ref()
                .map(|value| {
                    Zone::parse(value.get_ref())
                        .map(|zone| zone.name())
                        .map_err(|message| located(value, "timezone", &message))
                })
                .transpose()?;
            let delivery_target = job
                .delivery_target
                .as_ref()
                .map(|value| {
                    let target = value.get_ref().trim();
                    crate::cron::validate_target(target)
                        .and_then(|()| deliverable(target, messaging))
                        .map(|()| target.to_string())
                        .map_err(|message| located(value, "delivery_target", &message))
                })
                .transpose()?;
            let active_hours = job
                .active_hours
                .as_ref()
                .map(|value| {
                    ActiveHours::parse(value.get_ref())
                        .map(|hours| hours.to_string())
                        .map_err(|message| located(value, "active_hours", &message))
                })
                .transpose()?;
            let timeout = self.duration(
                job.timeout.as_ref(),
                &format!("{prefix}.timeout"),
                settings.timeout,
            )?;
            let spec = JobSpec {
                id,
                prompt,
                schedule,
                timezone,
                delivery_target,
                active_hours,
                timeout_secs: timeout.as_secs(),
                enabled: job.enabled.unwrap_or(true),
                run_once: job.run_once.unwrap_or(false),
            };
            crate::cron::check_fires(&spec, zone).map_err(|message| {
                let value = job.active_hours.as_ref().unwrap_or(&job.id);
                located(value, "active_hours", &message)
            })?;
            jobs.push(spec);
        }
        Ok(jobs)
    }

    fn agents(
        &self,
        raw: &[RawAgent],
        defaults: &DefaultsConfig,
        messaging: &MessagingConfig,
    ) -> Result<Vec<AgentConfig>, ConfigError> {
        if raw.is_empty() {
            return Ok(vec![AgentConfig {
                id: "main".to_string(),
                default: true,
                display_name: "main".to_string(),
                routing: defaults.routing.clone(),
                max_turns: defaults.max_turns,
                history_messages: defaults.history_messages,
                limits: defaults.limits.clone(),
                coalesce: defaults.coalesce.clone(),
                timezone: defaults.timezone,
                cron: Vec::new(),
                cron_settings: defaults.cron.clone(),
                cortex: defaults.cortex.clone(),
            }]);
        }
        let mut agents: Vec<AgentConfig> = Vec::with_capacity(raw.len());
        let mut default_id: Option<&str> = None;
        for (index, agent) in raw.iter().enumerate() {
            let prefix = format!("agents[{index}]");
            let id = agent.id.get_ref();
            let id_error =
                |message: &str| self.error(Some(agent.id.span()), &format!("{prefix}.id"), message);
            if !is_valid_agent_id(id) {
                return Err(id_error("agent id must match [a-z0-9_-]{1,64}"));
            }
            if agents.iter().any(|existing| existing.id == *id) {
                return Err(id_error(&format!("duplicate agent id `{id}`")));
            }
            let default = agent.default.as_ref().is_some_and(|value| *value.get_ref());
            if let (true, Some(first), Some(value)) = (default, default_id, &agent.default) {
                let message = format!("more than one agent has default = true (first: `{first}`)");
                return Err(self.error(Some(value.span()), &format!("{prefix}.default"), &message));
            }
            if default {
                default_id = Some(id);
            }
            let timezone = self.zone(
                agent.timezone.as_ref(),
                &format!("{prefix}.timezone"),
                defaults.timezone,
            )?;
            let cron = self.cron_jobs(&agent.cron, &prefix, timezone, &defaults.cron, messaging)?;
            agents.push(AgentConfig {
                id: id.clone(),
                default,
                display_name: agent.display_name.clone().unwrap_or_else(|| id.clone()),
                routing: self.routing(
                    &agent.routing,
                    &format!("{prefix}.routing"),
                    &defaults.routing,
                )?,
                max_turns: self.at_least_one(
                    agent.max_turns.as_ref(),
                    &format!("{prefix}.max_turns"),
                    defaults.max_turns,
                )?,
                history_messages: self.at_least_one(
                    agent.history_messages.as_ref(),
                    &format!("{prefix}.history_messages"),
                    defaults.history_messages,
                )?,
                limits: defaults.limits.clone(),
                coalesce: defaults.coalesce.clone(),
                timezone,
                cron,
                cron_settings: defaults.cron.clone(),
                cortex: defaults.cortex.clone(),
            });
        }
        if default_id.is_none() {
            agents[0].default = true;
        }
        Ok(agents)
    }

    /// A platform is configured when its table is present; its secrets are then required.
    fn messaging(&self, raw: &RawMessaging) -> Result<MessagingConfig, ConfigError> {
        let url = |value: &Option<Spanned<String>>, key: &str| {
            value
                .as_ref()
                .map(|url| {
                    normalize_base_url(url.get_ref())
                        .map_err(|message| self.error(Some(url.span()), key, &message))
                })
                .transpose()
        };
        let discord = raw
            .discord
            .as_ref()
            .map(|discord| -> Result<DiscordConfig, ConfigError> {
                Ok(DiscordConfig {
                    enabled: discord.enabled.unwrap_or(true),
                    token: self.secret(&discord.token, "messaging.discord.token")?,
                    dm_allowed_users: discord.dm_allowed_users.clone(),
                    allow_bot_messages: discord.allow_bot_messages,
                    api_base: url(&discord.api_base, "messaging.discord.api_base")?,
                })
            })
            .transpose()?;
        let telegram = raw
            .telegram
            .as_ref()
            .map(|telegram| -> Result<TelegramConfig, ConfigError> {
                Ok(TelegramConfig {
                    enabled: telegram.enabled.unwrap_or(true),
                    token: self.secret(&telegram.token, "messaging.telegram.token")?,
                    dm_allowed_users: telegram.dm_allowed_users.clone(),
                    api_url: url(&telegram.api_url, "messaging.telegram.api_url")?,
                })
            })
            .transpose()?;
        let slack = raw
            .slack
            .as_ref()
            .map(|slack| -> Result<SlackConfig, ConfigError> {
                Ok(SlackConfig {
                    enabled: slack.enabled.unwrap_or(true),
                    bot_token: self.secret(&slack.bot_token, "messaging.slack.bot_token")?,
                    app_token: self.secret(&slack.app_token, "messaging.slack.app_token")?,
                    api_url: url(&slack.api_url, "messaging.slack.api_url")?,
                })
            })
            .transpose()?;
        Ok(MessagingConfig {
            discord,
            telegram,
            slack,
        })
    }

    fn memory(&self, raw: &RawMemory) -> Result<MemoryConfig, ConfigError> {
        let download_url = match &raw.model_download_url {
            Some(url) => normalize_base_url(url.get_ref()).map_err(|message| {
                self.error(Some(url.span()), "memory.model_download_url", &message)
            })?,
            None => DEFAULT_MODEL_DOWNLOAD_URL.to_string(),
        };
        let embedder = match raw.embedder.as_ref() {
            None => None,
            Some(value) => match value.get_ref().as_str() {
                "local" => None,
                "none" => Some(EmbedderConfig::None),
                text => {
                    let model = self.model_at(text, Some(value.span()), "memory.embedder")?;
                    let kind = self
                        .providers
                        .get(&model.provider)
                        .map(|provider| provider.kind);
                    if kind == Some(ProviderKind::Anthropic) {
                        let message = format!(
                            "provider `{}` speaks the Anthropic protocol, which has no embeddings endpoint; use \"local\", \"none\" or an OpenAI-compatible provider",
                            model.provider
                        );
                        return Err(self.error(Some(value.span()), "memory.embedder", &message));
                    }
                    Some(EmbedderConfig::Provider { model })
                }
            },
        };
        let embedder = embedder.unwrap_or_else(|| EmbedderConfig::Local {
            model_dir: raw.embedding_model_dir.clone(),
            download: raw.download_model.unwrap_or(true),
            download_url,
        });
        Ok(MemoryConfig {
            embedder,
            maintenance_interval_secs: self.at_least_one(
                raw.maintenance_interval_secs.as_ref(),
                "memory.maintenance_interval_secs",
                3600,
            )?,
        })
    }

    fn bindings(
        &self,
        raw: Vec<RawBinding>,
        agents: &[AgentConfig],
    ) -> Result<Vec<BindingConfig>, ConfigError> {
        let mut bindings = Vec::with_capacity(raw.len());
        for (index, binding) in raw.into_iter().enumerate() {
            let agent = binding.agent.get_ref();
            if !agents.iter().any(|candidate| candidate.id == *agent) {
                let known: Vec<&str> = agents
                    .iter()
                    .map(|candidate| candidate.id.as_str())
                    .collect();
                let message = format!(
                    "unknown agent `{agent}`; configured agents: {}",
                    known.join(", ")
                );
                return Err(self.error(
                    Some(binding.agent.span()),
                    &format!("bindings[{index}].agent"),
                    &message,
                ));
            }
            let platform = binding.platform.get_ref();
            if !PLATFORMS.contains(&platform.as_str()) {
                let message = format!(
                    "unknown platform `{platform}`; expected one of: {}",
                    PLATFORMS.join(", ")
                );
                return Err(self.error(
                    Some(binding.platform.span()),
                    &format!("bindings[{index}].platform"),
                    &message,
                ));
            }
            bindings.push(BindingConfig {
                agent: binding.agent.into_inner(),
                platform: binding.platform.into_inner(),
                guild_id: binding.guild_id,
                channel_ids: binding.channel_ids,
                chat_id: binding.chat_id,
                team_id: binding.team_id,
                require_mention: binding.require_mention,
            });
        }
        Ok(bindings)
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

/// A delivery target on a chat platform needs that platform's adapter.
fn deliverable(target: &str, messaging: &MessagingConfig) -> Result<(), String> {
    let platform = crate::messaging::platform_of(target);
    let configured = match platform {
        "discord" => messaging
            .discord
            .as_ref()
            .is_some_and(|discord| discord.enabled),
        "telegram" => messaging
            .telegram
            .as_ref()
            .is_some_and(|telegram| telegram.enabled),
        "slack" => messaging.slack.as_ref().is_some_and(|slack| slack.enabled),
        _ => true,
    };
    if configured {
        Ok(())
    } else {
        Err(format!(
            "`{target}` needs the {platform} adapter; add an enabled [messaging.{platform}] table"
        ))
    }
}

fn is_valid_agent_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

/// Checks the scheme and trims trailing slashes.
fn normalize_base_url(url: &str) -> Result<String, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.trim_end_matches('/').to_string())
    } else {
        Err(format!(
            "base_url must start with http:// or https://, got `{url}`"
        ))
    }
}
