//! The compactor: code, not an LLM, that keeps a channel's context inside the model's window.
//! Past 80% it has the oldest ~30% summarised in the background (past 85%, ~50%); past 95% it
//! drops the oldest half at once. Cuts never separate a tool call from its result.

use rig::message::{AssistantContent, Message, UserContent};

use super::tool_loop::ToolLoop;
use crate::conversation::{ContextBody, ContextItem};
use crate::event::ProcessId;
use crate::llm::{LlmError, LlmRequest};

const SUMMARISE_AT: f64 = 0.80;
const SUMMARISE_MORE_AT: f64 = 0.85;
const DROP_AT: f64 = 0.95;
/// Characters of one item shown to the summariser.
const ITEM_EXCERPT: usize = 2000;

/// What the compactor decides after a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Nothing,
    /// Summarise the first `count` items in the background.
    Summarise {
        count: usize,
    },
    /// Replace the first `count` items with a marker now.
    Drop {
        count: usize,
    },
}

/// Decides from the items' token estimates (plus the system prompt's) against the window.
/// `summary_running` suppresses a second summary while one is being written.
pub fn plan(
    items: &[ContextItem],
    system_tokens: usize,
    window: usize,
    summary_running: bool,
) -> Plan {
    let history: usize = items.iter().map(|item| item.tokens).sum();
    let usage = (history + system_tokens) as f64 / window.max(1) as f64;
    let share = if usage > DROP_AT {
        0.5
    } else if summary_running || usage <= SUMMARISE_AT {
        return Plan::Nothing;
    } else if usage > SUMMARISE_MORE_AT {
        0.5
    } else {
        0.3
    };
    let count = cut(items, (history as f64 * share) as usize);
    match count {
        0 => Plan::Nothing,
        count if usage > DROP_AT => Plan::Drop { count },
        // Summarising a single item that is already a summary gains nothing.
        1 if matches!(items[0].body, ContextBody::Summary(_)) => Plan::Nothing,
        count => Plan::Summarise { count },
    }
}

/// How many leading items to drop to free at least `tokens` (the emergency compaction).
pub fn cut_for(items: &[ContextItem], tokens: usize) -> usize {
    cut(items, tokens)
}

/// The number of leading items covering at least `tokens`, moved forward so the first kept
/// item is never a tool result (whose call would be cut away), and never everything.
fn cut(items: &[ContextItem], tokens: usize) -> usize {
    let mut covered = 0;
    let mut count = 0;
    while count < items.len() && covered < tokens.max(1) {
        covered += items[count].tokens;
        count += 1;
    }
    while count < items.len() && is_tool_result(&items[count].body) {
        count += 1;
    }
    if count >= items.len() {
        // Keep at least the newest exchange; find the last safe cut before the end.
        count = (1..items.len())
            .rev()
            .find(|&index| !is_tool_result(&items[index].body))
            .unwrap_or(0);
    }
    count
}

fn is_tool_result(body: &ContextBody) -> bool {
    match body {
        ContextBody::Message(Message::User { content }) => content
            .iter()
            .any(|part| matches!(part, UserContent::ToolResult(_))),
        ContextBody::Message(_) | ContextBody::Summary(_) | ContextBody::Marker(_) => false,
    }
}

/// Writes a summary of `items` with the compactor model.
pub async fn summarise(tool_loop: &ToolLoop, items: &[ContextItem]) -> Result<String, LlmError> {
    let transcript = items
        .iter()
        .map(|item| describe(&item.body))
        .collect::<Vec<_>>()
        .join("\n");
    let history_words = transcript.split_whitespace().count();
    let system = tool_loop.render(
        "compactor",
        minijinja::context! { max_words => (history_words / 4).clamp(60, 800) },
    );
    let request = LlmRequest {
        system,
        messages: vec![Message::user(transcript)],
        tools: std::sync::Arc::from([]),
    };
    let response = tool_loop
        .complete(
            &ProcessId::Compactor(tool_loop.agent_id.clone()),
            &request,
            &mut (),
        )
        .await?;
    Ok(response
        .content
        .iter()
        .filter_map(|content| match content {
            AssistantContent::Text(text) => Some(text.text.as_str()),
            AssistantContent::ToolCall(_)
            | AssistantContent::Reasoning(_)
            | AssistantContent::Image(_) => None,
        })
        .collect::<String>()
        .trim()
        .to_string())
}

