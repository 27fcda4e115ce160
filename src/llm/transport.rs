//! The HTTP transport rig-core's provider clients send through. It is reqwest underneath,
//! and it watches each exchange for what rig drops on the way: the status, body and
//! rate-limit headers of a refused request, and, tapped from the event stream, the finish
//! reason, a refusal, a mid-stream error and the prompt-cache token counts.

use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use memchr::memmem::Finder;
use rig::http_client::{
    Error as HttpError, HttpClientExt, LazyBody, MultipartForm, Request, Response,
    StreamingResponse,
};
use serde_json::Value;

/// What one HTTP exchange with a provider showed beyond what rig returns.
#[derive(Debug, Default, Clone)]
pub struct Exchange {
    /// The status of a request that was refused (not 2xx), with its body.
    pub refused: Option<(u16, String)>,
    /// How long the provider asked to wait, from `retry-after`, `retry-after-ms` or the
    /// rate-limit reset headers.
    pub retry_after: Option<Duration>,
    /// `finish_reason` (OpenAI) or `stop_reason` (Anthropic) of the last choice.
    pub finish_reason: Option<String>,
    /// Refusal text (OpenAI `refusal` deltas), which rig does not pass on.
    pub refusal: String,
    /// An error the provider sent inside the stream (Anthropic `event: error`).
    pub stream_error: Option<String>,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

/// Shared between the transport and the call that reads it afterwards.
#[derive(Debug, Default, Clone)]
pub struct ExchangeLog(Arc<Mutex<Exchange>>);

impl ExchangeLog {
    pub(super) fn lock(&self) -> MutexGuard<'_, Exchange> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn snapshot(&self) -> Exchange {
        self.lock().clone()
    }
}

/// reqwest for rig, recording into `log`.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    pub http: reqwest::Client,
    pub log: ExchangeLog,
}

impl Transport {
    /// Sends a request whose answer is an event stream and returns the response to read,
    /// once its status says the request was taken; a refusal is logged and is the error.
    pub(super) async fn open_stream(
        &self,
        request: Request<Vec<u8>>,
    ) -> Result<reqwest::Response, HttpError> {
        let response = self
            .request(request)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(instance)?;
        if !response.status().is_success() {
            return Err(refused(&self.log, response).await);
        }
        Ok(response)
    }

    fn request<T: Into<Bytes>>(&self, request: Request<T>) -> reqwest::RequestBuilder {
        let (parts, body) = request.into_parts();
        self.http
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body.into())
    }
}

pub(super) fn instance(error: impl std::error::Error + Send + Sync + 'static) -> HttpError {
    HttpError::Instance(Box::new(error))
}

/// Records a refused request and turns it into rig's status error.
/// Sends a request whose answer is read whole: a refusal is read and logged as one, else the
/// status and headers now and the body when rig asks for it.
async fn read_whole<U>(
    pending: reqwest::RequestBuilder,
    log: ExchangeLog,
) -> rig::http_client::Result<Response<LazyBody<U>>>
where
    U: From<Bytes> + rig::wasm_compat::WasmCompatSend + 'static,
{
    let response = pending.send().await.map_err(instance)?;
    if !response.status().is_success() {
        return Err(refused(&log, response).await);
    }
    let mut builder = Response::builder().status(response.status());
    if let Some(headers) = builder.headers_mut() {
        *headers = response.headers().clone();
    }
    let body: LazyBody<U> = Box::pin(async move {
        let bytes = response.bytes().await.map_err(instance)?;
        Ok(U::from(bytes))
    });
    builder.body(body).map_err(HttpError::Protocol)
}

async fn refused(log: &ExchangeLog, response: reqwest::Response) -> HttpError {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = response.text().await.unwrap_or_default();
    let mut exchange = log.lock();
    exchange.refused = Some((status.as_u16(), body.clone()));
    exchange.retry_after = retry_after;
    HttpError::InvalidStatusCodeWithMessage(status, body)
}

impl HttpClientExt for Transport {
    fn send<T, U>(
        &self,
        request: Request<T>,
    ) -> impl Future<Output = rig::http_client::Result<Response<LazyBody<U>>>>
    + rig::wasm_compat::WasmCompatSend
    + 'static
    where
        T: Into<Bytes>,
        T: rig::wasm_compat::WasmCompatSend,
        U: From<Bytes>,
        U: rig::wasm_compat::WasmCompatSend + 'static,
    {
        let pending = self.request(request);
        let log = self.log.clone();
        read_whole(pending, log)
    }

