//! Resolving `[defaults]` (limits, coalescing, retry, cron and cortex settings) and the
//! `[[agents]]` with their `[[agents.cron]]` jobs.

use std::collections::BTreeMap;

use toml::Spanned;

use super::platforms::deliverable;
use super::raw::{RawAgent, RawCortex, RawCronDefaults, RawCronJob, RawDefaults};
use super::{Invalid, Resolver};
use crate::config::{
    AgentConfig, CoalesceConfig, ConfigError, CortexConfig, DefaultsConfig, MemoryConfig,
    MessagingConfig, ProcessLimits, RetryConfig, RoutingConfig,
};
use crate::schedule::{ActiveHours, CronSettings, JobSpec, Zone, parse_duration};

impl Resolver<'_> {
    pub(super) fn defaults(&self, raw: &RawDefaults) -> Result<DefaultsConfig, ConfigError> {
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
            transcription: None,
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
                max_agent_workers: self.at_least_one(
                    raw.max_workers_per_agent.as_ref(),
                    "defaults.max_workers_per_agent",
                    10,
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
            daily_token_budget: self.budget(raw.daily_token_budget.as_ref(), "defaults")?,
        })
    }

    pub(super) fn zone(
        &self,
        value: Option<&Spanned<String>>,
        key: &str,
        inherited: Zone,
    ) -> Result<Zone, ConfigError> {
        value.map_or(Ok(inherited), |value| {
            Zone::parse(value.get_ref()).map_err(|error| self.error(Some(value.span()), key, error))
        })
    }

    pub(super) fn duration(
        &self,
        value: Option<&Spanned<String>>,
        key: &str,
        default: std::time::Duration,
    ) -> Result<std::time::Duration, ConfigError> {
        value.map_or(Ok(default), |value| {
            parse_duration(value.get_ref())
                .map_err(|error| self.error(Some(value.span()), key, error))
        })
    }

    pub(super) fn cron_settings(&self, raw: &RawCronDefaults) -> Result<CronSettings, ConfigError> {
        let defaults = CronSettings::default();
        Ok(CronSettings {
            grace: self.duration(raw.grace.as_ref(), "defaults.cron.grace", defaults.grace)?,
            timeout: self.duration(
                raw.timeout.as_ref(),
                "defaults.cron.timeout",
                defaults.timeout,
            )?,
            min_interval: self.duration(
                raw.min_interval.as_ref(),
                "defaults.cron.min_interval",
                defaults.min_interval,
            )?,
        })
    }

    pub(super) fn cortex(&self, raw: &RawCortex) -> Result<CortexConfig, ConfigError> {
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
    pub(super) fn cron_jobs(
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
            crate::schedule::validate_id(&id)
                .map_err(|error| located(&job.id, "id", &error.to_string()))?;
            if jobs.iter().any(|existing| existing.id == id) {
                return Err(located(
                    &job.id,
                    "id",
                    &format!("duplicate cron job id `{id}` in this agent"),
                ));
            }
            let prompt = crate::schedule::validate_prompt(job.prompt.get_ref())
                .map_err(|error| located(&job.prompt, "prompt", &error.to_string()))?;
            let schedule = crate::schedule::parse_schedule(
                job.cron.as_ref().map(|value| value.get_ref().as_str()),
                job.every.as_ref().map(|value| value.get_ref().as_str()),
            )
            .map_err(|error| {
                let value = match error.field {
                    "cron" => job.cron.as_ref(),
                    _ => job.every.as_ref(),
                };
                match value {
                    Some(value) => located(value, error.field, &error.message),
                    None => self.error(Some(job.id.span()), &prefix, &error.message),
                }
            })?;
            let timezone = job
                .timezone
                .as_ref()
                .map(|value| {
                    Zone::parse(value.get_ref())
                        .map(|zone| zone.name())
                        .map_err(|error| located(value, "timezone", &error.to_string()))
                })
                .transpose()?;
            let delivery_target = job
                .delivery_target
                .as_ref()
                .map(|value| {
                    let target = value.get_ref().trim();
                    crate::schedule::validate_target(target)
                        .map_err(|error| Invalid(error.to_string()))
                        .and_then(|target| deliverable(&target, messaging))
                        .map(|()| target.to_string())
                        .map_err(|message| located(value, "delivery_target", &message.to_string()))
                })
                .transpose()?;
            let active_hours = job
                .active_hours
                .as_ref()
                .map(|value| {
                    ActiveHours::parse(value.get_ref())
                        .map(|hours| hours.to_string())
                        .map_err(|error| located(value, "active_hours", &error.to_string()))
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
            crate::schedule::check_fires(&spec, zone).map_err(|error| {
                let value = job.active_hours.as_ref().unwrap_or(&job.id);
                located(value, "active_hours", &error.to_string())
            })?;
            jobs.push(spec);
        }
        Ok(jobs)
    }

    pub(super) fn agents(
        &self,
        raw: &[RawAgent],
        defaults: &DefaultsConfig,
        messaging: &MessagingConfig,
        memory: &MemoryConfig,
    ) -> Result<Vec<AgentConfig>, ConfigError> {
        let memory_maintenance_secs = memory
            .maintenance_interval_secs
            .unwrap_or(defaults.cortex.maintenance_interval_secs);
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
                daily_token_budget: defaults.daily_token_budget,
                cron: Vec::new(),
                channel_inbox: defaults.channel_inbox,
                memory_maintenance_secs,
                capture_every: memory.capture_every,
                cron_settings: defaults.cron.clone(),
                cortex: defaults.cortex.clone(),
                links: Vec::new(),
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
                daily_token_budget: match agent.daily_token_budget.as_ref() {
                    Some(value) => self.budget(Some(value), &prefix)?,
                    None => defaults.daily_token_budget,
                },
                cron,
                channel_inbox: defaults.channel_inbox,
                memory_maintenance_secs,
                capture_every: memory.capture_every,
                cron_settings: defaults.cron.clone(),
                cortex: defaults.cortex.clone(),
                links: Vec::new(),
            });
        }
        if default_id.is_none() {
            agents[0].default = true;
        }
        // Links name agents, so they are read once every agent is known.
        for (index, agent) in raw.iter().enumerate() {
            let mut links: Vec<String> = Vec::with_capacity(agent.links.len());
            for link in &agent.links {
                let target = link.get_ref();
                let key = format!("agents[{index}].links");
                if target == agent.id.get_ref() {
                    return Err(self.error(
                        Some(link.span()),
                        &key,
                        "an agent cannot link to itself",
                    ));
                }
                if !agents.iter().any(|known| known.id == *target) {
                    return Err(self.error(
                        Some(link.span()),
                        &key,
                        format!("there is no agent `{target}`"),
                    ));
                }
                if !links.contains(target) {
                    links.push(target.clone());
                }
            }
            agents[index].links = links;
        }
        Ok(agents)
    }
}

impl Resolver<'_> {
    /// `daily_token_budget` under `prefix`: at least 1 when set.
    fn budget(
        &self,
        value: Option<&Spanned<u64>>,
        prefix: &str,
    ) -> Result<Option<u64>, ConfigError> {
        value
            .map(|value| self.at_least_one(Some(value), &format!("{prefix}.daily_token_budget"), 1))
            .transpose()
    }
}

fn is_valid_agent_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}
