//! The MiniJinja templates under `prompts/`, embedded in the binary and rendered by name.
//! Tool descriptions (`prompts/tools/`) are embedded by their tools and rendered here too.

use minijinja::Environment;
use serde::Serialize;

/// Every template, by the name code renders it with.
const TEMPLATES: &[(&str, &str)] = &[
    ("channel", include_str!("../prompts/channel.md.j2")),
    ("branch", include_str!("../prompts/branch.md.j2")),
    ("worker", include_str!("../prompts/worker.md.j2")),
    ("compactor", include_str!("../prompts/compactor.md.j2")),
    ("capture", include_str!("../prompts/capture.md.j2")),
    (
        "capture_input",
        include_str!("../prompts/capture_input.md.j2"),
    ),
    ("status", include_str!("../prompts/status.md.j2")),
    ("speakers", include_str!("../prompts/speakers.md.j2")),
    ("retrigger", include_str!("../prompts/retrigger.md.j2")),
    ("attachments", include_str!("../prompts/attachments.md.j2")),
    ("cron", include_str!("../prompts/cron.md.j2")),
    (
        "tool_call_correction",
        include_str!("../prompts/tool_call_correction.md.j2"),
    ),
    (
        "text_tool_results",
        include_str!("../prompts/text_tool_results.md.j2"),
    ),
    ("memories", include_str!("../prompts/memories.md.j2")),
    ("skills", include_str!("../prompts/skills.md.j2")),
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

    /// Renders a template that its owner embeds itself (a tool's description), with the
    /// same settings as the registered ones. `name` labels errors.
    pub fn render_source(
        &self,
        name: &str,
        source: &str,
        context: impl Serialize,
    ) -> Result<String, PromptError> {
        let rendered = self
            .environment
            .render_str(source, context)
            .map_err(|source| PromptError {
                name: name.to_string(),
                source,
            })?;
        Ok(rendered.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let prompts = Prompts::new().expect("templates compile");
        let rendered = prompts
            .render_source(
                "inline",
                "Hello {{ name }}",
                minijinja::context! { name => "Ada" },
            )
            .expect("renders");
        assert_eq!(rendered, "Hello Ada");
    }

    /// Renders each template with the variables its caller passes; a template that refers to
    /// a variable nobody passes fails here instead of mid-turn.
    #[test]
    fn every_template_renders_with_its_callers_variables() {
        let prompts = Prompts::new().expect("templates compile");
        let identity = minijinja::context! {
            agent_name => "Ada", conversation_id => "portal:x", soul => "S", identity => "I", role => "R",
        };
        let cases = [
            ("channel", identity.clone()),
            ("branch", identity),
            (
                "worker",
                minijinja::context! { agent_name => "Ada", workspace => "/w", sandboxed => true, shell_off => Option::<&str>::None, interactive => true },
            ),
            ("compactor", minijinja::context! { max_words => 100 }),
            (
                "capture",
                minijinja::context! { agent_name => "Ada", max_items => 12, types => vec!["fact", "goal"] },
            ),
            (
                "capture_input",
                minijinja::context! {
                    known => vec![minijinja::context! { id => "m1", type => "fact", content => "c" }],
                    lines => vec![minijinja::context! { date => "2026-12-01", sender => "Ana", role => "user", content => "hi" }],
                },
            ),
            (
                "status",
                minijinja::context! {
                    running => vec![minijinja::context! { kind => "worker", id => "w1", age => "3s", description => "d", status => "s" }],
                    completed => vec!["done"],
                    warnings => vec!["tool `shell` failed 3 times in a row"],
                },
            ),
            (
                "cron",
                minijinja::context! {
                    job_id => "digest", prompt => "p", delivery_target => Some("telegram:1"),
                    schedule => "every 1h", manual => false,
                },
            ),
            ("retrigger", minijinja::context! { results => vec!["r"] }),
            (
                "skills",
                minijinja::context! {
                    can_read => true,
                    skills => vec![minijinja::context! { name => "deploy", description => "d" }],
                    omitted => 1, omitted_names => vec!["backup"],
                },
            ),
            (
                "attachments",
                minijinja::context! {
                    attachments => vec![minijinja::context! {
                        name => "a.pdf", kind => "document", media_type => "application/pdf",
                        size => "3.0 KB", path => "attachments/x/a.pdf", refused => Option::<&str>::None,
                        transcript => Option::<&str>::None, heard => false, text => "t", truncated => true,
                    }],
                },
            ),
            (
                "tool_call_correction",
                minijinja::context! { problems => vec!["no tool named `x`"], tools => vec!["reply"] },
            ),
            (
                "text_tool_results",
                minijinja::context! {
                    results => vec![minijinja::context! { name => "reply", result => "ok", is_error => false }],
                },
            ),
            (
                "speakers",
                minijinja::context! {
                    speakers => vec![minijinja::context! { name => "Ana", id => "telegram:1", role => "member" }],
                    role => "member", may_act => false,
                },
            ),
            ("identity/soul", minijinja::context! { agent_name => "Ada" }),
        ];
        for (name, context) in cases {
            let rendered = prompts.render(name, context).expect(name);
            assert!(!rendered.is_empty(), "{name} rendered empty");
        }
    }
}
