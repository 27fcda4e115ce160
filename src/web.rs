//! The web as tools see it: `Web::fetch` (a URL to readable text, behind the SSRF guard in
//! `guard.rs`, with redirects followed by hand so each hop is checked), `Web::search` (the
//! configured backend, `search.rs`), and a brief cache of both. `html.rs` turns a page into
//! Markdown-ish text.

pub mod guard;
mod html;
mod search;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::WebConfig;
pub use guard::Refusal;
use guard::{AllowedHosts, GuardedResolver};
pub use search::SearchResult;

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;
/// Entries each cache holds at most.
const CACHE_ENTRIES: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("`{url}` is not a valid URL: {message}")]
    InvalidUrl { url: String, message: String },
    #[error("only http:// and https:// URLs can be fetched, not `{0}:`")]
    Scheme(String),
    #[error("URLs with a user name or password are refused")]
    Credentials,
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("a redirect from {from} has no usable Location")]
    BadRedirect { from: String },
    #[error("no answer within {0} seconds")]
    Timeout(u64),
    #[error("the request to {url} failed: {message}")]
    Request { url: String, message: String },
    #[error("{0} content cannot be turned into text")]
    Unsupported(String),
    #[error("no search backend is configured (`[web.search]`)")]
    NoSearch,
    #[error("the {backend} search failed: {message}")]
    Search {
        backend: &'static str,
        message: String,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A fetched page as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The URL after redirects.
    pub url: String,
    pub status: u16,
    pub content_type: String,
    pub text: String,
    /// The body was longer than `[web] max_fetch_kb` and was cut.
    pub truncated: bool,
}

/// The daemon's web access, shared by every agent's tools.
pub struct Web {
    config: WebConfig,
    allowed: AllowedHosts,
    /// Follows no redirect, uses no proxy, and resolves through the guard.
    fetcher: reqwest::Client,
    searcher: reqwest::Client,
    pages: Cache<String, Page>,
    searches: Cache<(String, usize), Vec<SearchResult>>,
}

impl Web {
    pub fn new(config: &WebConfig) -> Result<Self, WebError> {
        let allowed = AllowedHosts::new(&config.allow_hosts);
        let timeout = Duration::from_secs(config.fetch_timeout_secs);
        let fetcher = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                allowed: allowed.clone(),
            }))
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!(
                "spacebot/",
                env!("CARGO_PKG_VERSION"),
                " (web_fetch)"
            ))
            .build()
            .map_err(|error| WebError::Client(error.to_string()))?;
        let searcher = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("spacebot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| WebError::Client(error.to_string()))?;
        let ttl = Duration::from_secs(config.cache_secs);
        Ok(Self {
            config: config.clone(),
            allowed,
            fetcher,
            searcher,
            pages: Cache::new(ttl),
            searches: Cache::new(ttl),
        })
    }

    /// Whether `web_search` has a backend.
    pub fn can_search(&self) -> bool {
        self.config.search.is_some()
    }

    /// `url` as readable text. Every hop's host is checked by the guard (literal addresses
    /// here, names again when connecting), and the whole fetch is time-capped.
    pub async fn fetch(&self, url: &str) -> Result<Page, WebError> {
        let start = parse_url(url)?;
        if let Some(page) = self.pages.get(&start.to_string()) {
            return Ok(page);
        }
        let seconds = self.config.fetch_timeout_secs;
        let page = tokio::time::timeout(Duration::from_secs(seconds), self.fetch_uncached(&start))
            .await
            .map_err(|_| WebError::Timeout(seconds))??;
        self.pages.put(start.to_string(), page.clone());
        Ok(page)
    }

    async fn fetch_uncached(&self, start: &url::Url) -> Result<Page, WebError> {
        let mut url = start.clone();
        for _ in 0..=MAX_REDIRECTS {
            let host = url.host_str().unwrap_or_default().to_string();
            let port = url.port_or_known_default().unwrap_or(80);
            guard::check_host(&self.allowed, &host, port).await?;
            let response = self
                .fetcher
                .get(url.clone())
                .header(
                    reqwest::header::ACCEPT,
                    "text/html, text/plain, application/json, */*;q=0.5",
                )
                .send()
                .await
                .map_err(|error| request_error(&url, error))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|location| url.join(location).ok())
                    .ok_or_else(|| WebError::BadRedirect {
                        from: url.to_string(),
                    })?;
                tracing::debug!(from = %url, to = %location, "web_fetch follows a redirect");
                url = parse_url(location.as_str())?;
                continue;
            }
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let limit = usize::try_from(self.config.max_fetch_bytes).unwrap_or(usize::MAX);
            let (body, truncated) = read_capped(response, limit)
                .await
                .map_err(|error| request_error(&url, error))?;
            let text = readable(&content_type, &body, &url)?;
            return Ok(Page {
                url: url.to_string(),
                status: status.as_u16(),
                content_type,
                text,
                truncated,
            });
        }
        Err(WebError::TooManyRedirects)
    }

    /// Up to `count` results for `query` from the configured backend.
    pub async fn search(&self, query: &str, count: usize) -> Result<Vec<SearchResult>, WebError> {
        let config = self.config.search.as_ref().ok_or(WebError::NoSearch)?;
        let key = (query.to_string(), count);
        if let Some(results) = self.searches.get(&key) {
            return Ok(results);
        }
        let timeout = Duration::from_secs(self.config.fetch_timeout_secs);
        let results = search::search(&self.searcher, config, query, count, timeout).await?;
        self.searches.put(key, results.clone());
        Ok(results)
    }
}

