//! The dashboard: a single-page app of plain HTML, CSS and ES modules under `dashboard/`,
//! embedded in the binary and served at `/` and `/dashboard/{file}` with a strict
//! Content-Security-Policy (no inline script, everything from this origin). The page and its
//! files are public (they hold no data); every call they make goes through the guarded API
//! with the token the page asks for.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// Only this origin's files, scripts, styles and connections (images also from `blob:`: the
/// previews of attachments, fetched with the token); no plugin, frame or `<base>`.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// Every file of the dashboard: its path under `/dashboard/`, its type and its bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../dashboard/style.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../../dashboard/icon.svg"),
    ),
    ("app.js", JAVASCRIPT, include_str!("../../dashboard/app.js")),
    ("api.js", JAVASCRIPT, include_str!("../../dashboard/api.js")),
    ("dom.js", JAVASCRIPT, include_str!("../../dashboard/dom.js")),
    (
        "files.js",
        JAVASCRIPT,
        include_str!("../../dashboard/files.js"),
    ),
    (
        "views/access.js",
        JAVASCRIPT,
        include_str!("../../dashboard/views/access.js"),
    ),
    (
        "views/activity.js",
        JAVASCRIPT,
        include_str!("../../dashboard/views/activity.js"),
    ),
    (
        "views/agents.js",
        JAVASCRIPT,
        include_str!("../../dashboard/views/agents.js"),
    ),
    (
        "views/chat.js",
        JAVASCRIPT,
        include_str!("../../dashboard/views/chat.js"),
    ),
    (
        "views/conversations.js",
        JAVASCRIPT,
        include_str!("../../dashboard/views/conversations.js"),
    ),
    (
        "views/cron.js",
        JAVASCRIPT,
        include_str!("../../dashboard/views/cron.js"),
    ),
    (
        "views/health.js",
        JAVASCRIPT,
        include_str!("../../dashboard/views/health.js"),
    ),
    (
        "views/memories.js",
        JAVASCRIPT,
        include_str!("../../dashboard/views/memories.js"),
    ),
    (
        "views/usage.js",
        JAVASCRIPT,
        include_str!("../../dashboard/views/usage.js"),
    ),
];

/// `GET /`: the page.
pub async fn page() -> Response {
    asset_response(
        "text/html; charset=utf-8",
        include_str!("../../dashboard/index.html"),
    )
}

/// `GET /dashboard/{file}`: one of the page's files; any other name is a 404.
pub async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, content_type, body)) => asset_response(content_type, body),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("the dashboard has no file `{path}`"),
        )
        .into_response(),
    }
}

fn asset_response(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Served from the binary: a new binary may bring new files under the same names.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file added under `dashboard/` but not to `ASSETS` would be a 404 in the browser.
    #[test]
    fn every_file_of_the_dashboard_is_served() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
        let mut folders = vec![root.clone()];
        let mut files = Vec::new();
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).expect("dashboard folder") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    folders.push(path);
                } else {
                    let name = path.strip_prefix(&root).expect("inside").to_string_lossy();
                    files.push(name.into_owned());
                }
            }
        }
        for file in files.iter().filter(|file| *file != "index.html") {
            assert!(
                ASSETS.iter().any(|(name, _, _)| name == file),
                "dashboard/{file} is not in ASSETS"
            );
        }
        assert_eq!(files.len(), ASSETS.len() + 1, "{files:?}");
    }
}