/// One item as a line of plain text for the summariser.
fn describe(body: &ContextBody) -> String {
    let text = match body {
        ContextBody::Summary(text) => format!("(earlier summary) {text}"),
        ContextBody::Marker(text) => format!("({text})"),
        ContextBody::Message(Message::System { content }) => format!("system: {content}"),
        ContextBody::Message(Message::User { content }) => content
            .iter()
            .map(|part| match part {
                UserContent::Text(text) => format!("user: {}", text.text),
                UserContent::ToolResult(result) => format!(
                    "tool result: {}",
                    serde_json::to_string(&result.content).unwrap_or_default()
                ),
                _ => "user: (attachment)".to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        ContextBody::Message(Message::Assistant { content, .. }) => content
            .iter()
            .map(|part| match part {
                AssistantContent::Text(text) => format!("assistant: {}", text.text),
                AssistantContent::ToolCall(call) => format!(
                    "assistant called {}({})",
                    call.function.name, call.function.arguments
                ),
                AssistantContent::Reasoning(_) | AssistantContent::Image(_) => String::new(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    };
    if text.len() <= ITEM_EXCERPT {
        return text;
    }
    let mut end = ITEM_EXCERPT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rig::OneOrMany;
    use rig::message::{ToolResult, ToolResultContent};

    fn item(seq: i64, body: ContextBody) -> ContextItem {
        ContextItem {
            seq,
            body,
            tokens: 100,
        }
    }

    fn tool_call() -> ContextBody {
        ContextBody::Message(Message::Assistant {
            id: None,
            content: OneOrMany::one(AssistantContent::tool_call(
                "call_1",
                "reply",
                serde_json::json!({"content": "x"}),
            )),
        })
    }

    fn tool_result() -> ContextBody {
        ContextBody::Message(Message::User {
            content: OneOrMany::one(UserContent::ToolResult(ToolResult {
                id: "call_1".into(),
                call_id: None,
                content: OneOrMany::one(ToolResultContent::text("sent")),
            })),
        })
    }

    fn user(text: &str) -> ContextBody {
        ContextBody::Message(Message::user(text))
    }

    #[test]
    fn thresholds_pick_the_action() {
        let items: Vec<_> = (0..10).map(|seq| item(seq, user("hello"))).collect();
        // 1000 tokens of history.
        assert_eq!(plan(&items, 0, 2000, false), Plan::Nothing);
        assert_eq!(plan(&items, 0, 1200, false), Plan::Summarise { count: 3 });
        assert_eq!(plan(&items, 0, 1100, false), Plan::Summarise { count: 5 });
        assert_eq!(plan(&items, 0, 1100, true), Plan::Nothing);
        assert_eq!(plan(&items, 0, 1000, false), Plan::Drop { count: 5 });
        assert_eq!(plan(&items, 0, 1000, true), Plan::Drop { count: 5 });
    }

    #[test]
    fn cuts_never_separate_a_tool_call_from_its_result() {
        let items = vec![
            item(1, user("one")),
            item(2, tool_call()),
            item(3, tool_result()),
            item(4, user("two")),
        ];
        // 30% of 400 tokens would cut after the call; the cut moves past its result.
        assert_eq!(cut(&items, 120), 3);
        assert_eq!(cut(&items, 100), 1);
        let all_pairs = vec![item(1, tool_call()), item(2, tool_result())];
        assert_eq!(cut(&all_pairs, 200), 0, "never cut inside the only pair");
    }
}
