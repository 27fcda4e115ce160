//! `route`: a follow-up message for a running interactive worker.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolEffect, ToolOutput, parse_arguments};

pub struct Route;

#[derive(Deserialize)]
struct Arguments {
    worker_id: String,
    message: String,
}

impl Tool for Route {
    fn name(&self) -> &'static str {
        "route"
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "worker_id": {"type": "string"},
                "message": {"type": "string"}
            },
            "required": ["worker_id", "message"]
        })
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, ToolOutput> {
        Box::pin(async move {
            match parse_arguments::<Arguments>(self.name(), arguments) {
                Ok(arguments) => ToolOutput::effect(ToolEffect::Route {
                    worker_id: arguments.worker_id,
                    message: arguments.message,
                }),
                Err(output) => output,
            }
        })
    }
}
