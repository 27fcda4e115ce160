//! The checks of `spacebot init`: one call per credential to the service it belongs to, with
//! a short timeout, no redirects and a bounded answer.

use std::time::Duration;

use serde_json::Value;

use super::{Checked, DiscordChoice, InitError, ProviderChoice, SlackChoice, TelegramChoice};

/// How long one check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest reply body read from a checked service.
const LONGEST_REPLY: usize = 1 << 20;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_platform_ids_not_usernames() {
        assert!(check_owner("telegram:123456789").is_ok());
        assert!(check_owner("slack:U024BE7LH").is_ok());
        assert!(check_owner("telegram:@alice").is_err());
        assert!(check_owner("matrix:1").is_err());
        assert!(check_owner("123").is_err());
    }
}
