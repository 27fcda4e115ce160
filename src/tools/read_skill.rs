//! `read_skill`: the body of one of the agent's skills and the list of its files, or one of
//! those files.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Tool, ToolCall, ToolOutput};
use crate::skills::Skills;

/// Characters returned at most.
const MAX_OUTPUT: usize = 64 * 1024;

pub struct ReadSkill {
    skills: Skills,
}

impl ReadSkill {
    pub fn new(skills: Skills) -> Self {
        Self { skills }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arguments {
    name: String,
    #[serde(default)]
    file: Option<String>,
}

impl<Effect: Send + 'static> Tool<Effect> for ReadSkill {
    type Arguments = Arguments;
    const NAME: &'static str = "read_skill";
    const DESCRIPTION: &'static str = include_str!("../../prompts/tools/read_skill.md.j2");

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "The skill's name, as listed."},
                "file": {"type": "string", "description": "A file of the skill to read instead of its instructions: a path from its file list."}
            },
            "required": ["name"]
        })
    }

    async fn call(&self, call: &ToolCall<'_>, arguments: Arguments) -> ToolOutput<Effect> {
        if arguments.name.len() > 64 || arguments.file.as_ref().is_some_and(|file| file.len() > 512)
        {
            return ToolOutput::error("the name or file path is too long");
        }
        let skills = self.skills.clone();
        let name = arguments.name.trim().to_string();
        let file = arguments.file.filter(|file| !file.trim().is_empty());
        // Reading files is blocking I/O: done off the async workers.
        let result = tokio::task::spawn_blocking(move || match file {
            Some(file) => skills
                .read_file(&name, file.trim())
                .map(|text| format!("File `{}` of the skill `{name}`:\n\n{text}", file.trim())),
            None => skills.read(&name).map(|document| {
                let mut text = format!(
                    "Skill `{}`: {}\n\n{}\n",
                    document.skill.name, document.skill.description, document.body
                );
                if document.files.is_empty() {
                    text.push_str("\nThe skill has no other files.");
                } else {
                    text.push_str("\nIts files (read one with `read_skill` and `file`):\n");
                    for file in &document.files {
                        text.push_str(&format!("- {file}\n"));
                    }
                }
                text
            }),
        })
        .await;
        match result {
            Ok(Ok(text)) => ToolOutput::success(text.chars().take(MAX_OUTPUT).collect::<String>()),
            Ok(Err(error)) => ToolOutput::error(error.to_string()),
            Err(error) => {
                tracing::error!(agent_id = call.agent_id, %error, "read_skill failed");
                ToolOutput::error("the skill could not be read")
            }
        }
    }
}
