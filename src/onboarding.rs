//! `spacebot init`: the first run. It checks each credential it is given with one call to the
//! service it belongs to (the provider's model list, Telegram's `getMe`, Discord's
//! `/users/@me`, Slack's `auth.test` and `apps.connections.open`), then writes a commented
//! config, readable by its owner alone, that `Config` has parsed before it is written. The
//! questions (interactive or as flags) are the CLI's; this module only checks and writes.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::config::Config;

/// How long one check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest reply body read from a checked service.
const LONGEST_REPLY: usize = 1 << 20;

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

/// The HTTP client of the checks: no redirects to follow, a short timeout.
pub fn http_client() -> Result<reqwest::Client, InitError> {
    reqwest::Client::builder()
        .timeout(CHECK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| InitError::Invalid {
            field: "http client",
            message: error.to_string(),
        })
}

/// Where a URL-valued answer must point: http or https, nothing else.
pub fn check_url(field: &'static str, url: &str) -> Result<String, InitError> {
    let parsed = url::Url::parse(url).map_err(|error| InitError::Invalid {
        field,
        message: format!("`{url}`: {error}"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(InitError::Invalid {
            field,
            message: format!("`{url}` is not an http(s) URL"),
        });
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Sends a check and reads its JSON answer (bounded).
async fn call(
    service: &'static str,
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<Value, InitError> {
    let unreachable = |message: String| InitError::Unreachable {
        service,
        url: url.to_string(),
        message,
    };
    let response = request.send().await.map_err(|error| {
        // reqwest's own message names only the outer failure; the causes say why.
        let causes = std::iter::successors(
            Some(&error as &(dyn std::error::Error + 'static)),
            |error| error.source(),
        );
        unreachable(
            causes
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": "),
        )
    })?;
    let status = response.status();
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| unreachable(error.to_string()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > LONGEST_REPLY {
            return Err(InitError::Unexpected {
                service,
                url: url.to_string(),
                message: "the answer is larger than 1 MiB".to_string(),
            });
        }
    }
    let text = String::from_utf8_lossy(&body);
    if !status.is_success() {
        return Err(InitError::Refused {
            service,
            url: url.to_string(),
            status: status.as_u16(),
            body: text.chars().take(300).collect(),
        });
    }
    serde_json::from_slice(&body).map_err(|error| InitError::Unexpected {
        service,
        url: url.to_string(),
        message: format!(
            "not JSON ({error}): {}",
            text.chars().take(200).collect::<String>()
        ),
    })
}

/// Lists the provider's models with its key: one call that proves the URL and the key.
pub async fn check_provider(
    http: &reqwest::Client,
    provider: &ProviderChoice,
) -> Result<Checked, InitError> {
    let (url, request) = match provider {
        ProviderChoice::OpenAi { api_key, base_url } => {
            let base = base_url.as_deref().unwrap_or("https://api.openai.com/v1");
            let url = format!("{base}/models");
            let request = http.get(&url).bearer_auth(api_key);
            (url, request)
        }
        ProviderChoice::Anthropic { api_key, base_url } => {
            let base = base_url.as_deref().unwrap_or("https://api.anthropic.com");
            let url = format!("{base}/v1/models");
            let request = http
                .get(&url)
                .header("x-api-key", api_key)
                .header("anthropic-version", "2023-06-01");
            (url, request)
        }
        ProviderChoice::Local { base_url } => {
            let url = format!("{base_url}/models");
            let request = http.get(&url);
            (url, request)
        }
    };
    let answer = call("LLM provider", request, &url).await?;
    let models: Vec<String> = answer["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|model| model["id"].as_str().map(str::to_string))
        .collect();
    Ok(Checked {
        summary: format!(
            "{} answered with {} model(s)",
            provider.name(),
            models.len()
        ),
        first_model: models.into_iter().next(),
    })
}

/// Telegram's `getMe`: the bot the token belongs to.
pub async fn check_telegram(
    http: &reqwest::Client,
    telegram: &TelegramChoice,
) -> Result<Checked, InitError> {
    let base = telegram
        .api_url
        .as_deref()
        .unwrap_or("https://api.telegram.org");
    let url = format!("{base}/bot{}/getMe", telegram.token);
    // The token is part of the URL: errors name the method, not the URL.
    let shown = format!("{base}/bot…/getMe");
    let answer = call(
        "Telegram",
        http.post(&url).json(&serde_json::json!({})),
        &shown,
    )
    .await?;
    let username = answer["result"]["username"].as_str();
    match (answer["ok"].as_bool(), username) {
        (Some(true), Some(username)) => Ok(Checked {
            summary: format!("Telegram bot @{username}"),
            first_model: None,
        }),
        _ => Err(InitError::Unexpected {
            service: "Telegram",
            url: shown,
            message: format!("getMe said {answer}"),
        }),
    }
}

/// Discord's `GET /users/@me` with the bot token.
pub async fn check_discord(
    http: &reqwest::Client,
    discord: &DiscordChoice,
) -> Result<Checked, InitError> {
    let base = discord.api_base.as_deref().unwrap_or("https://discord.com");
    let url = format!("{base}/api/v10/users/@me");
    let request = http
        .get(&url)
        .header("authorization", format!("Bot {}", discord.token));
    let answer = call("Discord", request, &url).await?;
    match (answer["username"].as_str(), answer["id"].as_str()) {
        (Some(username), Some(id)) => Ok(Checked {
            summary: format!("Discord bot {username} ({id})"),
            first_model: None,
        }),
        _ => Err(InitError::Unexpected {
            service: "Discord",
            url,
            message: format!("/users/@me said {answer}"),
        }),
    }
}

/// Slack's `auth.test` with the bot token, and `apps.connections.open` with the app token
/// (what Socket Mode needs).
pub async fn check_slack(
    http: &reqwest::Client,
    slack: &SlackChoice,
) -> Result<Checked, InitError> {
    let base = slack.api_url.as_deref().unwrap_or("https://slack.com/api");
    let refused = |url: &str, answer: &Value| InitError::Refused {
        service: "Slack",
        url: url.to_string(),
        status: 200,
        body: answer["error"].as_str().unwrap_or("not ok").to_string(),
    };
    let url = format!("{base}/auth.test");
    let answer = call("Slack", http.post(&url).bearer_auth(&slack.bot_token), &url).await?;
    if answer["ok"].as_bool() != Some(true) {
        return Err(refused(&url, &answer));
    }
    let team = answer["team"].as_str().unwrap_or("?").to_string();
    let user = answer["user"].as_str().unwrap_or("?").to_string();
    let socket_url = format!("{base}/apps.connections.open");
    let socket = call(
        "Slack",
        http.post(&socket_url).bearer_auth(&slack.app_token),
        &socket_url,
    )
    .await?;
    if socket["ok"].as_bool() != Some(true) {
        return Err(refused(&socket_url, &socket));
    }
    Ok(Checked {
        summary: format!("Slack app {user} in workspace {team} (Socket Mode ready)"),
        first_model: None,
    })
}

/// Whether `owner` is a platform user id the access rules understand.
pub fn check_owner(owner: &str) -> Result<(), InitError> {
    let invalid = |message: &str| InitError::Invalid {
        field: "owner",
        message: format!("`{owner}`: {message}"),
    };
    let (platform, id) = owner
        .split_once(':')
        .ok_or_else(|| invalid("expected platform:id, e.g. telegram:123456789"))?;
    let valid_id = match platform {
        "telegram" | "discord" => !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()),
        "slack" => !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()),
        _ => return Err(invalid("the platform is telegram, discord or slack")),
    };
    if !valid_id {
        return Err(invalid(
            "a user id is numeric on Telegram and Discord, and like U024BE7LH on Slack (never \
             a username)",
        ));
    }
    Ok(())
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

/// A TOML string literal.
fn quoted(value: &str) -> String {
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

    #[test]
    fn owners_are_platform_ids_not_usernames() {
        assert!(check_owner("telegram:123456789").is_ok());
        assert!(check_owner("slack:U024BE7LH").is_ok());
        assert!(check_owner("telegram:@alice").is_err());
        assert!(check_owner("matrix:1").is_err());
        assert!(check_owner("123").is_err());
    }
}
