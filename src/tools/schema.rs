//! Checks a tool's parameter schema before any model sees it: the JSON Schema keywords
//! providers accept for function parameters, used consistently (an object at the root,
//! `required` naming declared properties, known types, no misspelt keywords).

use serde_json::{Map, Value};

const TYPES: [&str; 7] = [
    "object", "array", "string", "number", "integer", "boolean", "null",
];
const KEYWORDS: [&str; 10] = [
    "type",
    "description",
    "properties",
    "required",
    "items",
    "enum",
    "minimum",
    "maximum",
    "additionalProperties",
    "default",
];

/// A mistake in a parameters schema, with the path at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSchema(String);

/// Whether `schema` is a valid parameters schema: an object schema whose every nested
/// schema is valid.
pub fn check_parameters(schema: &Value) -> Result<(), InvalidSchema> {
    let root = schema
        .as_object()
        .ok_or_else(|| InvalidSchema("the parameters schema is not an object".to_string()))?;
    if root.get("type").and_then(Value::as_str) != Some("object") {
        return Err(InvalidSchema(
            "the parameters schema must have \"type\": \"object\"".to_string(),
        ));
    }
    check(root, "parameters")
}

fn check(schema: &Map<String, Value>, path: &str) -> Result<(), InvalidSchema> {
    if let Some(keyword) = schema.keys().find(|key| !KEYWORDS.contains(&key.as_str())) {
        return Err(InvalidSchema(format!(
            "{path}: unknown keyword `{keyword}`"
        )));
    }
    let types: Vec<&str> = match schema.get("type") {
        None => Vec::new(),
        Some(Value::String(name)) => vec![name.as_str()],
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        Some(other) => {
            return Err(InvalidSchema(format!(
                "{path}.type: `{other}` is not a type name"
            )));
        }
    };
    if let Some(unknown) = types.iter().find(|name| !TYPES.contains(name)) {
        return Err(InvalidSchema(format!(
            "{path}.type: unknown type `{unknown}`"
        )));
    }
    if types.is_empty() && !schema.contains_key("enum") {
        return Err(InvalidSchema(format!("{path}: neither `type` nor `enum`")));
    }
    if let Some(description) = schema.get("description")
        && !description.is_string()
    {
        return Err(InvalidSchema(format!("{path}.description is not a string")));
    }
    if let Some(values) = schema.get("enum") {
        match values.as_array() {
            Some(values) if !values.is_empty() => {}
            _ => {
                return Err(InvalidSchema(format!(
                    "{path}.enum must be a non-empty array"
                )));
            }
        }
    }
    for bound in ["minimum", "maximum"] {
        if let Some(value) = schema.get(bound)
            && !value.is_number()
        {
            return Err(InvalidSchema(format!("{path}.{bound} is not a number")));
        }
    }
    if let (Some(minimum), Some(maximum)) = (
        schema.get("minimum").and_then(Value::as_f64),
        schema.get("maximum").and_then(Value::as_f64),
    ) && minimum > maximum
    {
        return Err(InvalidSchema(format!(
            "{path}: minimum {minimum} exceeds maximum {maximum}"
        )));
    }
    let properties = match schema.get("properties") {
        None => None,
        Some(Value::Object(properties)) => Some(properties),
        Some(_) => return Err(InvalidSchema(format!("{path}.properties is not an object"))),
    };
    if (properties.is_some() || schema.contains_key("required")) && !types.contains(&"object") {
        return Err(InvalidSchema(format!(
            "{path}: properties on a schema that is not an object"
        )));
    }
    for (name, property) in properties.into_iter().flatten() {
        let property = property
            .as_object()
            .ok_or_else(|| InvalidSchema(format!("{path}.properties.{name} is not a schema")))?;
        check(property, &format!("{path}.properties.{name}"))?;
    }
    if let Some(required) = schema.get("required") {
        let names = required
            .as_array()
            .ok_or_else(|| InvalidSchema(format!("{path}.required is not an array")))?;
        for (index, name) in names.iter().enumerate() {
            let name = name.as_str().ok_or_else(|| {
                InvalidSchema(format!("{path}.required[{index}] is not a string"))
            })?;
            if !properties.is_some_and(|properties| properties.contains_key(name)) {
                return Err(InvalidSchema(format!(
                    "{path}.required names `{name}`, which is not a property"
                )));
            }
            if names[..index]
                .iter()
                .any(|earlier| earlier.as_str() == Some(name))
            {
                return Err(InvalidSchema(format!(
                    "{path}.required lists `{name}` twice"
                )));
            }
        }
    }
    match schema.get("items") {
        None if types.contains(&"array") => {
            Err(InvalidSchema(format!("{path}: an array without `items`")))
        }
        None => Ok(()),
        Some(Value::Object(items)) => check(items, &format!("{path}.items")),
        Some(_) => Err(InvalidSchema(format!("{path}.items is not a schema"))),
    }?;
    if let Some(additional) = schema.get("additionalProperties") {
        match additional {
            Value::Bool(_) => {}
            Value::Object(additional) => {
                check(additional, &format!("{path}.additionalProperties"))?;
            }
            _ => {
                return Err(InvalidSchema(format!(
                    "{path}.additionalProperties is neither a bool nor a schema"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mistakes_in_a_schema_are_named() {
        let cases = [
            (json!({"type": "string"}), "\"type\": \"object\""),
            (
                json!({"type": "object", "properties": {"a": {"type": "text"}}}),
                "unknown type `text`",
            ),
            (
                json!({"type": "object", "properties": {}, "required": ["a"]}),
                "not a property",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "array"}}}),
                "without `items`",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string", "enumm": ["x"]}}}),
                "unknown keyword `enumm`",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "integer", "minimum": 5, "maximum": 1}}}),
                "exceeds maximum",
            ),
        ];
        for (schema, expected) in cases {
            let error = check_parameters(&schema)
                .expect_err(&schema.to_string())
                .to_string();
            assert!(error.contains(expected), "{error}");
        }
        check_parameters(&json!({
            "type": "object",
            "properties": {
                "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
                "limit": {"type": "integer", "minimum": 1, "maximum": 10}
            },
            "required": ["tags"]
        }))
        .expect("valid");
    }
}
