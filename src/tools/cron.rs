//! `cron`: a channel creates, lists and deletes scheduled jobs. The tool only reads the
//! request; the channel applies it with `apply`, which knows the conversation (the default
//! delivery target).

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolEffect, ToolOutput, parse_arguments};
use crate::cron::{CronService, JobDraft, JobRecord, JobSource, is_cron_conversation};

pub struct Cron;

/// What the model asked of the `cron` tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronRequest {
    Create(Box<JobDraft>),
    List,
    Delete { id: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    Create,
    List,
    Delete,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Arguments {
    action: Action,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    cron: Option<String>,
    #[serde(default)]
    every: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    delivery_target: Option<String>,
    #[serde(default)]
    active_hours: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    run_once: Option<bool>,
}

impl Tool for Cron {
    fn name(&self) -> &'static str {
        "cron"
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": ["create", "list", "delete"]},
                "id": {"type": "string", "description": "Job id, [a-z0-9_-]. Required for delete; optional for create."},
                "prompt": {"type": "string", "description": "create: what to do each time the job fires, written as a complete instruction."},
                "cron": {"type": "string", "description": "create: a cron expression, e.g. \"0 9 * * 1-5\" (minute hour day month weekday)."},
                "every": {"type": "string", "description": "create: an interval instead of cron, e.g. \"30m\", \"2h\"."},
                "timezone": {"type": "string", "description": "create: IANA zone for the schedule, e.g. Europe/Berlin. Default: the agent's."},
                "delivery_target": {"type": "string", "description": "create: conversation that receives the outcome. Default: this conversation."},
                "active_hours": {"type": "string", "description": "create: only fire within HH:MM-HH:MM, e.g. 09:00-18:00 or 22:00-06:00."},
                "timeout": {"type": "string", "description": "create: longest a run may take, e.g. \"5m\"."},
                "run_once": {"type": "boolean", "description": "create: fire once at the first slot, then disable."}
            },
            "required": ["action"]
        })
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, ToolOutput> {
        Box::pin(async move {
            let arguments = match parse_arguments::<Arguments>(self.name(), arguments) {
                Ok(arguments) => arguments,
                Err(output) => return output,
            };
            let request = match arguments.action {
                Action::List => CronRequest::List,
                Action::Delete => match arguments.id {
                    Some(id) if !id.trim().is_empty() => CronRequest::Delete {
                        id: id.trim().to_string(),
                    },
                    _ => return ToolOutput::error("`delete` needs the job's `id`"),
                },
                Action::Create => {
                    let Some(prompt) = arguments.prompt else {
                        return ToolOutput::error(
                            "`create` needs a `prompt`: what to do each time the job fires",
                        );
                    };
                    CronRequest::Create(Box::new(JobDraft {
                        id: arguments.id,
                        prompt,
                        cron: arguments.cron,
                        every: arguments.every,
                        timezone: arguments.timezone,
                        delivery_target: arguments.delivery_target,
                        active_hours: arguments.active_hours,
                        timeout: arguments.timeout,
                        enabled: None,
                        run_once: arguments.run_once,
                    }))
                }
            };
            ToolOutput::effect(ToolEffect::Cron(request))
        })
    }
}

/// Carries out a `cron` request for the channel of `conversation_id`.
pub async fn apply(
    service: Arc<CronService>,
    request: CronRequest,
    conversation_id: String,
) -> ToolOutput {
    match request {
        CronRequest::Create(draft) => {
            // A scheduled run's own conversation has nobody to deliver to.
            let default_target =
                (!is_cron_conversation(&conversation_id)).then_some(conversation_id.as_str());
            if draft.delivery_target.is_none() && default_target.is_none() {
                return ToolOutput::error(
                    "this scheduled run has no conversation of its own to deliver to; give \
                     `delivery_target`",
                );
            }
            match service
                .create(*draft, JobSource::Tool, default_target)
                .await
            {
                Ok(job) => ToolOutput::success(format!("created {}", describe(&service, &job))),
                Err(error) => ToolOutput::error(error.to_string()),
            }
        }
        CronRequest::List => match service.list().await {
            Ok(jobs) if jobs.is_empty() => ToolOutput::success("there are no scheduled jobs"),
            Ok(jobs) => ToolOutput::success(
                jobs.iter()
                    .map(|job| format!("- {}", describe(&service, job)))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Err(error) => ToolOutput::error(error.to_string()),
        },
        CronRequest::Delete { id } => match service.delete(&id).await {
            Ok(()) => ToolOutput::success(format!("deleted job `{id}`; it will not fire again")),
            Err(error) => ToolOutput::error(error.to_string()),
        },
    }
}

/// One line about a job, for the model.
fn describe(service: &CronService, job: &JobRecord) -> String {
    let spec = job.spec();
    let timing = spec.timing(service.zone());
    let zone = timing
        .as_ref()
        .map(|timing| timing.zone)
        .unwrap_or(service.zone());
    let schedule = timing
        .as_ref()
        .map(|timing| timing.cadence.describe())
        .unwrap_or_else(|error| error.clone());
    let mut line = format!("job `{}` ({schedule}, zone {}", job.id, zone.name());
    if let Some(hours) = &job.active_hours {
        line.push_str(&format!(", active {hours}"));
    }
    line.push(')');
    match &job.delivery_target {
        Some(target) => line.push_str(&format!(", delivers to {target}")),
        None => line.push_str(", delivers nowhere"),
    }
    if job.enabled {
        if let Some(next) = job.next_run_at {
            line.push_str(&format!(
                ", next run {}",
                crate::cron::format_instant(next, zone)
            ));
        }
    } else {
        line.push_str(&format!(
            ", disabled{}",
            job.disabled_reason
                .as_deref()
                .map(|reason| format!(": {reason}"))
                .unwrap_or_default()
        ));
    }
    if job.run_once {
        line.push_str(", runs once");
    }
    line.push_str(&format!(": {}", job.prompt));
    line
}
