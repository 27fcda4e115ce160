//! One agent at run time. `AgentRuntime` (`runtime`) is the agent as the rest of the daemon
//! sees it: opened from its config, it stores inbound messages and hands each to the channel
//! of its conversation, and answers the API's questions. Inside, `Agent` is what the agent's
//! processes (channels, branches, workers, the cortex) share: each field a handle with one
//! job, and each process takes the handles it needs.

mod attachments;
mod branch;
mod capture;
mod channel;
mod compactor;
mod cortex;
mod identity;
mod processes;
mod runtime;
mod stores;
mod tool_loop;
mod worker;

use std::sync::Arc;

use crate::config::AgentConfig;
use crate::event::ProcessType;
use crate::message::Outbox;
use crate::metrics::Metrics;
use crate::sandbox::Sandbox;
use crate::supervision::Lifecycle;
use crate::tools::Toolbox;
use cortex::CortexState;
use identity::Identity;
use processes::ProcessRegistry;
use stores::Stores;
use tool_loop::ToolLoop;

pub use cortex::CortexSnapshot;
pub use processes::ProcessSummary;
pub use runtime::{
    AgentError, AgentLinks, AgentRuntime, AgentStatus, RouteOutcome, SharedServices,
};

/// What the processes of one agent share.
pub(crate) struct Agent {
    /// The agent's id and settings (routing, limits, coalescing), from the config.
    pub config: AgentConfig,
    /// SOUL.md, IDENTITY.md and ROLE.md, read when the agent opened.
    pub identity: Identity,
    /// The model and everything a tool loop runs with: prompts, usage, redaction, events.
    pub tool_loop: ToolLoop,
    /// The SQLite-backed stores: conversations, memories, usage, worker runs.
    pub stores: Stores,
    /// The tools of each process kind, definitions rendered once.
    pub tools: Toolbox,
    /// Running branches and workers.
    pub processes: ProcessRegistry,
    /// Where answers go; the agent never knows which platform a conversation is on.
    pub outbox: Arc<dyn Outbox>,
    /// What the cortex watches and did; read by the status block and the API.
    pub cortex: Arc<CortexState>,
    /// Where workers' shell commands run (shared by every agent).
    pub sandbox: Arc<Sandbox>,
    /// The agent's workspace: what workers act in, and where attachments are kept.
    pub workspace: Arc<crate::sandbox::Workspace>,
    /// The limits on files received and sent (`[media]`).
    pub media: crate::config::MediaConfig,
    /// Every task of the agent, and the switches that stop them.
    pub lifecycle: Lifecycle,
    /// The daemon's counters (turns and their latency).
    pub metrics: Metrics,
    /// Conversations whose memory capture pass is running.
    pub captures: Arc<capture::Captures>,
    /// The skills it sees (shared and its own), rescanned when their folders change.
    pub skills: crate::skills::Skills,
}

/// Characters of the skills block in a prompt at most, and of each description in it; the
/// skills beyond it are named only.
const SKILLS_BUDGET: usize = 4_000;
const SKILL_DESCRIPTION_SHOWN: usize = 240;

impl Agent {
    /// The skills block of a channel's (`can_read = false`: it delegates) or a worker's
    /// prompt, or nothing without skills. Read at every turn, so a skill added while the
    /// daemon runs is offered on the next one.
    pub fn skills_prompt(&self, can_read: bool) -> String {
        let skills = self.skills.list();
        if skills.is_empty() {
            return String::new();
        }
        let mut used = 0;
        let mut listed = Vec::new();
        let mut omitted_names = Vec::new();
        for skill in skills.iter() {
            let description: String = skill
                .description
                .chars()
                .take(SKILL_DESCRIPTION_SHOWN)
                .collect();
            let cost = skill.name.len() + description.len() + 8;
            if omitted_names.is_empty() && used + cost <= SKILLS_BUDGET {
                used += cost;
                listed
                    .push(minijinja::context! { name => &skill.name, description => description });
            } else {
                omitted_names.push(skill.name.clone());
            }
        }
        let omitted = omitted_names.len();
        // The names left out are listed while they fit; `read_skill` lists them all.
        let mut names_used = 0;
        omitted_names.retain(|name| {
            names_used += name.len() + 2;
            names_used <= SKILLS_BUDGET / 4
        });
        self.tool_loop.render(
            "skills",
            minijinja::context! { can_read, skills => listed, omitted, omitted_names },
        )
    }
}

/// Why a branch or worker could not start; the model reads it.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(
        "{limit} {} are already running in this conversation (the limit); wait for one to \
         finish or cancel one",
        plural(*kind)
    )]
    AtLimit { kind: ProcessType, limit: usize },
    #[error(
        "{limit} {} are already running for this agent across all conversations (the limit); \
         wait for one to finish",
        plural(*kind)
    )]
    AgentAtLimit { kind: ProcessType, limit: usize },
}

fn plural(kind: ProcessType) -> &'static str {
    match kind {
        ProcessType::Branch => "branches",
        ProcessType::Worker => "workers",
        ProcessType::Channel => "channels",
        ProcessType::Compactor => "compactors",
        ProcessType::Cortex => "cortexes",
        ProcessType::Capture => "captures",
    }
}
