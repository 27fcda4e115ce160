//! What weak and local models write instead of proper tool calls: a `<think>` block before
//! the answer, or a tool call written as text (Hermes `<tool_call>{…}</tool_call>`, Mistral
//! `[TOOL_CALLS]`, or a bare `{"name": …, "arguments": …}` object). `parse` separates the
//! text a person may read from the calls, so the raw syntax never reaches anyone.

use serde_json::Value;

const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &str = "</think>";
pub(super) const HERMES_OPEN: &str = "<tool_call>";
const HERMES_CLOSE: &str = "</tool_call>";
pub(super) const MISTRAL_MARKER: &str = "[TOOL_CALLS]";
const MISTRAL_ARGUMENTS: &str = "[ARGS]";

/// A tool call found in text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextCall {
    pub name: String,
    /// The arguments object; `Err` holds what was written when it is not JSON.
    pub arguments: Result<Value, String>,
}

/// A text answer taken apart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedText {
    /// What a person may read: without thinking and without call syntax, trimmed.
    pub text: String,
    pub calls: Vec<TextCall>,
    /// Call syntax was found that could not be read (no name, or not JSON at all).
    pub malformed: bool,
}

/// Removes `<think>…</think>` blocks. An unclosed block hides everything after it; a closing
/// tag with no opening one (templates that open the block in the prompt) hides everything
/// before it.
pub fn strip_think(text: &str) -> String {
    let mut text = text;
    if let Some(close) = text.find(THINK_CLOSE)
        && !text[..close].contains(THINK_OPEN)
    {
        text = &text[close + THINK_CLOSE.len()..];
    }
    let mut visible = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(THINK_OPEN) {
        visible.push_str(&rest[..open]);
        match rest[open..].find(THINK_CLOSE) {
            Some(close) => rest = &rest[open + close + THINK_CLOSE.len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    visible.push_str(rest);
    visible
}

/// Takes thinking and tool calls out of a model's text.
pub fn parse(text: &str) -> ParsedText {
    let text = strip_think(text);
    let mut parsed = ParsedText::default();
    let mut visible = String::new();
    let mut rest = text.as_str();
    loop {
        let hermes = rest.find(HERMES_OPEN);
        let mistral = rest.find(MISTRAL_MARKER);
        let hermes = hermes.filter(|start| mistral.is_none_or(|other| *start < other));
        match (hermes, mistral) {
            (Some(start), _) => {
                visible.push_str(&rest[..start]);
                let body_start = start + HERMES_OPEN.len();
                let (body, next) = match rest[body_start..].find(HERMES_CLOSE) {
                    Some(end) => (
                        &rest[body_start..body_start + end],
                        &rest[body_start + end + HERMES_CLOSE.len()..],
                    ),
                    None => (&rest[body_start..], ""),
                };
                match call_from_object_text(body) {
                    Some(call) => parsed.calls.push(call),
                    None => parsed.malformed = true,
                }
                rest = next;
            }
            (None, Some(start)) => {
                visible.push_str(&rest[..start]);
                let body = &rest[start + MISTRAL_MARKER.len()..];
                let calls = mistral_calls(body);
                if calls.is_empty() {
                    parsed.malformed = true;
                }
                parsed.calls.extend(calls);
                rest = "";
            }
            (None, None) => {
                visible.push_str(rest);
                break;
            }
        }
    }
    let visible = visible.trim();
    if parsed.calls.is_empty()
        && !parsed.malformed
        && let Some(call) = bare_call(visible)
    {
        parsed.calls.push(call);
        return parsed;
    }
    parsed.text = visible.to_string();
    parsed
}

/// The whole text is one JSON call object, perhaps in a code fence.
fn bare_call(text: &str) -> Option<TextCall> {
    let inner = text
        .strip_prefix("```json")
        .or_else(|| text.strip_prefix("```"))
        .and_then(|fenced| fenced.trim_end().strip_suffix("```"))
        .unwrap_or(text)
        .trim();
    if !inner.starts_with('{') {
        return None;
    }
    let value: Value = serde_json::from_str(inner).ok()?;
    let call = call_from_value(&value)?;
    Some(call)
}

/// `{"name": …, "arguments": …}` (or `parameters`) from its text.
fn call_from_object_text(body: &str) -> Option<TextCall> {
    let body = body.trim();
    match serde_json::from_str::<Value>(body) {
        Ok(value) => call_from_value(&value),
        Err(_) => {
            // A name can often still be read from a broken object.
            let name = name_in_broken_json(body)?;
            Some(TextCall {
                name,
                arguments: Err(body.to_string()),
            })
        }
    }
}

fn call_from_value(value: &Value) -> Option<TextCall> {
    let name = value["name"].as_str()?.to_string();
    let arguments = match value.get("arguments").or_else(|| value.get("parameters")) {
        None => Ok(Value::Object(Default::default())),
        Some(Value::String(text)) => serde_json::from_str(text).map_err(|_| text.clone()),
        Some(arguments) => Ok(arguments.clone()),
    };
    // Only objects with just these keys are calls; other JSON is an answer.
    let only_call_keys = value.as_object().is_some_and(|object| {
        object
            .keys()
            .all(|key| matches!(key.as_str(), "name" | "arguments" | "parameters" | "id"))
    });
    only_call_keys.then_some(TextCall { name, arguments })
}

fn name_in_broken_json(body: &str) -> Option<String> {
    let after = &body[body.find("\"name\"")? + 6..];
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    let after = after.strip_prefix('"')?;
    let name = &after[..after.find('"')?];
    (!name.is_empty()).then(|| name.to_string())
}

/// After `[TOOL_CALLS]`: a JSON array of calls, one call object, or `name[ARGS]{…}`.
fn mistral_calls(body: &str) -> Vec<TextCall> {
    let body = body.trim();
    if body.starts_with('[') {
        if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(body) {
            return items.iter().filter_map(call_from_value).collect();
        }
        return Vec::new();
    }
    if body.starts_with('{') {
        return call_from_object_text(body).into_iter().collect();
    }
    let mut calls = Vec::new();
    for part in body.split(MISTRAL_MARKER) {
        let Some((name, arguments)) = part.split_once(MISTRAL_ARGUMENTS) else {
            continue;
        };
        let arguments = arguments.trim();
        calls.push(TextCall {
            name: name.trim().to_string(),
            arguments: serde_json::from_str(arguments).map_err(|_| arguments.to_string()),
        });
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thinking_is_removed_wherever_it_is() {
        assert_eq!(strip_think("<think>plan</think>Hello"), "Hello");
        assert_eq!(strip_think("a<think>x</think>b<think>y</think>c"), "abc");
        assert_eq!(strip_think("reasoning here</think>\nAnswer"), "\nAnswer");
        assert_eq!(strip_think("Answer<think>cut off"), "Answer");
    }

    #[test]
    fn hermes_mistral_and_bare_calls_are_recognised() {
        let hermes = parse(
            "<think>ok</think>Sure.\n<tool_call>\n{\"name\": \"reply\", \"arguments\": {\"content\": \"hi\"}}\n</tool_call>",
        );
        assert_eq!(hermes.text, "Sure.");
        assert_eq!(hermes.calls[0].name, "reply");
        assert_eq!(hermes.calls[0].arguments, Ok(json!({"content": "hi"})));

        let mistral = parse(
            "[TOOL_CALLS][{\"name\": \"skip\", \"arguments\": \"{\\\"reason\\\": \\\"x\\\"}\"}]",
        );
        assert_eq!(mistral.calls[0].name, "skip");
        assert_eq!(mistral.calls[0].arguments, Ok(json!({"reason": "x"})));
        let newer = parse("[TOOL_CALLS]reply[ARGS]{\"content\": \"yo\"}");
        assert_eq!(newer.calls[0].arguments, Ok(json!({"content": "yo"})));

        let bare =
            parse("```json\n{\"name\": \"reply\", \"parameters\": {\"content\": \"b\"}}\n```");
        assert_eq!(bare.calls[0].name, "reply");
        assert!(bare.text.is_empty());
    }

    #[test]
    fn broken_calls_are_reported_and_plain_json_answers_are_not_calls() {
        let broken =
            parse("<tool_call>{\"name\": \"reply\", \"arguments\": {\"content\": </tool_call>");
        assert_eq!(broken.calls[0].name, "reply");
        assert!(broken.calls[0].arguments.is_err());
        let nameless = parse("Ok <tool_call>garbage</tool_call>");
        assert!(nameless.malformed && nameless.calls.is_empty());
        assert_eq!(nameless.text, "Ok");
        let answer = parse("{\"name\": \"Ana\", \"age\": 3}");
        assert!(answer.calls.is_empty());
        assert_eq!(answer.text, "{\"name\": \"Ana\", \"age\": 3}");
    }
}