    fn send_multipart<U>(
        &self,
        request: Request<MultipartForm>,
    ) -> impl Future<Output = rig::http_client::Result<Response<LazyBody<U>>>>
    + rig::wasm_compat::WasmCompatSend
    + 'static
    where
        U: From<Bytes>,
        U: rig::wasm_compat::WasmCompatSend + 'static,
    {
        let (parts, body) = request.into_parts();
        let pending = self
            .http
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .multipart(reqwest::multipart::Form::from(body));
        let log = self.log.clone();
        read_whole(pending, log)
    }

    fn send_streaming<T>(
        &self,
        request: Request<T>,
    ) -> impl Future<Output = rig::http_client::Result<StreamingResponse>>
    + rig::wasm_compat::WasmCompatSend
    where
        T: Into<Bytes>,
    {
        let pending = self.request(request);
        let log = self.log.clone();
        async move {
            let response = pending.send().await.map_err(instance)?;
            if !response.status().is_success() {
                return Err(refused(&log, response).await);
            }
            let mut builder = Response::builder()
                .status(response.status())
                .version(response.version());
            if let Some(headers) = builder.headers_mut() {
                *headers = response.headers().clone();
            }
            let mut tap = Tap::new(log);
            let mut bytes = response.bytes_stream();
            let stream =
                futures::stream::poll_fn(move |context| match bytes.poll_next_unpin(context) {
                    Poll::Ready(Some(Ok(chunk))) => {
                        tap.feed(&chunk);
                        Poll::Ready(Some(Ok(chunk)))
                    }
                    Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(instance(error)))),
                    Poll::Ready(None) => {
                        tap.finish();
                        Poll::Ready(None)
                    }
                    Poll::Pending => Poll::Pending,
                });
            builder
                .body(Box::pin(stream) as rig::http_client::sse::BoxedStream)
                .map_err(HttpError::Protocol)
        }
    }
}

/// Splits a byte stream into lines (without their `\n`), whatever its chunking.
#[derive(Default)]
pub(super) struct Lines {
    /// The start of a line that has not ended yet.
    partial: Vec<u8>,
}

