//! The names and definitions the model sees for a server's tools: `{server}__{tool}` in the
//! characters providers accept, unique within the server; descriptions and schemas capped.

use serde_json::Value;

use super::McpTool;

/// Providers accept tool names of at most 64 characters of `[A-Za-z0-9_-]`.
const LONGEST_TOOL_NAME: usize = 64;
/// Longest description passed on; the rest is cut.
const LONGEST_DESCRIPTION: usize = 2000;
/// Largest parameters schema (as JSON) passed on; a tool with a larger one is left out.
const LARGEST_SCHEMA: usize = 16 * 1024;
/// Most tools taken from one server; the rest are left out.
pub(super) const MOST_TOOLS: usize = 128;

/// The model-facing tools of `server` from what it listed, and the tools left out with why.
pub(super) fn tools(server: &str, listed: Vec<rmcp::model::Tool>) -> (Vec<McpTool>, Vec<String>) {
    let mut tools: Vec<McpTool> = Vec::new();
    let mut skipped = Vec::new();
    for tool in listed {
        if tools.len() >= MOST_TOOLS {
            skipped.push(format!(
                "{}: the server offers more than {MOST_TOOLS} tools",
                tool.name
            ));
            continue;
        }
        let parameters = match parameters(&tool.input_schema) {
            Ok(parameters) => parameters,
            Err(reason) => {
                skipped.push(format!("{}: {reason}", tool.name));
                continue;
            }
        };
        let name = unique_name(server, &tool.name, &tools);
        let description = tool
            .description
            .as_deref()
            .or(tool.title.as_deref())
            .unwrap_or_default();
        tools.push(McpTool {
            name,
            server: server.to_string(),
            remote_name: tool.name.to_string(),
            description: cap(description, LONGEST_DESCRIPTION),
            parameters,
            read_only: tool
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.read_only_hint)
                .unwrap_or(false),
        });
    }
    (tools, skipped)
}

/// `{server}__{tool}`: other characters become `_`, the tool part is cut to fit, and a
/// name already taken gets a number.
fn unique_name(server: &str, tool: &str, taken: &[McpTool]) -> String {
    let prefix = format!("{server}__");
    let room = LONGEST_TOOL_NAME.saturating_sub(prefix.len());
    let mut base: String = tool
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || matches!(character, '_' | '-') {
                character
            } else {
                '_'
            }
        })
        .take(room)
        .collect();
    if base.is_empty() {
        base = "tool".chars().take(room).collect();
    }
    let mut candidate = format!("{prefix}{base}");
    let mut number = 2;
    while taken.iter().any(|tool| tool.name == candidate) {
        let suffix = format!("_{number}");
        let kept: String = base
            .chars()
            .take(room.saturating_sub(suffix.len()))
            .collect();
        candidate = format!("{prefix}{kept}{suffix}");
        number += 1;
    }
    candidate
}

/// The schema as providers take it: an object schema, not too large.
fn parameters(schema: &serde_json::Map<String, Value>) -> Result<Value, String> {
    let mut schema = schema.clone();
    match schema.get("type") {
        None => {
            schema.insert("type".to_string(), Value::String("object".to_string()));
        }
        Some(Value::String(kind)) if kind == "object" => {}
        Some(other) => {
            return Err(format!("its input schema has type {other}, not \"object\""));
        }
    }
    if !schema.contains_key("properties") {
        schema.insert("properties".to_string(), Value::Object(Default::default()));
    }
    let schema = Value::Object(schema);
    let size = schema.to_string().len();
    if size > LARGEST_SCHEMA {
        return Err(format!(
            "its input schema is {size} bytes, more than {LARGEST_SCHEMA}"
        ));
    }
    Ok(schema)
}

/// `text` cut to at most `longest` characters, saying so.
fn cap(text: &str, longest: usize) -> String {
    if text.chars().count() <= longest {
        return text.to_string();
    }
    let mut kept: String = text.chars().take(longest).collect();
    kept.push_str(" (cut)");
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str) -> McpTool {
        McpTool {
            name: name.to_string(),
            server: "s".to_string(),
            remote_name: name.to_string(),
            description: String::new(),
            parameters: json!({}),
            read_only: false,
        }
    }

    #[test]
    fn names_are_prefixed_sanitised_capped_and_unique() {
        assert_eq!(unique_name("files", "read.file", &[]), "files__read_file");
        assert_eq!(unique_name("files", "", &[]), "files__tool");
        let long = "x".repeat(100);
        let name = unique_name("files", &long, &[]);
        assert_eq!(name.len(), LONGEST_TOOL_NAME);
        let taken = [tool("files__a_b")];
        assert_eq!(unique_name("files", "a.b", &taken), "files__a_b_2");
        let taken = [tool(&name)];
        let second = unique_name("files", &long, &taken);
        assert_eq!(second.len(), LONGEST_TOOL_NAME);
        assert!(second.ends_with("_2"), "{second}");
    }

    #[test]
    fn schemas_become_object_schemas_or_are_refused() {
        let schema = |value: Value| value.as_object().cloned().unwrap_or_default();
        assert_eq!(
            parameters(&schema(json!({}))).expect("empty schema"),
            json!({"type": "object", "properties": {}})
        );
        assert!(parameters(&schema(json!({"type": "string"}))).is_err());
        let huge = json!({"type": "object", "description": "d".repeat(LARGEST_SCHEMA)});
        assert!(parameters(&schema(huge)).is_err());
    }
}
