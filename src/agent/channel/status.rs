//! The status block of a channel's prompt: what runs in the background, what finished since
//! the model last looked, and what is degraded (tools and models that keep failing).

use std::time::Duration;

use tokio::time::Instant;

use super::Channel;
use super::inbox::{ProcessReport, excerpt};
use crate::agent::Agent;
use crate::conversation::StoredMessage;
use crate::message::Standing;

/// Finished results listed in the status block at most, and for how long.
const COMPLETED_SHOWN: usize = 10;
const COMPLETED_KEPT: Duration = Duration::from_secs(3600);
/// Running processes listed in the status block at most.
const RUNNING_SHOWN: usize = 10;
/// Characters of a description or result shown in the status block.
const STATUS_EXCERPT: usize = 300;

/// Lines about tools and models that keep failing (the cortex's breakers and the model
/// layer's), for the status block and `GET /api/status`.
pub fn degraded(agent: &Agent) -> Vec<String> {
    let mut warnings = agent.cortex.tool_warnings();
    warnings.extend(
        agent
            .tool_loop
            .llm
            .open_breakers()
            .into_iter()
            .map(|breaker| breaker.describe()),
    );
    warnings
}

impl Channel {
    /// Keeps results that get no turn of their own, to be listed in the status block.
    pub(super) fn note_completed(&mut self, reports: Vec<ProcessReport>) {
        if reports.is_empty() {
            return;
        }
        let now = Instant::now();
        for report in reports {
            self.completed.push_back((now, report.result.describe()));
        }
        while self.completed.len() > COMPLETED_SHOWN {
            self.completed.pop_front();
        }
    }

    /// Who is speaking in a turn on `standing`: each sender of `batch` with their role, or
    /// for a turn of background results, on whose behalf the work was done.
    pub(super) fn speakers(&self, batch: &[StoredMessage], standing: Standing) -> String {
        let mut speakers: Vec<minijinja::Value> = Vec::new();
        let mut seen = Vec::new();
        for message in batch {
            let key = (message.sender.as_str(), message.sender_id.as_deref());
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            speakers.push(minijinja::context! {
                name => &message.sender,
                id => &message.sender_id,
                role => message.authority.as_str(),
            });
        }
        self.agent.tool_loop.render(
            "speakers",
            minijinja::context! {
                speakers => speakers,
                role => standing.authority.as_str(),
                may_act => standing.authority.may_act(),
            },
        )
    }

    /// The system prompt with the status block: running processes and results since the
    /// last turn. Rendered only when there is something to show; the listed results are
    /// then shown once.
    pub(super) fn system_with_status(&mut self) -> String {
        let now = Instant::now();
        self.completed
            .retain(|(at, _)| now.duration_since(*at) < COMPLETED_KEPT);
        let running: Vec<_> = self
            .agent
            .processes
            .list(Some(self.conversation.as_str()))
            .into_iter()
            .rev()
            .take(RUNNING_SHOWN)
            .map(|process| {
                minijinja::context! {
                    kind => process.kind.as_str(),
                    id => process.process_id.to_string(),
                    age => format!("{}s", process.age_secs),
                    description => excerpt(&process.description, STATUS_EXCERPT),
                    status => excerpt(&process.status, STATUS_EXCERPT),
                }
            })
            .collect();
        let completed: Vec<String> = self
            .completed
            .drain(..)
            .map(|(_, line)| excerpt(&line, STATUS_EXCERPT))
            .collect();
        let warnings = degraded(&self.agent);
        if running.is_empty() && completed.is_empty() && warnings.is_empty() {
            return self.system_prompt.clone();
        }
        let status = self.agent.tool_loop.render(
            "status",
            minijinja::context! { running => running, completed => completed, warnings => warnings },
        );
        if status.is_empty() {
            return self.system_prompt.clone();
        }
        format!("{}\n\n{status}", self.system_prompt)
    }
}
