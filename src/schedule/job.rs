//! A scheduled job's definition: the validated `JobSpec` as stored, the `JobDraft` people
//! and models write, the per-agent `CronSettings`, and the checks between them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::timing::{ActiveHours, Cadence, CronExpression, Timing, Zone, parse_duration};
use super::{InvalidJob, ScheduleError};
use crate::conversation_id::ConversationId;

/// The cron settings every agent inherits (`[defaults.cron]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSettings {
    /// A slot missed by up to this much (the daemon was down) still runs, once.
    pub grace: Duration,
    /// The timeout of a job that names none.
    pub timeout: Duration,
    /// The shortest time between two runs of a job made from a chat (the `cron` tool).
    pub min_interval: Duration,
}

impl Default for CronSettings {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(300),
            timeout: Duration::from_secs(600),
            min_interval: Duration::from_secs(300),
        }
    }
}

/// When a job fires, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleSpec {
    /// A cron expression (5 fields, or 6 with seconds).
    Cron(String),
    /// An interval in seconds.
    Every(u64),
}

/// A validated job definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub id: String,
    pub prompt: String,
    pub schedule: ScheduleSpec,
    /// The job's own IANA zone; `None` inherits the agent's.
    pub timezone: Option<String>,
    /// The conversation the outcome is delivered to; `None` only records it.
    pub delivery_target: Option<String>,
    /// `HH:MM-HH:MM` in the job's zone.
    pub active_hours: Option<String>,
    pub timeout_secs: u64,
    pub enabled: bool,
    pub run_once: bool,
}

impl JobSpec {
    /// The schedule, read in the job's zone or else `fallback` (the agent's).
    pub fn timing(&self, fallback: Zone) -> Result<Timing, ScheduleError> {
        let cadence = match &self.schedule {
            ScheduleSpec::Cron(expression) => Cadence::Cron(CronExpression::parse(expression)?),
            ScheduleSpec::Every(seconds) => Cadence::Every(Duration::from_secs(*seconds)),
        };
        let zone = match &self.timezone {
            Some(name) => Zone::parse(name)?,
            None => fallback,
        };
        let active_hours = self
            .active_hours
            .as_deref()
            .map(ActiveHours::parse)
            .transpose()?;
        Ok(Timing {
            cadence,
            zone,
            active_hours,
        })
    }
}

/// A job as a person or a model writes it (API body, tool arguments, CLI flags): strings
/// to be validated into a `JobSpec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDraft {
    /// Default: a generated `job-…` id.
    #[serde(default)]
    pub id: Option<String>,
    pub prompt: String,
    #[serde(default)]
    pub cron: Option<String>,
    /// An interval such as `30s`, `15m`, `2h`.
    #[serde(default)]
    pub every: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub delivery_target: Option<String>,
    #[serde(default)]
    pub active_hours: Option<String>,
    /// A duration such as `5m`.
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub run_once: Option<bool>,
}

