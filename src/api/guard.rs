//! What every request must show before a route runs. `Host` must be an IP address, `localhost`
//! or a name in `[api] allowed_hosts`: a page that rebinds its own domain name to 127.0.0.1
//! sends that name, and is refused. A state-changing request from a browser must come from
//! the API's own origin (the dashboard), and must carry a JSON body unless it presents the
//! token: a cross-site form post can do neither. When a token is configured, every route but
//! `/api/health` needs it. Stored files are read only by the API's own pages
//! (`own_pages_only`).

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiState};

/// Refuses a request whose `Host` or `Origin` betrays another site.
pub async fn same_site(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let config = state.config();
    if !host_allowed(host, &config.api.allowed_hosts) {
        tracing::warn!(%host, "a request for another host was refused (DNS rebinding?)");
        return ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "`{host}` is not a name this API answers to; add it to [api] allowed_hosts if \
                 a proxy serves the API under it"
            ),
        )
        .into_response();
    }
    if changes_state(request.method()) {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("null");
            if !same_origin(origin, host) {
                tracing::warn!(%origin, "a cross-site request was refused");
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("requests from `{origin}` may not change anything here"),
                )
                .into_response();
            }
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            // JSON Lines (a memory import) is JSON too; like JSON, no form can send it.
            .is_some_and(|value| {
                value.starts_with("application/json") || value.starts_with("application/x-ndjson")
            });
        let authenticated = config.api.token.as_deref().is_some_and(|token| {
            presented_token(headers).is_some_and(|presented| constant_time_equals(presented, token))
        });
        if request.method() != Method::DELETE && !json && !authenticated {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a request that changes something needs a JSON body (`Content-Type: \
                 application/json`, `{}` will do)",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// Requires the bearer token, when one is configured.
pub async fn token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let config = state.config();
    let Some(token) = &config.api.token else {
        return next.run(request).await;
    };
    if presented_token(request.headers())
        .is_some_and(|presented| constant_time_equals(presented, token))
    {
        next.run(request).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a valid `Authorization: Bearer <token>` header is required",
        )
        .into_response()
    }
}

/// Refuses a read of a stored file that another site's page asked for: an `<img>`, a link
/// or a fetch from elsewhere says so in `Sec-Fetch-Site` (or a foreign `Origin`). The
/// dashboard's own fetches and an address typed by hand pass. This matters when no token is
/// configured, and keeps another site from even showing the files of a conversation.
pub async fn own_pages_only(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let foreign_origin = headers
        .get(header::ORIGIN)
        .is_some_and(|origin| !same_origin(origin.to_str().unwrap_or("null"), host));
    let foreign_site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|site| matches!(site, "cross-site" | "same-site"));
    if foreign_origin || foreign_site {
        tracing::warn!("another site's page asked for a stored file; refused");
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "files are served only to this API's own pages",
        )
        .into_response();
    }
    next.run(request).await
}

/// Methods that change state. DELETE cannot be sent across sites without a preflight this
/// API never grants, but is held to the same origin rule.
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn presented_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
}

fn constant_time_equals(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// The host name of a `Host` header value (without the port, IPv6 brackets kept off).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.chars().all(|character| character.is_ascii_digit()) {
            name
        } else {
            host
        }
    })
}

fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host);
    !name.is_empty()
        && (name.parse::<IpAddr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || allowed
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(name)))
}

/// Whether `origin` (`scheme://host[:port]`) is the API's own origin as the request names it.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https") && rest.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_localhost_and_configured_names_are_hosts() {
        let allowed = vec!["bot.example.org".to_string()];
        for host in [
            "127.0.0.1:19898",
            "localhost:19898",
            "[::1]:19898",
            "192.168.1.5",
            "bot.example.org",
            "BOT.example.org:443",
        ] {
            assert!(host_allowed(host, &allowed), "{host}");
        }
        for host in [
            "evil.example.com:19898",
            "",
            "127.0.0.1.nip.io",
            "localhost.evil.com",
        ] {
            assert!(!host_allowed(host, &allowed), "{host}");
        }
    }

    #[test]
    fn only_the_apis_own_origin_may_change_state() {
        assert!(same_origin("http://127.0.0.1:19898", "127.0.0.1:19898"));
        assert!(!same_origin("http://evil.example.com", "127.0.0.1:19898"));
        assert!(!same_origin("http://127.0.0.1:8000", "127.0.0.1:19898"));
        assert!(!same_origin("null", "127.0.0.1:19898"));
    }
}
