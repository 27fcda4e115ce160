//! Tools the LLM can call. A tool is one unit: its name, its description (a template under
//! `prompts/tools/`), its parameters and what it does are declared together in its file under
//! `tools/`. `ToolSet` is the one registry: it renders each process kind's definitions once
//! and dispatches calls; the tools of the agent's MCP servers join the branch's and the
//! worker's sets as their lists change (`tools/mcp.rs`). Tools that ask something of the process calling them (answer, start
//! a worker, finish) return that process kind's typed effect. A tool error is a result the
//! model reads and can recover from, never a failed turn.

mod branch;
mod cancel;
mod channel_recall;
mod cron;
mod file_edit;
mod file_list;
mod file_read;
mod file_write;
mod mcp;
mod memory_delete;
mod memory_recall;
mod memory_save;
mod react;
mod read_skill;
mod reply;
mod route;
mod schema;
mod send_agent_message;
mod send_file;
mod set_status;
mod shell;
mod skip;
mod spawn_worker;
mod web_fetch;
mod web_search;

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use rig::completion::ToolDefinition;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::conversation::ConversationStore;
use crate::conversation_id::ConversationId;
use crate::event::{EventBus, ProcessId};
use crate::mcp::McpTools;
use crate::memory::MemoryStore;
use crate::message::{Authority, Standing};
use crate::prompts::{PromptError, Prompts};
use crate::sandbox::{Redactor, Sandbox, Workspace};
use crate::skills::Skills;
use crate::web::Web;
pub use cron::{CronJobs, JobsError};
pub use schema::{InvalidSchema, check_parameters};
pub use send_agent_message::{AgentAnswer, AgentMessage, AgentMessageError, AgentMessenger};
pub use send_file::download_link;
pub use set_status::WorkerOutcome;
pub use spawn_worker::WorkerRequest;

/// One tool. `NAME` is what the model calls, `DESCRIPTION` the MiniJinja source of what it
/// reads about the tool, `parameters` the JSON schema of `Arguments`. `call` runs it for the
/// process and conversation in `call`.
pub trait Tool<Effect>: Send + Sync + 'static {
    /// The arguments object, read from the model's JSON (or from a string holding it, which
    /// some providers send).
    type Arguments: DeserializeOwned + Send;
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    /// The tool acts (starts work, schedules, changes memories or files) rather than only
    /// talking, recalling or thinking: only an owner's turn is offered it or may call it.
    const ACTS: bool = false;

    /// JSON schema of `Arguments`.
    fn parameters(&self) -> Value;

    fn call(
        &self,
        call: &ToolCall<'_>,
        arguments: Self::Arguments,
    ) -> impl Future<Output = ToolOutput<Effect>> + Send;
}

/// Who is calling a tool: the agent, the conversation, the process, and on whose authority.
#[derive(Debug, Clone, Copy)]
pub struct ToolCall<'a> {
    pub agent_id: &'a str,
    pub conversation: &'a ConversationId,
    pub process_id: &'a ProcessId,
    /// On whose behalf the process works.
    pub standing: Standing,
}

/// What a tool gives back: the text the model reads, and an effect for the calling process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput<Effect> {
    pub content: String,
    pub is_error: bool,
    pub effect: Option<Effect>,
}

impl<Effect> ToolOutput<Effect> {
    pub fn success(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: false,
            effect: None,
        }
    }

    pub fn error(content: impl Into<String>) -> Self {
        Self {
            content: format!("error: {}", content.into()),
            is_error: true,
            effect: None,
        }
    }

    pub fn with_effect(mut self, effect: Effect) -> Self {
        self.effect = Some(effect);
        self
    }

    /// A result that is only an effect; the process fills in the text.
    pub fn effect(effect: Effect) -> Self {
        Self::success(String::new()).with_effect(effect)
    }
}

/// What a channel's tools ask of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEffect {
    /// Answer the conversation with this text; the turn ends.
    Reply {
        content: String,
    },
    /// End the turn without answering.
    Skip {
        reason: String,
    },
    /// Fork the conversation into a branch that thinks about `prompt`.
    Branch {
        prompt: String,
    },
    SpawnWorker(WorkerRequest),
    /// A follow-up for a running interactive worker.
    Route {
        worker_id: String,
        message: String,
    },
    Cancel {
        process_id: String,
    },
    /// Put this emoji on the message the turn answers.
    React {
        emoji: String,
    },
}

