//! The config file `spacebot init` writes: rendered with comments, parsed as the daemon will
//! parse it, then written readable by its owner alone.

use std::path::Path;

use super::{Answers, InitError, ProviderChoice};
use crate::config::Config;

/// A TOML string literal.
pub(super) fn quoted(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// The config `answers` describe, commented.
pub fn render(answers: &Answers) -> String {
    let mut text = String::from(
        "# Spacebot configuration, written by `spacebot init`.\n\
         # Every key is optional and documented in config/example.toml of the Spacebot\n\
         # repository. Secrets are literal here (this file is readable by you alone) or\n\
         # \"env:VARIABLE_NAME\". The running daemon applies edits of this file by itself.\n\n",
    );
    let provider = answers.provider.name();
    text.push_str("# The LLM provider the agents think with.\n");
    text.push_str(&format!("[llm.providers.{provider}]\n"));
    match &answers.provider {
        ProviderChoice::OpenAi { api_key, base_url } => {
            text.push_str("kind = \"openai\"\n");
            text.push_str(&format!("api_key = {}\n", quoted(api_key)));
            if let Some(base_url) = base_url {
                text.push_str(&format!("base_url = {}\n", quoted(base_url)));
            }
        }
        ProviderChoice::Anthropic { api_key, base_url } => {
            text.push_str("kind = \"anthropic\"\n");
            text.push_str(&format!("api_key = {}\n", quoted(api_key)));
            if let Some(base_url) = base_url {
                text.push_str(&format!("base_url = {}\n", quoted(base_url)));
            }
        }
        ProviderChoice::Local { base_url } => {
            text.push_str("# An OpenAI-compatible server without a key.\nkind = \"openai\"\n");
            text.push_str(&format!("base_url = {}\n", quoted(base_url)));
        }
    }
    text.push_str(
        "\n# Which model each process uses; branches, workers, the compactor and the cortex\n\
         # use the channel's unless named.\n[defaults.routing]\n",
    );
    text.push_str(&format!(
        "channel = {}\n",
        quoted(&format!("{provider}/{}", answers.model))
    ));
    text.push_str("\n[[agents]]\nid = \"main\"\ndefault = true\n");
    if let Some(telegram) = &answers.telegram {
        text.push_str("\n# Telegram: the bot token from @BotFather.\n[messaging.telegram]\n");
        text.push_str(&format!("token = {}\n", quoted(&telegram.token)));
        if let Some(api_url) = &telegram.api_url {
            text.push_str(&format!("api_url = {}\n", quoted(api_url)));
        }
    }
    if let Some(discord) = &answers.discord {
        text.push_str(
            "\n# Discord: the bot token from the Developer Portal (enable the Message Content\n\
             # intent there).\n[messaging.discord]\n",
        );
        text.push_str(&format!("token = {}\n", quoted(&discord.token)));
        if let Some(api_base) = &discord.api_base {
            text.push_str(&format!("api_base = {}\n", quoted(api_base)));
        }
    }
    if let Some(slack) = &answers.slack {
        text.push_str(
            "\n# Slack, over Socket Mode: the bot token (xoxb-) and an app-level token (xapp-)\n\
             # with connections:write.\n[messaging.slack]\n",
        );
        text.push_str(&format!("bot_token = {}\n", quoted(&slack.bot_token)));
        text.push_str(&format!("app_token = {}\n", quoted(&slack.app_token)));
        if let Some(api_url) = &slack.api_url {
            text.push_str(&format!("api_url = {}\n", quoted(api_url)));
        }
    }
    text.push_str(
        "\n# Who may make the agents act. Anyone else who writes a direct message gets a\n\
         # pairing code for you to approve (`spacebot access approve CODE`) as a member.\n\
         [access]\n",
    );
    let owners: Vec<String> = answers.owners.iter().map(|owner| quoted(owner)).collect();
    text.push_str(&format!("owners = [{}]\n", owners.join(", ")));
    if let Some(token) = &answers.api_token {
        text.push_str(
            "\n# The HTTP API's bearer token: every client (the CLI reads it from here) sends it.\n\
             [api]\n",
        );
        text.push_str(&format!("token = {}\n", quoted(token)));
    }
    text
}

/// Parses `text` as the daemon will, then writes it to `path` (0600; its folder 0700).
pub fn write(
    path: &Path,
    text: &str,
    force: bool,
    environment: &dyn Fn(&str) -> Option<String>,
) -> Result<(), InitError> {
    Config::parse(text, &path.display().to_string(), environment)?;
    if path.exists() && !force {
        return Err(InitError::Exists(path.display().to_string()));
    }
    let write_error = |source| InitError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        crate::filesystem::private_directory(parent).map_err(write_error)?;
    }
    crate::filesystem::write_private_file(path, text.as_bytes()).map_err(write_error)?;
    // An existing file keeps its mode through a write: tighten it too.
    crate::filesystem::private_file(path).map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onboarding::{DiscordChoice, SlackChoice, TelegramChoice};

    #[test]
    fn the_rendered_config_loads_with_every_platform_and_the_owners() {
        let answers = Answers {
            provider: ProviderChoice::Local {
                base_url: "http://127.0.0.1:11434/v1".to_string(),
            },
            model: "llama3.1".to_string(),
            telegram: Some(TelegramChoice {
                token: "123:ABC\"quoted".to_string(),
                api_url: None,
            }),
            discord: Some(DiscordChoice {
                token: "discord-token".to_string(),
                api_base: None,
            }),
            slack: Some(SlackChoice {
                bot_token: "xoxb-1".to_string(),
                app_token: "xapp-1".to_string(),
                api_url: None,
            }),
            owners: vec!["telegram:42".to_string(), "slack:U1".to_string()],
            api_token: Some("env:SPACEBOT_TEST_TOKEN".to_string()),
        };
        let config = Config::parse(&render(&answers), "init.toml", &|name| {
            (name == "SPACEBOT_TEST_TOKEN").then(|| "a-long-token".to_string())
        })
        .expect("loads");
        assert_eq!(config.api.token.as_deref(), Some("a-long-token"));
        assert_eq!(
            config.default_agent().routing.channel.to_string(),
            "local/llama3.1"
        );
        assert_eq!(
            config.messaging.telegram.expect("telegram").token,
            "123:ABC\"quoted"
        );
        assert!(config.messaging.discord.is_some() && config.messaging.slack.is_some());
        assert_eq!(config.access.owners, ["telegram:42", "slack:U1"]);
    }
}
