//! The MiniJinja templates under `prompts/`, embedded in the binary and rendered by name.

use minijinja::Environment;
use serde::Serialize;

/// Every template, by the name code renders it with.
const TEMPLATES: &[(&str, &str)] = &[
    ("channel", include_str!("../prompts/channel.md.j2")),
    ("tools/reply", include_str!("../prompts/tools/reply.md.j2")),
    ("tools/skip", include_str!("../prompts/tools/skip.md.j2")),
    (
        "tools/memory_save",
        include_str!("../prompts/tools/memory_save.md.j2"),
    ),
    (
        "tools/memory_recall",
        include_str!("../prompts/tools/memory_recall.md.j2"),
    ),
    (
        "tools/memory_delete",
        include_str!("../prompts/tools/memory_delete.md.j2"),
    ),
    ("memories", include_str!("../prompts/memories.md.j2")),
    (
        "memory_guidance",
        include_str!("../prompts/memory_guidance.md.j2"),
    ),
    (
        "identity/soul",
        include_str!("../prompts/identity/soul.md.j2"),
    ),
    (
        "identity/identity",
        include_str!("../prompts/identity/identity.md.j2"),
    ),
    (
        "identity/role",
        include_str!("../prompts/identity/role.md.j2"),
    ),
];

#[derive(Debug, thiserror::Error)]
#[error("prompt template `{name}`: {source}")]
pub struct PromptError {
    pub name: String,
    pub source: minijinja::Error,
}

pub struct Prompts {
    environment: Environment<'static>,
}

impl Prompts {
    /// Compiles every embedded template, so a broken one fails at startup, not mid-turn.
    pub fn new() -> Result<Self, PromptError> {
        let mut environment = Environment::new();
        environment.set_trim_blocks(true);
        environment.set_lstrip_blocks(true);
        environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            environment
                .add_template(name, source)
                .map_err(|source| PromptError {
                    name: (*name).to_string(),
                    source,
                })?;
        }
        Ok(Self { environment })
    }

    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, PromptError> {
        let error = |source| PromptError {
            name: name.to_string(),
            source,
        };
        let template = self.environment.get_template(name).map_err(error)?;
        let rendered = template.render(context).map_err(error)?;
        Ok(rendered.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let prompts = Prompts::new().expect("templates compile");
        assert!(
            prompts
                .render("tools/reply", minijinja::context! {})
                .expect("renders")
                .contains("reply")
        );
    }
}
