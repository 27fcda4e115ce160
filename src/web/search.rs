//! `web_search` backends: SearXNG (any instance, no key), Brave and Tavily (keys), each read
//! into the same title, URL and snippet.

use std::time::Duration;

use serde_json::{Value, json};

use crate::config::{SearchBackend, SearchConfig};

use super::WebError;

/// One search result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SearchResult {
    pub title: String,
    pub url: String,
    pub snippet: String,
}

/// Bytes of a backend's answer read at most.
const MAX_ANSWER_BYTES: usize = 2 << 20;

pub(super) async fn search(
    http: &reqwest::Client,
    config: &SearchConfig,
    query: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<SearchResult>, WebError> {
    let failed = |message: String| WebError::Search {
        backend: config.backend.as_str(),
        message,
    };
    let key = config.api_key.clone().unwrap_or_default();
    let request = match config.backend {
        SearchBackend::Searxng => http
            .get(format!("{}/search", config.url))
            .query(&[("q", query), ("format", "json")]),
        SearchBackend::Brave => http
            .get(format!("{}/res/v1/web/search", config.url))
            .query(&[("q", query), ("count", &count.to_string())])
            .header("X-Subscription-Token", key),
        SearchBackend::Tavily => http
            .post(format!("{}/search", config.url))
            .bearer_auth(key)
            .json(&json!({"query": query, "max_results": count})),
    };
    let response = request
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(timeout)
        .send()
        .await
        .map_err(|error| failed(without_url(error)))?;
    let status = response.status();
    let body = super::read_capped(response, MAX_ANSWER_BYTES)
        .await
        .map_err(|error| failed(without_url(error)))?
        .0;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        return Err(failed(format!(
            "HTTP {status}: {}",
            text.chars().take(300).collect::<String>()
        )));
    }
    let answer: Value = serde_json::from_slice(&body)
        .map_err(|error| failed(format!("the answer is not JSON: {error}")))?;
    let (results, snippet_key) = match config.backend {
        SearchBackend::Searxng => (&answer["results"], "content"),
        SearchBackend::Brave => (&answer["web"]["results"], "description"),
        SearchBackend::Tavily => (&answer["results"], "content"),
    };
    let text = |item: &Value, key: &str| {
        let value = item[key].as_str().unwrap_or_default();
        super::html::decode_entities(&strip_tags(value))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    Ok(results
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["url"].is_string())
        .take(count)
        .map(|item| SearchResult {
            title: text(item, "title"),
            url: item["url"].as_str().unwrap_or_default().to_string(),
            snippet: text(item, snippet_key),
        })
        .collect())
}

/// Brave marks matches with `<strong>`.
fn strip_tags(text: &str) -> String {
    let mut output = String::with_capacity(text.len());
    let mut inside = false;
    for character in text.chars() {
        match character {
            '<' => inside = true,
            '>' if inside => inside = false,
            _ if !inside => output.push(character),
            _ => {}
        }
    }
    output
}

/// A request error without the URL, which for Brave carries the query and not the key, but
/// is noise to a model.
fn without_url(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}
