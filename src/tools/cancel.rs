//! `cancel`: stop a running branch or worker.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolEffect, ToolOutput, parse_arguments};

pub struct Cancel;

#[derive(Deserialize)]
struct Arguments {
    process_id: String,
}

impl Tool for Cancel {
    fn name(&self) -> &'static str {
        "cancel"
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"process_id": {"type": "string"}},
            "required": ["process_id"]
        })
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, ToolOutput> {
        Box::pin(async move {
            match parse_arguments::<Arguments>(self.name(), arguments) {
                Ok(arguments) => ToolOutput::effect(ToolEffect::Cancel {
                    process_id: arguments.process_id,
                }),
                Err(output) => output,
            }
        })
    }
}
