//! `web_fetch`: a URL to readable text, through the daemon's guarded fetcher (`crate::web`).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::web::Web;

/// Characters of text returned when the model asks for no particular amount, and at most.
const DEFAULT_CHARS: usize = 20_000;
const MAX_CHARS: usize = 100_000;
/// A URL longer than this is refused before any request.
const MAX_URL_LENGTH: usize = 4_096;

pub struct WebFetch {
    web: Arc<Web>,
}

impl WebFetch {
    pub fn new(web: Arc<Web>) -> Self {
        Self { web }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arguments {
    url: String,
    #[serde(default)]
    offset: Option<usize>,
    #[serde(default)]
    max_chars: Option<usize>,
}

impl<Effect: Send + 'static> Tool<Effect> for WebFetch {
    type Arguments = Arguments;
    const NAME: &'static str = "web_fetch";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/web_fetch.md.j2");

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "url": {"type": "string", "description": "An http:// or https:// URL."},
                "offset": {"type": "integer", "minimum": 0, "description": "Characters of the text to skip, to read on where an earlier call stopped. Default 0."},
                "max_chars": {"type": "integer", "minimum": 1, "maximum": MAX_CHARS, "description": "Characters of text to return. Default 20000."}
            },
            "required": ["url"]
        })
    }

    async fn call(&self, call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        if arguments.url.len() > MAX_URL_LENGTH {
            return ToolOutput::error(format!(
                "the URL is {} characters long; at most {MAX_URL_LENGTH} are accepted",
                arguments.url.len()
            ));
        }
        let max_chars = arguments
            .max_chars
            .unwrap_or(DEFAULT_CHARS)
            .clamp(1, MAX_CHARS);
        let offset = arguments.offset.unwrap_or(0);
        let page = match self.web.fetch(&arguments.url).await {
            Ok(page) => page,
            Err(error) => {
                tracing::info!(agent_id = call.agent_id, url = %arguments.url, %error, "web_fetch refused or failed");
                return ToolOutput::error(error.to_string());
            }
        };
        let total = page.text.chars().count();
        let text: String = page.text.chars().skip(offset).take(max_chars).collect();
        let end = offset.saturating_add(text.chars().count()).min(total);
        let mut output = format!(
            "URL: {}\nStatus: {}\nContent-Type: {}\n",
            page.url,
            page.status,
            if page.content_type.is_empty() {
                "(none)"
            } else {
                &page.content_type
            }
        );
        if end < total {
            output.push_str(&format!(
                "Showing characters {offset}..{end} of {total}; call again with offset {end} \
                 for more.\n"
            ));
        } else if offset > 0 {
            output.push_str(&format!("Showing characters {offset}..{end} of {total}.\n"));
        }
        if page.truncated {
            output.push_str("The page was longer than the fetch limit and was cut.\n");
        }
        output.push('\n');
        output.push_str(&text);
        ToolOutput::success(output)
    }
}
