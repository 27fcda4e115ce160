//! `web_search`: asks the configured backend (`[web.search]`) and lists title, URL, snippet.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::web::Web;

const DEFAULT_RESULTS: usize = 5;
const MAX_RESULTS: usize = 20;
const MAX_QUERY_LENGTH: usize = 400;

pub struct WebSearch {
    web: Arc<Web>,
}

impl WebSearch {
    pub fn new(web: Arc<Web>) -> Self {
        Self { web }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arguments {
    query: String,
    #[serde(default)]
    max_results: Option<usize>,
}

impl<Effect: Send + 'static> Tool<Effect> for WebSearch {
    type Arguments = Arguments;
    const NAME: &'static str = "web_search";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/web_search.md.j2");

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to search for."},
                "max_results": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "description": "Default 5."}
            },
            "required": ["query"]
        })
    }

    async fn call(&self, call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        let query = arguments.query.trim();
        if query.is_empty() {
            return ToolOutput::error("the query is empty");
        }
        if query.chars().count() > MAX_QUERY_LENGTH {
            return ToolOutput::error(format!(
                "the query is longer than {MAX_QUERY_LENGTH} characters; shorten it"
            ));
        }
        let count = arguments
            .max_results
            .unwrap_or(DEFAULT_RESULTS)
            .clamp(1, MAX_RESULTS);
        match self.web.search(query, count).await {
            Ok(results) if results.is_empty() => ToolOutput::success("No results."),
            Ok(results) => {
                let listed: Vec<Value> = results
                    .iter()
                    .map(|result| {
                        json!({
                            "title": result.title,
                            "url": result.url,
                            "snippet": result.snippet.chars().take(500).collect::<String>(),
                        })
                    })
                    .collect();
                ToolOutput::success(Value::Array(listed).to_string())
            }
            Err(error) => {
                tracing::warn!(agent_id = call.agent_id, %error, "web_search failed");
                ToolOutput::error(error.to_string())
            }
        }
    }
}
