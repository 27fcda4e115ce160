//! `cron`: a channel creates, lists and deletes the agent's scheduled jobs. The jobs
//! themselves live behind `CronJobs`, which the cron service implements; a job created here
//! delivers to the conversation that asked unless it names another.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::conversation_id::{ConversationId, Platform};
use crate::schedule::JobDraft;

/// Why the jobs could not do what the tool asked; the message is for the model.
pub type JobsError = Box<dyn std::error::Error + Send + Sync>;

/// The agent's scheduled jobs, as the `cron` tool uses them. Each call returns text for the
/// model.
#[async_trait::async_trait]
pub trait CronJobs: Send + Sync {
    /// Validates and stores a job made from a chat, delivering to `target` unless the draft
    /// names another conversation; returns a line describing it. Such a job may not run
    /// more often than the configured minimum interval.
    async fn create(
        &self,
        draft: JobDraft,
        target: Option<&ConversationId>,
    ) -> Result<String, JobsError>;
    /// A line per job; only the jobs delivering to `scope` when one is given.
    async fn list(&self, scope: Option<&ConversationId>) -> Result<Vec<String>, JobsError>;
    /// Deletes a job; only one delivering to `scope` when one is given.
    async fn delete(&self, id: &str, scope: Option<&ConversationId>) -> Result<(), JobsError>;
}

pub struct Cron {
    jobs: Arc<dyn CronJobs>,
}

impl Cron {
    pub fn new(jobs: Arc<dyn CronJobs>) -> Self {
        Self { jobs }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    List,
    Delete,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arguments {
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

impl<Effect: Send + 'static> Tool<Effect> for Cron {
    type Arguments = Arguments;
    const NAME: &'static str = "cron";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/cron.md.j2");
    const ACTS: bool = true;

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

    async fn call(&self, call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        // The owner manages every job; anyone else (should the tool ever be theirs) only
        // the jobs of the conversation they are in.
        let scope = (!call.standing.authority.may_act()).then_some(call.conversation);
        match arguments.action {
            Action::List => match self.jobs.list(scope).await {
                Ok(jobs) if jobs.is_empty() => ToolOutput::success("there are no scheduled jobs"),
                Ok(jobs) => ToolOutput::success(
                    jobs.iter()
                        .map(|job| format!("- {job}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                Err(error) => ToolOutput::error(error.to_string()),
            },
            Action::Delete => {
                let Some(id) = arguments.id.filter(|id| !id.trim().is_empty()) else {
                    return ToolOutput::error("`delete` needs the job's `id`");
                };
                let id = id.trim();
                match self.jobs.delete(id, scope).await {
                    Ok(()) => {
                        ToolOutput::success(format!("deleted job `{id}`; it will not fire again"))
                    }
                    Err(error) => ToolOutput::error(error.to_string()),
                }
            }
            Action::Create => {
                let Some(prompt) = arguments.prompt else {
                    return ToolOutput::error(
                        "`create` needs a `prompt`: what to do each time the job fires",
                    );
                };
                // A scheduled run's own conversation has nobody to deliver to.
                let origin =
                    (call.conversation.platform() != Platform::Cron).then_some(call.conversation);
                if arguments.delivery_target.is_none() && origin.is_none() {
                    return ToolOutput::error(
                        "this scheduled run has no conversation of its own to deliver to; give \
                         `delivery_target`",
                    );
                }
                let elsewhere = arguments
                    .delivery_target
                    .as_deref()
                    .is_some_and(|target| target.trim() != call.conversation.as_str());
                if elsewhere && !call.standing.authority.may_act() {
                    return ToolOutput::error(
                        "a job made here delivers here; only the owner may send one to another \
                         conversation",
                    );
                }
                let draft = JobDraft {
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
                };
                match self.jobs.create(draft, origin).await {
                    Ok(job) => ToolOutput::success(format!("created {job}")),
                    Err(error) => ToolOutput::error(error.to_string()),
                }
            }
        }
    }
}