fn parse_url(text: &str) -> Result<url::Url, WebError> {
    let url = url::Url::parse(text.trim()).map_err(|error| WebError::InvalidUrl {
        url: text.to_string(),
        message: error.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(WebError::Scheme(url.scheme().to_string()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(WebError::Credentials);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(WebError::InvalidUrl {
            url: text.to_string(),
            message: "it has no host".to_string(),
        });
    }
    Ok(url)
}

fn request_error(url: &url::Url, error: reqwest::Error) -> WebError {
    // The guard's refusal travels inside reqwest's connect error; show it, not the wrapper.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(refusal) = cause.downcast_ref::<Refusal>() {
            return WebError::Refused(refusal.clone());
        }
        source = cause.source();
    }
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    WebError::Request {
        url: url.to_string(),
        message,
    }
}

/// Reads at most `limit` bytes of the body; `true` when there was more.
async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// The body as text a model reads: HTML to Markdown-ish text; JSON, XML and plain text as
/// they are; PDF and other binary content refused.
fn readable(content_type: &str, body: &[u8], url: &url::Url) -> Result<String, WebError> {
    let text = String::from_utf8_lossy(body);
    let looks_html = content_type.contains("html")
        || (content_type.is_empty() && text.trim_start().starts_with('<'));
    if looks_html {
        return Ok(html::to_text(&text, Some(url)));
    }
    let textual = content_type.starts_with("text/")
        || content_type.contains("json")
        || content_type.contains("xml")
        || content_type.contains("javascript")
        || content_type.contains("yaml")
        || content_type.contains("toml");
    if textual || (content_type.is_empty() && !body.contains(&0)) {
        return Ok(text.into_owned());
    }
    let kind = content_type
        .split(';')
        .next()
        .filter(|kind| !kind.is_empty())
        .unwrap_or("binary");
    Err(WebError::Unsupported(kind.to_string()))
}

/// A small time-limited map; when full, expired entries go, then the oldest.
struct Cache<Key, Value> {
    ttl: Duration,
    entries: Mutex<HashMap<Key, (Instant, Value)>>,
}

impl<Key: Eq + Hash + Clone, Value: Clone> Cache<Key, Value> {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &Key) -> Option<Value> {
        // A poisoned cache is treated as empty.
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(stored, _)| stored.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    fn put(&self, key: Key, value: Value) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CACHE_ENTRIES {
            entries.retain(|_, (stored, _)| stored.elapsed() < self.ttl);
        }
        if entries.len() >= CACHE_ENTRIES
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (stored, _))| *stored)
                .map(|(key, _)| key.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(key, (Instant::now(), value));
    }
}