/// What a branch's tools ask of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchEffect {
    SpawnWorker(WorkerRequest),
}

/// What a worker's tools ask of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerEffect {
    /// Progress to show, or with an outcome, the worker's end.
    Status {
        message: String,
        outcome: Option<WorkerOutcome>,
    },
}

impl From<WorkerRequest> for ChannelEffect {
    fn from(request: WorkerRequest) -> Self {
        ChannelEffect::SpawnWorker(request)
    }
}

impl From<WorkerRequest> for BranchEffect {
    fn from(request: WorkerRequest) -> Self {
        BranchEffect::SpawnWorker(request)
    }
}

/// A tool behind the registry's uniform interface: arguments still JSON.
trait Registered<Effect>: Send + Sync {
    fn name(&self) -> &'static str;
    fn acts(&self) -> bool;
    fn description(&self) -> &'static str;
    fn parameters(&self) -> Value;
    fn call<'a>(
        &'a self,
        call: &'a ToolCall<'a>,
        arguments: Value,
    ) -> BoxFuture<'a, ToolOutput<Effect>>;
}

impl<Effect: Send + 'static, T: Tool<Effect>> Registered<Effect> for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn acts(&self) -> bool {
        T::ACTS
    }

    fn description(&self) -> &'static str {
        T::DESCRIPTION
    }

    fn parameters(&self) -> Value {
        Tool::parameters(self)
    }

    fn call<'a>(
        &'a self,
        call: &'a ToolCall<'a>,
        arguments: Value,
    ) -> BoxFuture<'a, ToolOutput<Effect>> {
        match parse_arguments::<T::Arguments, Effect>(T::NAME, arguments) {
            Ok(arguments) => Box::pin(Tool::call(self, call, arguments)),
            Err(output) => Box::pin(std::future::ready(output)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ToolSetError {
    #[error(transparent)]
    Description(#[from] PromptError),
    #[error("tool `{0}` has an empty description")]
    EmptyDescription(&'static str),
    #[error("tool `{0}` is registered twice")]
    Duplicate(&'static str),
    #[error("tool `{tool}`: {source}")]
    Schema {
        tool: &'static str,
        source: schema::InvalidSchema,
    },
}

/// The tools of one process kind, with the definitions the model sees rendered once: all of
/// them for an owner's turn, those that do not act for anyone else's.
pub struct ToolSet<Effect> {
    tools: Vec<Box<dyn Registered<Effect>>>,
    definitions: Arc<[ToolDefinition]>,
    talking: Arc<[ToolDefinition]>,
    /// The tools of the agent's MCP servers, when this kind gets them.
    mcp: Option<mcp::McpSource>,
}

impl<Effect: Send + 'static> ToolSet<Effect> {
    fn new(
        prompts: &Prompts,
        tools: Vec<Box<dyn Registered<Effect>>>,
    ) -> Result<Self, ToolSetError> {
        let mut definitions = Vec::with_capacity(tools.len());
        for tool in &tools {
            if definitions
                .iter()
                .any(|known: &ToolDefinition| known.name == tool.name())
            {
                return Err(ToolSetError::Duplicate(tool.name()));
            }
            let description = prompts.render_source(
                &format!("tools/{}", tool.name()),
                tool.description(),
                minijinja::context! {},
            )?;
            if description.is_empty() {
                return Err(ToolSetError::EmptyDescription(tool.name()));
            }
            let parameters = tool.parameters();
            schema::check_parameters(&parameters).map_err(|source| ToolSetError::Schema {
                tool: tool.name(),
                source,
            })?;
            definitions.push(ToolDefinition {
                name: tool.name().to_string(),
                description,
                parameters,
            });
        }
        let talking: Vec<ToolDefinition> = tools
            .iter()
            .zip(&definitions)
            .filter(|(tool, _)| !tool.acts())
            .map(|(_, definition)| definition.clone())
            .collect();
        Ok(Self {
            tools,
            definitions: definitions.into(),
            talking: talking.into(),
            mcp: None,
        })
    }

    /// Adds the tools of the agent's MCP servers (only the read-only ones if `read_only`),
    /// read at each use: a reload may add or remove servers while the agent runs.
    fn with_mcp(mut self, tools: &McpTools, read_only: bool, prompts: &Arc<Prompts>) -> Self {
        self.mcp = Some(mcp::McpSource::new(
            tools.clone(),
            read_only,
            prompts.clone(),
        ));
        self
    }

    /// Whether the definitions can change while a process runs (an MCP server's tool list
    /// changed), so a loop should take them again before each call.
    pub fn changes(&self) -> bool {
        self.mcp.is_some()
    }

    /// The definitions offered to a turn on `authority`. Shared, so a request takes them
    /// without copying every JSON schema.
    pub fn definitions(&self, authority: Authority) -> Arc<[ToolDefinition]> {
        if let Some(mcp) = &self.mcp {
            return mcp.definitions(&self.definitions, &self.talking, authority.may_act());
        }
        if authority.may_act() {
            self.definitions.clone()
        } else {
            self.talking.clone()
        }
    }

    /// Runs the tool the model named; an unknown name, or a tool that acts called on a turn
    /// that may not act, is an error the model reads.
    pub async fn call(
        &self,
        call: &ToolCall<'_>,
        name: &str,
        arguments: Value,
    ) -> ToolOutput<Effect> {
        match self.tools.iter().find(|tool| tool.name() == name) {
            Some(tool) if tool.acts() && !call.standing.authority.may_act() => {
                tracing::warn!(
                    tool = name,
                    authority = call.standing.authority.as_str(),
                    "a tool that acts was refused to a turn that may not act"
                );
                ToolOutput::error(format!(
                    "`{name}` is not available: only the owner can have you do that. Tell the \
                     person you cannot."
                ))
            }
            Some(tool) => tool.call(call, arguments).await,
            None => match self
                .mcp
                .as_ref()
                .and_then(|mcp| mcp.find(name).map(|tool| (mcp, tool)))
            {
                Some((_, tool)) if !tool.read_only && !call.standing.authority.may_act() => {
                    tracing::warn!(
                        tool = name,
                        authority = call.standing.authority.as_str(),
                        "an MCP tool that acts was refused to a turn that may not act"
                    );
                    ToolOutput::error(format!(
                        "`{name}` is not available: only the owner can have you do that. \
                         Tell the person you cannot."
                    ))
                }
                Some((mcp, _)) => {
                    let (content, is_error) = mcp.call(name, arguments).await;
                    if is_error {
                        ToolOutput::error(content)
                    } else {
                        ToolOutput::success(content)
                    }
                }
                None => ToolOutput::error(format!(
                    "there is no tool named `{name}`; the tools you have are: {}",
                    self.tools
                        .iter()
                        .map(|tool| tool.name().to_string())
                        .chain(self.mcp.iter().flat_map(|mcp| mcp.names()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
        }
    }
}

/// What the tools of an agent act on.
pub struct ToolServices {
    pub conversations: ConversationStore,
    pub memory: Arc<MemoryStore>,
    pub workspace: Arc<Workspace>,
    /// Where shell commands run; without a working one the shell is not offered.
    pub sandbox: Arc<Sandbox>,
    /// Shell output lines are published here as they arrive, secrets redacted.
    pub events: EventBus,
    pub redactor: Redactor,
    /// The agent's scheduled jobs.
    pub cron: Arc<dyn CronJobs>,
    /// The daemon's guarded fetcher and search backend.
    pub web: Arc<Web>,
    /// The agent's skills, for `read_skill`.
    pub skills: Skills,
    /// The tools of the MCP servers enabled for the agent.
    pub mcp: McpTools,
    /// Delivers `send_agent_message`, offered when `links` names an agent.
    pub messenger: Arc<dyn AgentMessenger>,
    pub links: Vec<String>,
    /// Where `send_file` sends files.
    pub outbox: Arc<dyn crate::message::Outbox>,
    /// The largest file sent (`[media] max_file_mb`).
    pub max_file_bytes: u64,
}

/// The tools of each process kind of one agent, built once when the agent opens.
pub struct Toolbox {
    /// A channel answers, delegates and manages what it delegated. It has no tool that does
    /// work itself, so it never blocks on work.
    pub channel: ToolSet<ChannelEffect>,
    /// A branch thinks: it recalls the conversation and memories, saves what is worth
    /// keeping, and may start workers.
    pub branch: ToolSet<BranchEffect>,
    /// A worker acts in the workspace and reports with `set_status`.
    pub worker: ToolSet<WorkerEffect>,
    /// The agent's MCP servers, whose names the prompts list (read at each render: a reload
    /// may change them).
    pub mcp: McpTools,
}

impl Toolbox {
    pub fn new(prompts: &Arc<Prompts>, services: &ToolServices) -> Result<Self, ToolSetError> {
        let workspace = &services.workspace;
        Ok(Self {
            channel: ToolSet::new(prompts, {
                let mut tools: Vec<Box<dyn Registered<ChannelEffect>>> = vec![
                    Box::new(reply::Reply),
                    Box::new(skip::Skip),
                    Box::new(branch::Branch),
                    Box::new(spawn_worker::SpawnWorker),
                    Box::new(route::Route),
                    Box::new(cancel::Cancel),
                    Box::new(cron::Cron::new(services.cron.clone())),
                    Box::new(react::React),
                    Box::new(send_file::SendFile::new(
                        workspace.clone(),
                        services.outbox.clone(),
                        services.max_file_bytes,
                    )),
                ];
                if !services.links.is_empty() {
                    tools.push(Box::new(send_agent_message::SendAgentMessage::new(
                        services.messenger.clone(),
                        services.links.clone(),
                    )));
                }
                tools
            })?,
            branch: ToolSet::new(
                prompts,
                vec![
                    Box::new(memory_save::MemorySave::new(services.memory.clone()))
                        as Box<dyn Registered<BranchEffect>>,
                    Box::new(memory_recall::MemoryRecall::new(services.memory.clone())),
                    Box::new(memory_delete::MemoryDelete::new(services.memory.clone())),
                    Box::new(channel_recall::ChannelRecall::new(
                        services.conversations.clone(),
                        services.memory.embedder().clone(),
                    )),
                    Box::new(spawn_worker::SpawnWorker),
                ]
                .into_iter()
                .chain(web_tools(&services.web))
                .chain([
                    Box::new(read_skill::ReadSkill::new(services.skills.clone()))
                        as Box<dyn Registered<BranchEffect>>,
                ])
                .collect(),
            )?
            .with_mcp(&services.mcp, true, prompts),
            worker: ToolSet::new(prompts, {
                let mut tools: Vec<Box<dyn Registered<WorkerEffect>>> = Vec::new();
                if services.sandbox.shell_off().is_none() {
                    tools.push(Box::new(shell::Shell::new(
                        workspace.clone(),
                        services.sandbox.clone(),
                        services.events.clone(),
                        services.redactor.clone(),
                    )));
                }
                tools.extend([
                    Box::new(file_read::FileRead::new(workspace.clone()))
                        as Box<dyn Registered<WorkerEffect>>,
                    Box::new(file_write::FileWrite::new(workspace.clone())),
                    Box::new(file_edit::FileEdit::new(workspace.clone())),
                    Box::new(file_list::FileList::new(workspace.clone())),
                    // A worker hands a file it made to its conversation.
                    Box::new(send_file::SendFile::new(
                        workspace.clone(),
                        services.outbox.clone(),
                        services.max_file_bytes,
                    )),
                    Box::new(set_status::SetStatus),
                ]);
                tools.extend(web_tools(&services.web));
                tools.push(Box::new(read_skill::ReadSkill::new(
                    services.skills.clone(),
                )));
                tools
            })?
            .with_mcp(&services.mcp, false, prompts),
            mcp: services.mcp.clone(),
        })
    }
}

/// `web_fetch`, and `web_search` when a backend is configured. They only read (a GET the
/// guard keeps outside the network, or a search), so they do not act: a guest's branch may
/// look something up, and what it could carry out in a URL is what that turn may already see.
fn web_tools<Effect: Send + 'static>(web: &Arc<Web>) -> Vec<Box<dyn Registered<Effect>>> {
    let mut tools: Vec<Box<dyn Registered<Effect>>> =
        vec![Box::new(web_fetch::WebFetch::new(web.clone()))];
    if web.can_search() {
        tools.push(Box::new(web_search::WebSearch::new(web.clone())));
    }
    tools
}

/// Reads a tool's arguments, accepting an object or a string that holds one (some providers
/// double-encode). The error is written for the model to correct its call.
fn parse_arguments<Arguments: DeserializeOwned, Effect>(
    tool: &str,
    arguments: Value,
) -> Result<Arguments, ToolOutput<Effect>> {
    let arguments = match arguments {
        Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Value::Null => Value::Object(Default::default()),
        other => other,
    };
    serde_json::from_value(arguments)
        .map_err(|error| ToolOutput::error(format!("invalid arguments for `{tool}`: {error}")))
}

#[cfg(test)]
mod tests;
