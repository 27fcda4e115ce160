//! `spacebot init`: the first run. It checks each credential it is given with one call to the
//! service it belongs to (the provider's model list, Telegram's `getMe`, Discord's
//! `/users/@me`, Slack's `auth.test` and `apps.connections.open`), then writes a commented
//! config, readable by its owner alone, that `Config` has parsed before it is written. The
//! questions (interactive or as flags) are the CLI's; this module only checks and writes.

mod check;
mod config_file;

use std::path::Path;

pub use check::{
    check_discord, check_owner, check_provider, check_slack, check_telegram, check_url, http_client,
};
pub use config_file::{render, write};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{service}: cannot reach {url}: {message}")]
    Unreachable {
        service: &'static str,
        url: String,
        message: String,
    },
    #[error("{service}: {url} refused the credentials (HTTP {status}): {body}")]
    Refused {
        service: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    #[error("{service}: {url} answered something unexpected: {message}")]
    Unexpected {
        service: &'static str,
        url: String,
        message: String,
    },
    #[error("invalid answer for {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0} already exists; pass --force to replace it")]
    Exists(String),
    #[error("the config that would be written does not load: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The LLM the agents think with.
#[derive(Debug, Clone)]
pub enum ProviderChoice {
    /// OpenAI or any OpenAI-compatible service with a key (OpenRouter, a hosted vLLM).
    OpenAi {
        api_key: String,
        base_url: Option<String>,
    },
    Anthropic {
        api_key: String,
        base_url: Option<String>,
    },
    /// An OpenAI-compatible server without a key: Ollama, llama.cpp, vLLM on this machine.
    Local { base_url: String },
}

impl ProviderChoice {
    fn name(&self) -> &'static str {
        match self {
            ProviderChoice::OpenAi { .. } => "openai",
            ProviderChoice::Anthropic { .. } => "anthropic",
            ProviderChoice::Local { .. } => "local",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TelegramChoice {
    pub token: String,
    pub api_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DiscordChoice {
    pub token: String,
    pub api_base: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SlackChoice {
    pub bot_token: String,
    pub app_token: String,
    pub api_url: Option<String>,
}

/// Everything `init` was told.
#[derive(Debug, Clone)]
pub struct Answers {
    pub provider: ProviderChoice,
    /// The channel model as the provider names it (`gpt-4o-mini`); found by the check when
    /// not given.
    pub model: String,
    pub telegram: Option<TelegramChoice>,
    pub discord: Option<DiscordChoice>,
    pub slack: Option<SlackChoice>,
    /// Platform ids of the owners (`telegram:123456789`).
    pub owners: Vec<String>,
    /// The API's bearer token (needed to serve beyond loopback).
    pub api_token: Option<String>,
}

/// What a check learnt.
#[derive(Debug, Clone)]
pub struct Checked {
    /// For the person running `init`: who or what answered.
    pub summary: String,
    /// A model the provider offers, when the check lists them.
    pub first_model: Option<String>,
}

/// How to find one's own user id on each platform, for the owner question.
pub const OWNER_HELP: &str = "\
Owners are the people who may make the agents act (run commands, schedule jobs, save memories).
Give platform user ids, never usernames (those change hands):
  Telegram: your numeric id; message @userinfobot, or write to your bot once the daemon runs:
            it answers a stranger with a pairing code, and `spacebot access list` shows the id.
  Discord:  Settings > Advanced > Developer Mode on, then right-click your name > Copy User ID.
  Slack:    your profile > the three dots > Copy member ID (like U024BE7LH).
Write them as telegram:123456789, discord:803512345678901234, slack:U024BE7LH.
Or leave this empty and pair: once the daemon runs, write to your bot; it answers with a code,
and `spacebot access approve CODE --owner` makes you an owner on that platform.";

/// What the person was asked, as flags or answers; `None` is not given.
#[derive(Debug, Clone, Default)]
pub struct Questions {
    pub provider: Option<String>,
    pub api_key: Option<String>,
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub telegram_token: Option<String>,
    pub telegram_api_url: Option<String>,
    pub discord_token: Option<String>,
    pub discord_api_base: Option<String>,
    pub slack_bot_token: Option<String>,
    pub slack_app_token: Option<String>,
    pub slack_api_url: Option<String>,
    pub owners: Vec<String>,
    /// `[api] token`, as given (a literal or env:VARIABLE).
    pub api_token: Option<String>,
}

/// Where and how `run` writes.
pub struct Setup<'a> {
    pub path: &'a Path,
    pub force: bool,
    /// Call each service to check its credentials.
    pub check: bool,
    /// Resolves `env:VARIABLE` secrets, for the checks and the final parse.
    pub environment: &'a dyn Fn(&str) -> Option<String>,
}

/// Asks one question and returns the answer (trimmed); `None` when nobody can be asked.
pub type Ask<'a> = Option<&'a mut dyn FnMut(&str) -> std::io::Result<String>>;

/// Fills what the flags left out by asking (when someone can be asked), checks every
/// credential with one call, and writes the config. `say` prints progress for the person.
pub async fn run(
    mut questions: Questions,
    mut ask: Ask<'_>,
    setup: &Setup<'_>,
    say: &mut dyn FnMut(&str),
) -> Result<std::path::PathBuf, InitError> {
    if setup.path.exists() && !setup.force {
        return Err(InitError::Exists(setup.path.display().to_string()));
    }
    let can_ask = ask.is_some();
    let mut question = |prompt: &str| -> Result<Option<String>, InitError> {
        match ask.as_mut() {
            None => Ok(None),
            Some(ask) => {
                let answer = ask(prompt).map_err(|error| InitError::Invalid {
                    field: "terminal",
                    message: error.to_string(),
                })?;
                Ok(Some(answer).filter(|answer| !answer.is_empty()))
            }
        }
    };
    if questions.provider.is_none() {
        questions.provider = question(
            "LLM provider: openai (or any OpenAI-compatible service with a key), anthropic, or              local (Ollama, llama.cpp, vLLM without a key) [openai]:",
        )?
        .or(Some("openai".to_string()));
    }
    let provider_name = questions.provider.clone().unwrap_or_default();
    let secret = |value: Option<String>| value.map(|value| resolve(&value, setup.environment));
    let provider = match provider_name.as_str() {
        "openai" | "anthropic" => {
            if questions.api_key.is_none() {
                questions.api_key = question(&format!("{provider_name} API key:"))?;
            }
            let api_key =
                secret(questions.api_key.clone())
                    .transpose()?
                    .ok_or(InitError::Invalid {
                        field: "api key",
                        message: format!("{provider_name} needs --api-key"),
                    })?;
            let base_url = questions
                .base_url
                .as_deref()
                .map(|url| check_url("base url", url))
                .transpose()?;
            if provider_name == "openai" {
                ProviderChoice::OpenAi { api_key, base_url }
            } else {
                ProviderChoice::Anthropic { api_key, base_url }
            }
        }
        "local" => {
            if questions.base_url.is_none() {
                questions.base_url =
                    question("The server's OpenAI-compatible URL [http://127.0.0.1:11434/v1]:")?
                        .or(Some("http://127.0.0.1:11434/v1".to_string()));
            }
            let base_url = questions.base_url.as_deref().unwrap_or_default();
            ProviderChoice::Local {
                base_url: check_url("base url", base_url)?,
            }
        }
        other => {
            return Err(InitError::Invalid {
                field: "provider",
                message: format!("`{other}`: openai, anthropic or local"),
            });
        }
    };
    let http = http_client()?;
    let mut first_model = None;
    if setup.check {
        let checked = check_provider(&http, &provider).await?;
        say(&format!("ok: {}", checked.summary));
        first_model = checked.first_model;
    }
    let model = match questions.model.clone() {
        Some(model) => model,
        None => {
            let default = match &provider {
                ProviderChoice::OpenAi { .. } => Some("gpt-4o-mini".to_string()),
                ProviderChoice::Anthropic { .. } => Some("claude-sonnet-4-5".to_string()),
                ProviderChoice::Local { .. } => first_model,
            };
            let asked = question(&format!(
                "Channel model [{}]:",
                default.as_deref().unwrap_or("none listed")
            ))?;
            asked.or(default).ok_or(InitError::Invalid {
                field: "model",
                message: "the server lists no model; pass --model".to_string(),
            })?
        }
    };

    if questions.telegram_token.is_none() {
        questions.telegram_token = question("Telegram bot token (empty: no Telegram):")?;
    }
    let telegram = match secret(questions.telegram_token.clone()).transpose()? {
        Some(token) => Some(TelegramChoice {
            token,
            api_url: questions
                .telegram_api_url
                .as_deref()
                .map(|url| check_url("telegram api url", url))
                .transpose()?,
        }),
        None => None,
    };
    if questions.discord_token.is_none() {
        questions.discord_token = question("Discord bot token (empty: no Discord):")?;
    }
    let discord = match secret(questions.discord_token.clone()).transpose()? {
        Some(token) => Some(DiscordChoice {
            token,
            api_base: questions
                .discord_api_base
                .as_deref()
                .map(|url| check_url("discord api base", url))
                .transpose()?,
        }),
        None => None,
    };
    if questions.slack_bot_token.is_none() {
        questions.slack_bot_token = question("Slack bot token, xoxb-... (empty: no Slack):")?;
    }
    if questions.slack_bot_token.is_some() && questions.slack_app_token.is_none() {
        questions.slack_app_token =
            question("Slack app-level token, xapp-... (with connections:write):")?;
    }
    let slack = match (
        secret(questions.slack_bot_token.clone()).transpose()?,
        secret(questions.slack_app_token.clone()).transpose()?,
    ) {
        (Some(bot_token), Some(app_token)) => Some(SlackChoice {
            bot_token,
            app_token,
            api_url: questions
                .slack_api_url
                .as_deref()
                .map(|url| check_url("slack api url", url))
                .transpose()?,
        }),
        (None, None) => None,
        _ => {
            return Err(InitError::Invalid {
                field: "slack",
                message: "Slack needs both the bot token and the app-level token".to_string(),
            });
        }
    };
    if setup.check {
        if let Some(telegram) = &telegram {
            say(&format!(
                "ok: {}",
                check_telegram(&http, telegram).await?.summary
            ));
        }
        if let Some(discord) = &discord {
            say(&format!(
                "ok: {}",
                check_discord(&http, discord).await?.summary
            ));
        }
        if let Some(slack) = &slack {
            say(&format!("ok: {}", check_slack(&http, slack).await?.summary));
        }
    }
    if questions.owners.is_empty() && can_ask {
        say(OWNER_HELP);
        if let Some(owners) = question("Owner ids, separated by spaces (empty: none yet):")? {
            questions.owners = owners.split_whitespace().map(str::to_string).collect();
        }
    }
    for owner in &questions.owners {
        check_owner(owner)?;
    }
    if questions.owners.is_empty() {
        say(
            "note: no owners: nobody on a chat platform can make the agents act until you add              one to [access] owners (the daemon applies the edit by itself)",
        );
    }
    // The file keeps what was typed (a literal or env:VARIABLE); checks used the value.
    let answers = Answers {
        provider: match provider {
            ProviderChoice::OpenAi { base_url, .. } => ProviderChoice::OpenAi {
                api_key: questions.api_key.unwrap_or_default(),
                base_url,
            },
            ProviderChoice::Anthropic { base_url, .. } => ProviderChoice::Anthropic {
                api_key: questions.api_key.unwrap_or_default(),
                base_url,
            },
            local @ ProviderChoice::Local { .. } => local,
        },
        model,
        telegram: telegram.map(|telegram| TelegramChoice {
            token: questions.telegram_token.unwrap_or_default(),
            ..telegram
        }),
        discord: discord.map(|discord| DiscordChoice {
            token: questions.discord_token.unwrap_or_default(),
            ..discord
        }),
        slack: slack.map(|slack| SlackChoice {
            bot_token: questions.slack_bot_token.unwrap_or_default(),
            app_token: questions.slack_app_token.unwrap_or_default(),
            ..slack
        }),
        owners: questions.owners,
        api_token: questions.api_token,
    };
    write(
        setup.path,
        &render(&answers),
        setup.force,
        setup.environment,
    )?;
    Ok(setup.path.to_path_buf())
}

/// A secret as given (`env:VARIABLE` is looked up).
fn resolve(value: &str, environment: &dyn Fn(&str) -> Option<String>) -> Result<String, InitError> {
    match value.strip_prefix("env:") {
        None => Ok(value.to_string()),
        Some(variable) => environment(variable)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| InitError::Invalid {
                field: "secret",
                message: format!("environment variable `{variable}` is not set"),
            }),
    }
}