impl JobDraft {
    pub fn validate(self, settings: &CronSettings, fallback: Zone) -> Result<JobSpec, InvalidJob> {
        let id = match self.id.map(|id| id.trim().to_string()) {
            Some(id) => {
                validate_id(&id).map_err(|message| InvalidJob::new("id", message))?;
                id
            }
            None => format!("job-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        };
        let prompt =
            validate_prompt(&self.prompt).map_err(|message| InvalidJob::new("prompt", message))?;
        let schedule = parse_schedule(self.cron.as_deref(), self.every.as_deref())?;
        let timezone = self
            .timezone
            .map(|name| Zone::parse(&name).map(|zone| zone.name()))
            .transpose()
            .map_err(|message| InvalidJob::new("timezone", message))?;
        let delivery_target = self
            .delivery_target
            .map(|target| validate_target(&target).map(|target| target.to_string()))
            .transpose()
            .map_err(|message| InvalidJob::new("delivery_target", message))?;
        let active_hours = self
            .active_hours
            .map(|text| ActiveHours::parse(&text).map(|hours| hours.to_string()))
            .transpose()
            .map_err(|message| InvalidJob::new("active_hours", message))?;
        let timeout = match self.timeout {
            Some(text) => {
                parse_duration(&text).map_err(|message| InvalidJob::new("timeout", message))?
            }
            None => settings.timeout,
        };
        let spec = JobSpec {
            id,
            prompt,
            schedule,
            timezone,
            delivery_target,
            active_hours,
            timeout_secs: timeout.as_secs(),
            enabled: self.enabled.unwrap_or(true),
            run_once: self.run_once.unwrap_or(false),
        };
        check_fires(&spec, fallback).map_err(|message| InvalidJob::new("schedule", message))?;
        Ok(spec)
    }
}

/// Job ids are `[a-z0-9_-]{1,64}`: they name conversations (`cron:{id}:…`) and URLs.
pub fn validate_id(id: &str) -> Result<(), ScheduleError> {
    let valid = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(ScheduleError::new(format!(
            "job id `{id}` must match [a-z0-9_-]{{1,64}}"
        )))
    }
}

pub fn validate_prompt(prompt: &str) -> Result<String, ScheduleError> {
    let prompt = prompt.trim();
    if prompt.is_empty() {
        Err(ScheduleError::new("the prompt is empty"))
    } else {
        Ok(prompt.to_string())
    }
}

/// Exactly one of a cron expression and an interval. The error names the field at fault.
pub fn parse_schedule(cron: Option<&str>, every: Option<&str>) -> Result<ScheduleSpec, InvalidJob> {
    match (cron, every) {
        (Some(expression), None) => CronExpression::parse(expression)
            .map(|parsed| ScheduleSpec::Cron(parsed.source))
            .map_err(|error| InvalidJob::new("cron", error)),
        (None, Some(interval)) => parse_duration(interval)
            .map(|interval| ScheduleSpec::Every(interval.as_secs()))
            .map_err(|error| InvalidJob::new("every", error)),
        (Some(_), Some(_)) => Err(InvalidJob::new(
            "every",
            "give either `cron` or `every`, not both",
        )),
        (None, None) => Err(InvalidJob::new(
            "cron",
            "give a schedule: `cron` (an expression such as \"0 9 * * 1-5\") or `every` (an \
             interval such as \"30m\")",
        )),
    }
}

/// A conversation that people read (`telegram:…`, `discord:…`, `slack:…` or `portal:…`).
pub fn validate_target(target: &str) -> Result<ConversationId, ScheduleError> {
    let target = target.trim();
    let receivers = || {
        crate::conversation_id::Platform::ALL
            .into_iter()
            .filter(|platform| platform.receives_messages())
            .map(|platform| platform.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match ConversationId::parse(target) {
        Ok(id) if id.platform().receives_messages() => Ok(id),
        Ok(_) => Err(ScheduleError::new(format!(
            "`{target}` is not a conversation to deliver to; expected one of {} followed by \
             `:` and the chat, e.g. telegram:12345",
            receivers()
        ))),
        Err(error) => Err(ScheduleError::new(format!(
            "{error}; a delivery target is one of {} followed by `:` and the chat, e.g. \
             telegram:12345",
            receivers()
        ))),
    }
}

/// Refuses a schedule that never fires (e.g. a cron slot that is never inside its active
/// hours).
pub fn check_fires(spec: &JobSpec, fallback: Zone) -> Result<(), ScheduleError> {
    let timing = spec.timing(fallback)?;
    match timing.next_slot(None, chrono::Utc::now()) {
        Some(_) => Ok(()),
        None => Err(ScheduleError::new(format!(
            "{} never falls inside the active hours {}",
            timing.cadence.describe(),
            spec.active_hours.as_deref().unwrap_or("(none)")
        ))),
    }
}

/// The shortest time between two of the job's next runs (a dozen are looked at), if it runs
/// twice at all.
pub fn shortest_gap(spec: &JobSpec, fallback: Zone) -> Result<Option<Duration>, ScheduleError> {
    if let ScheduleSpec::Every(seconds) = spec.schedule {
        return Ok(Some(Duration::from_secs(seconds)));
    }
    let timing = spec.timing(fallback)?;
    let mut previous = None;
    let mut shortest: Option<Duration> = None;
    let now = chrono::Utc::now();
    for _ in 0..12 {
        let Some(slot) = timing.next_slot(previous, previous.unwrap_or(now)) else {
            break;
        };
        if let Some(before) = previous {
            let gap = (slot - before).to_std().unwrap_or_default();
            shortest = Some(shortest.map_or(gap, |shortest| shortest.min(gap)));
        }
        previous = Some(slot);
    }
    Ok(shortest)
}

/// An instant (Unix milliseconds) as RFC 3339 in `zone`, e.g. `2026-03-09T09:00:00+01:00`.
pub fn format_instant(millis: i64, zone: Zone) -> String {
    let instant = chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default();
    match zone {
        Zone::Named(zone) => instant.with_timezone(&zone).to_rfc3339(),
        Zone::Local => instant.with_timezone(&chrono::Local).to_rfc3339(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(schedule: ScheduleSpec) -> JobSpec {
        JobSpec {
            id: "job".to_string(),
            prompt: "say hi".to_string(),
            schedule,
            timezone: Some("UTC".to_string()),
            delivery_target: None,
            active_hours: None,
            timeout_secs: 60,
            enabled: true,
            run_once: false,
        }
    }

    #[test]
    fn the_shortest_gap_is_read_off_the_schedule() {
        let gap = |schedule| shortest_gap(&spec(schedule), Zone::Local).expect("valid");
        assert_eq!(gap(ScheduleSpec::Every(90)), Some(Duration::from_secs(90)));
        assert_eq!(
            gap(ScheduleSpec::Cron("*/2 * * * *".to_string())),
            Some(Duration::from_secs(120))
        );
        // Twice a day, unevenly: the shorter stretch counts.
        assert_eq!(
            gap(ScheduleSpec::Cron("0 9,11 * * *".to_string())),
            Some(Duration::from_secs(2 * 3600))
        );
    }
}
