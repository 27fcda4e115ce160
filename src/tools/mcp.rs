//! The tools of the agent's MCP servers inside a `ToolSet`: their definitions (rendered
//! with `prompts/tools/mcp_tool.md.j2`, rebuilt only when a tool list changed) and their
//! calls. A tool the server does not mark read-only acts: only an owner's turn gets it, and
//! a branch gets only read-only ones.

use std::sync::{Arc, Mutex};

use rig::completion::ToolDefinition;
use serde_json::Value;

use crate::mcp::{McpTool, McpTools};
use crate::prompts::Prompts;

const DESCRIPTION: &str = include_str!("../../prompts/tools/mcp_tool.md.j2");

/// What the model may call of the agent's MCP servers in one process kind.
pub(super) struct McpSource {
    tools: McpTools,
    /// Only the tools the server marks read-only (branches think, they do not act).
    read_only: bool,
    prompts: Arc<Prompts>,
    built: Mutex<Option<Arc<Built>>>,
}

/// The definitions for one generation of the tool lists.
struct Built {
    generation: u64,
    /// With the process kind's own tools first: all, and those that do not act.
    all: Arc<[ToolDefinition]>,
    talking: Arc<[ToolDefinition]>,
}

impl McpSource {
    pub(super) fn new(tools: McpTools, read_only: bool, prompts: Arc<Prompts>) -> Self {
        Self {
            tools,
            read_only,
            prompts,
            built: Mutex::new(None),
        }
    }

    /// The kind's own definitions followed by the MCP tools', for a turn that may act
    /// (`all`) and one that may not.
    pub(super) fn definitions(
        &self,
        own: &Arc<[ToolDefinition]>,
        own_talking: &Arc<[ToolDefinition]>,
        may_act: bool,
    ) -> Arc<[ToolDefinition]> {
        let built = self.built(own, own_talking);
        if may_act {
            built.all.clone()
        } else {
            built.talking.clone()
        }
    }

    /// The MCP tool offered under `name`, if any.
    pub(super) fn find(&self, name: &str) -> Option<McpTool> {
        self.tools
            .tools()
            .into_iter()
            .find(|tool| tool.name == name && (tool.read_only || !self.read_only))
    }

    /// The names offered, for an error that lists them.
    pub(super) fn names(&self) -> Vec<String> {
        self.tools
            .tools()
            .into_iter()
            .filter(|tool| tool.read_only || !self.read_only)
            .map(|tool| tool.name)
            .collect()
    }

    pub(super) async fn call(&self, name: &str, arguments: Value) -> (String, bool) {
        match self.tools.call(name, arguments).await {
            Ok(output) => (output.text, output.is_error),
            Err(error) => (error.to_string(), true),
        }
    }

    fn built(
        &self,
        own: &Arc<[ToolDefinition]>,
        own_talking: &Arc<[ToolDefinition]>,
    ) -> Arc<Built> {
        let generation = self.tools.generation();
        let cached = match self.built.lock() {
            Ok(built) => built.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if let Some(built) = cached
            && built.generation == generation
        {
            return built;
        }
        let mut all = own.to_vec();
        let mut talking = own_talking.to_vec();
        let offered = self.tools.tools().into_iter();
        for tool in offered.filter(|tool| tool.read_only || !self.read_only) {
            let definition = ToolDefinition {
                name: tool.name.clone(),
                description: self.describe(&tool),
                parameters: tool.parameters.clone(),
            };
            if tool.read_only {
                talking.push(definition.clone());
            }
            all.push(definition);
        }
        let built = Arc::new(Built {
            generation,
            all: all.into(),
            talking: talking.into(),
        });
        match self.built.lock() {
            Ok(mut slot) => *slot = Some(built.clone()),
            Err(poisoned) => *poisoned.into_inner() = Some(built.clone()),
        }
        built
    }

    fn describe(&self, tool: &McpTool) -> String {
        self.prompts
            .render_source(
                "tools/mcp_tool",
                DESCRIPTION,
                minijinja::context! {
                    description => tool.description.trim(),
                    remote_name => &tool.remote_name,
                    server => &tool.server,
                    read_only => tool.read_only,
                },
            )
            .unwrap_or_else(|error| {
                tracing::error!(%error, "cannot render an MCP tool's description");
                tool.description.clone()
            })
    }
}
