//! `[web]`: the hosts `web_fetch` may reach inside the network, its limits, and the
//! `web_search` backend with its key.

use crate::config::{ConfigError, SearchBackend, SearchConfig, WebConfig};

use super::Resolver;
use super::raw::{RawSearch, RawWeb};

impl Resolver<'_> {
    pub(super) fn web(&self, raw: &RawWeb) -> Result<WebConfig, ConfigError> {
        let defaults = WebConfig::default();
        let mut allow_hosts = Vec::with_capacity(raw.allow_hosts.len());
        for host in &raw.allow_hosts {
            let name = host.get_ref().trim().to_ascii_lowercase();
            let name = name
                .strip_prefix('[')
                .and_then(|name| name.strip_suffix(']'))
                .map(str::to_string)
                .unwrap_or(name);
            if name.is_empty()
                || (name.contains(['/', ':', ' ']) && name.parse::<std::net::IpAddr>().is_err())
            {
                return Err(self.error(
                    Some(host.span()),
                    "web.allow_hosts",
                    format!(
                        "`{}` is not a host name or address (write `wiki.internal` or \
                         `10.0.0.5`, without scheme, port or path)",
                        host.get_ref()
                    ),
                ));
            }
            allow_hosts.push(name);
        }
        let fetch_timeout_secs = self.at_least_one(
            raw.fetch_timeout_secs.as_ref(),
            "web.fetch_timeout_secs",
            defaults.fetch_timeout_secs,
        )?;
        let max_fetch_bytes = self
            .at_least_one(
                raw.max_fetch_kb.as_ref(),
                "web.max_fetch_kb",
                defaults.max_fetch_bytes >> 10,
            )?
            .saturating_mul(1024);
        Ok(WebConfig {
            allow_hosts,
            fetch_timeout_secs,
            max_fetch_bytes,
            cache_secs: raw.cache_secs.unwrap_or(defaults.cache_secs),
            search: raw
                .search
                .as_ref()
                .map(|raw| self.search(raw))
                .transpose()?,
        })
    }

    fn search(&self, raw: &RawSearch) -> Result<SearchConfig, ConfigError> {
        let backend = *raw.backend.get_ref();
        let url = match (&raw.url, backend) {
            (Some(url), _) => {
                let text = url.get_ref().trim().trim_end_matches('/');
                if !(text.starts_with("http://") || text.starts_with("https://"))
                    || url::Url::parse(text).is_err()
                {
                    return Err(self.error(
                        Some(url.span()),
                        "web.search.url",
                        format!("`{}` is not an http:// or https:// URL", url.get_ref()),
                    ));
                }
                text.to_string()
            }
            (None, SearchBackend::Searxng) => {
                return Err(self.error(
                    Some(raw.backend.span()),
                    "web.search.url",
                    "the SearXNG backend needs the instance's URL, e.g. `url = \
                     \"https://searx.example.org\"`",
                ));
            }
            (None, SearchBackend::Brave) => "https://api.search.brave.com".to_string(),
            (None, SearchBackend::Tavily) => "https://api.tavily.com".to_string(),
        };
        let api_key = raw
            .api_key
            .as_ref()
            .map(|key| self.secret(key, "web.search.api_key"))
            .transpose()?;
        if api_key.is_none() && backend != SearchBackend::Searxng {
            return Err(self.error(
                Some(raw.backend.span()),
                "web.search.api_key",
                format!(
                    "the {} backend needs a key, e.g. `api_key = \"env:{}_API_KEY\"`",
                    backend.as_str(),
                    backend.as_str().to_ascii_uppercase()
                ),
            ));
        }
        Ok(SearchConfig {
            backend,
            url,
            api_key,
        })
    }
}
