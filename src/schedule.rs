//! Scheduled jobs as data, free of I/O: cron expressions, intervals, time zones and
//! active-hours windows (`timing`), and a job's definition and its validation (`job`). The
//! config, the `cron` tool and the cron service all read jobs through these types.

mod job;
mod timing;

pub use job::{
    CronSettings, JobDraft, JobSpec, ScheduleSpec, check_fires, format_instant, parse_schedule,
    shortest_gap, validate_id, validate_prompt, validate_target,
};
pub use timing::{
    ActiveHours, Cadence, CronExpression, Due, Timing, Zone, due, format_duration, parse_duration,
};

/// A schedule, a duration, a zone or a window that cannot be read; the message says what was
/// wrong and how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(String);

impl ScheduleError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// A job definition that is not valid: the field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidJob {
    pub field: &'static str,
    pub message: String,
}

impl InvalidJob {
    pub fn new(field: &'static str, message: impl ToString) -> Self {
        Self {
            field,
            message: message.to_string(),
        }
    }
}