impl Lines {
    pub(super) fn feed(&mut self, chunk: &[u8], mut line: impl FnMut(&[u8])) {
        let mut rest = chunk;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            if self.partial.is_empty() {
                line(&rest[..end]);
            } else {
                self.partial.extend_from_slice(&rest[..end]);
                line(&self.partial);
                self.partial.clear();
            }
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    /// The stream ended: what is left is its last line.
    pub(super) fn finish(&mut self, mut line: impl FnMut(&[u8])) {
        line(&self.partial);
        self.partial.clear();
    }
}

/// Reads the event stream's `data:` lines beside rig, looking only at the few fields rig
/// drops. Lines without those words are passed over with a substring check.
struct Tap {
    log: ExchangeLog,
    lines: Lines,
}

impl Tap {
    fn new(log: ExchangeLog) -> Self {
        Self {
            log,
            lines: Lines::default(),
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        let log = &self.log;
        self.lines.feed(chunk, |line| tap_line(log, line));
    }

    fn finish(&mut self) {
        let log = &self.log;
        self.lines.finish(|line| tap_line(log, line));
    }
}

fn tap_line(log: &ExchangeLog, line: &[u8]) {
    let Some(data) = line.strip_prefix(b"data:") else {
        return;
    };
    let markers = &*MARKERS;
    let interesting = has_string_value(data, &markers.finish_reason)
        || has_string_value(data, &markers.stop_reason)
        || has_string_value(data, &markers.refusal)
        || markers.error.find(data).is_some()
        || markers.cache.find(data).is_some();
    if !interesting {
        return;
    }
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    note_event(&mut log.lock(), &event);
}

/// The keys that make a streamed event worth parsing. Every OpenAI chunk carries
/// `"finish_reason":null`, so the searchers are built once, not per line.
struct Markers {
    finish_reason: Finder<'static>,
    stop_reason: Finder<'static>,
    refusal: Finder<'static>,
    error: Finder<'static>,
    cache: Finder<'static>,
}

static MARKERS: LazyLock<Markers> = LazyLock::new(|| Markers {
    finish_reason: Finder::new("\"finish_reason\""),
    stop_reason: Finder::new("\"stop_reason\""),
    refusal: Finder::new("\"refusal\""),
    error: Finder::new("\"error\""),
    cache: Finder::new("cache_"),
});

/// Whether the quoted key `key` finds appears followed by a string value (not `null`).
fn has_string_value(data: &[u8], key: &Finder<'_>) -> bool {
    key.find_iter(data).any(|position| {
        let after = &data[position + key.needle().len()..];
        let after = after.trim_ascii_start();
        after
            .strip_prefix(b":")
            .is_some_and(|value| value.trim_ascii_start().starts_with(b"\""))
    })
}

/// Takes what rig drops from one streamed event.
pub(super) fn note_event(exchange: &mut Exchange, event: &Value) {
    if event["type"] == "error" || event.get("error").is_some_and(Value::is_object) {
        let error = &event["error"];
        let message = error["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| error.to_string());
        let kind = error["type"].as_str().unwrap_or("error");
        exchange.stream_error = Some(format!("{kind}: {message}"));
    }
    for choice in event["choices"].as_array().into_iter().flatten() {
        if let Some(reason) = choice["finish_reason"].as_str() {
            exchange.finish_reason = Some(reason.to_string());
        }
        if let Some(refusal) = choice["delta"]["refusal"].as_str() {
            exchange.refusal.push_str(refusal);
        }
        if let Some(refusal) = choice["message"]["refusal"].as_str() {
            exchange.refusal.push_str(refusal);
        }
    }
    if let Some(reason) = event["delta"]["stop_reason"].as_str() {
        exchange.finish_reason = Some(reason.to_string());
    }
    let usage = if event["message"]["usage"].is_object() {
        &event["message"]["usage"]
    } else {
        &event["usage"]
    };
    if let Some(read) = usage["cache_read_input_tokens"].as_u64() {
        exchange.cache_read_tokens = exchange.cache_read_tokens.max(read);
    }
    if let Some(written) = usage["cache_creation_input_tokens"].as_u64() {
        exchange.cache_write_tokens = exchange.cache_write_tokens.max(written);
    }
}

/// How long a refusing provider asked to wait: `retry-after-ms`, `retry-after` (seconds or an
/// HTTP date is not parsed: seconds only), Anthropic's `anthropic-ratelimit-*-reset` (RFC
/// 3339 instants) or OpenAI's `x-ratelimit-reset-*` (`1s`, `6m0s`, `20ms`).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(milliseconds) = header("retry-after-ms").and_then(|value| value.parse().ok()) {
        return Some(Duration::from_millis(milliseconds));
    }
    if let Some(seconds) = header("retry-after").and_then(|value| value.trim().parse::<f64>().ok())
    {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let now = chrono::Utc::now();
    let anthropic = [
        "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-input-tokens-reset",
        "anthropic-ratelimit-output-tokens-reset",
    ]
    .into_iter()
    .filter_map(&header)
    .filter_map(|value| chrono::DateTime::parse_from_rfc3339(value).ok())
    .filter_map(|reset| (reset.with_timezone(&chrono::Utc) - now).to_std().ok())
    .max();
    if anthropic.is_some() {
        return anthropic;
    }
    ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
        .into_iter()
        .filter_map(header)
        .filter_map(go_duration)
        .max()
}

/// Parses Go-style durations such as `1s`, `6m0s`, `1h2m3.5s` or `20ms`.
fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut number = String::new();
    let mut characters = text.trim().chars().peekable();
    let mut any = false;
    while let Some(character) = characters.next() {
        if character.is_ascii_digit() || character == '.' {
            number.push(character);
            continue;
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        let unit = match character {
            'h' => 3600.0,
            'm' if characters.peek() == Some(&'s') => {
                characters.next();
                0.001
            }
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        total += value * unit;
        any = true;
    }
    if !number.is_empty() || !any {
        return None;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tap_reads_what_rig_drops_across_chunk_boundaries() {
        let log = ExchangeLog::default();
        let mut tap = Tap::new(log.clone());
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"refusal\":null},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"I can't\"},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"cache_read_input_tokens\":120,\"cache_creation_input_tokens\":7}}}\n\n",
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        );
        for piece in stream.as_bytes().chunks(7) {
            tap.feed(piece);
        }
        tap.finish();
        let exchange = log.snapshot();
        assert_eq!(exchange.refusal, "I can't");
        assert_eq!(exchange.finish_reason.as_deref(), Some("length"));
        assert_eq!(exchange.cache_read_tokens, 120);
        assert_eq!(exchange.cache_write_tokens, 7);
        assert_eq!(
            exchange.stream_error.as_deref(),
            Some("overloaded_error: Overloaded")
        );
    }

    #[test]
    fn rate_limit_headers_say_how_long_to_wait() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-ratelimit-reset-requests", "6m0s".parse().expect("value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(360)));
        headers.insert("retry-after", "7".parse().expect("value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after-ms", "250".parse().expect("value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(250)));
        assert_eq!(go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(go_duration("soon"), None);
    }
}
