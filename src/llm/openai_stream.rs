//! Reads an OpenAI-compatible chat completion stream (server-sent events) in one pass:
//! each `data:` event is parsed once into borrowed fields, its deltas go to the caller's
//! `StreamSink`, and the answer is assembled at the end. What rig's own reader drops (the
//! finish reason, refusals, an error sent inside the stream) is noted in the `ExchangeLog`
//! directly. rig's reader cost most of what streaming added to a turn: it copies the rest of
//! its buffer after every line and parses a tool call's arguments again after every fragment.

use std::borrow::Cow;

use futures::StreamExt;
use rig::completion::{CompletionError, Usage};
use rig::message::{AssistantContent, ToolCall, ToolFunction};
use serde::Deserialize;
use serde_json::Value;

use super::StreamSink;
use super::provider::Streamed;
use super::transport::{ExchangeLog, Lines, instance, note_event};

/// How much of an answer that is no event stream goes into the error.
const MAX_EXCERPT: usize = 300;

/// One `data:` event of the stream; fields it does not name are skipped unread.
#[derive(Deserialize)]
struct Chunk<'a> {
    /// `null` in some servers' usage-only chunk.
    #[serde(default, borrow)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(default)]
    usage: Option<ChunkUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Delta<'a>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<CallDelta<'a>>>,
}

#[derive(Deserialize)]
struct CallDelta<'a> {
    #[serde(default)]
    index: usize,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize)]
struct FunctionDelta<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChunkUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

/// A tool call being streamed.
struct OpenCall {
    /// The provider's `index` for it.
    index: usize,
    /// The provider's id; one is made up when the server sends none.
    id: String,
    /// The id the sink knows it by, unique within the answer.
    stream_id: String,
    name: String,
    arguments: String,
}

/// The answer as the events build it.
#[derive(Default)]
struct Answer {
    text: String,
    calls: Vec<OpenCall>,
    usage: Option<Usage>,
    done: bool,
}

impl Answer {
    /// Takes one event's data.
    fn event(&mut self, data: &str, log: &ExchangeLog, sink: &mut dyn StreamSink) {
        let data = data.trim();
        if data.is_empty() {
            return;
        }
        if data == "[DONE]" {
            self.done = true;
            return;
        }
        let chunk = match serde_json::from_str::<Chunk<'_>>(data) {
            Ok(chunk) => chunk,
            Err(error) => {
                tracing::warn!(%error, "a streamed event is not a completion chunk; passed over");
                return;
            }
        };
        if chunk.error.as_ref().is_some_and(Value::is_object) {
            if let Ok(event) = serde_json::from_str::<Value>(data) {
                note_event(&mut log.lock(), &event);
            }
            return;
        }
        if let Some(usage) = chunk.usage {
            let input = usage.prompt_tokens.unwrap_or(0);
            let total = usage.total_tokens.unwrap_or(0);
            let output = usage
                .completion_tokens
                .unwrap_or_else(|| total.saturating_sub(input));
            self.usage = Some(Usage {
                input_tokens: input,
                output_tokens: output,
                total_tokens: total.max(input + output),
                cached_input_tokens: usage
                    .prompt_tokens_details
                    .and_then(|details| details.cached_tokens)
                    .unwrap_or(0),
            });
        }
        let Some(choice) = chunk.choices.into_iter().flatten().next() else {
            return;
        };
        if let Some(reason) = choice.finish_reason {
            log.lock().finish_reason = Some(reason.into_owned());
        }
        let delta = choice.delta;
        if let Some(refusal) = delta.refusal.filter(|refusal| !refusal.is_empty()) {
            log.lock().refusal.push_str(&refusal);
        }
        for call in delta.tool_calls.into_iter().flatten() {
            self.call_delta(call, sink);
        }
        // Reasoning (`reasoning_content`) is neither shown nor sent back: DeepSeek refuses it.
        if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
            sink.text(&text);
            self.text.push_str(&text);
        }
    }

    fn call_delta(&mut self, delta: CallDelta<'_>, sink: &mut dyn StreamSink) {
        let id = delta.id.filter(|id| !id.is_empty());
        let (name, fragment) = match delta.function {
            Some(function) => (
                function.name.filter(|name| !name.is_empty()),
                function.arguments.filter(|fragment| !fragment.is_empty()),
            ),
            None => (None, None),
        };
        let current = self
            .calls
            .iter()
            .rposition(|call| call.index == delta.index);
        // Some gateways send every call at index 0: a new id with a new name is a new call.
        let another = match (current, &id, &name) {
            (Some(position), Some(id), Some(name)) => {
                let call = &self.calls[position];
                !call.id.is_empty()
                    && call.id != id.as_ref()
                    && !call.name.is_empty()
                    && call.name != name.as_ref()
            }
            _ => false,
        };
        let position = match current {
            Some(position) if !another => position,
            _ => {
                self.calls.push(OpenCall {
                    index: delta.index,
                    id: String::new(),
                    stream_id: format!("call-{}", self.calls.len()),
                    name: String::new(),
                    arguments: String::new(),
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[position];
        if let Some(id) = id {
            call.id = id.into_owned();
        }
        if let Some(name) = name {
            call.name = name.into_owned();
            sink.tool_call_name(&call.stream_id, &call.name);
        }
        if let Some(fragment) = fragment {
            sink.tool_call_arguments(&call.stream_id, &fragment);
            call.arguments.push_str(&fragment);
        }
    }

    /// The text first, then the calls in the order they began. A call whose arguments are not
    /// JSON (cut off, or malformed by a weak model) keeps its raw text as arguments, so the
    /// model can be told instead of the call failing.
    fn finish(self) -> Streamed {
        let mut content = Vec::with_capacity(self.calls.len() + 1);
        if !self.text.is_empty() {
            content.push(AssistantContent::text(self.text));
        }
        for (number, call) in self.calls.into_iter().enumerate() {
            let arguments = if call.arguments.trim().is_empty() {
                Value::Object(serde_json::Map::new())
            } else {
                serde_json::from_str(&call.arguments).unwrap_or(Value::String(call.arguments))
            };
            let id = if call.id.is_empty() {
                format!("call_{number}")
            } else {
                call.id
            };
            content.push(AssistantContent::ToolCall(ToolCall {
                id,
                call_id: None,
                function: ToolFunction {
                    name: call.name,
                    arguments,
                },
                signature: None,
                additional_params: None,
            }));
        }
        Streamed {
            content,
            usage: self.usage.unwrap_or_default(),
        }
    }
}

/// Reads `response`'s event stream to its end (or `[DONE]`).
pub(super) async fn read(
    response: reqwest::Response,
    log: &ExchangeLog,
    sink: &mut dyn StreamSink,
) -> Result<Streamed, CompletionError> {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !content_type.starts_with("text/event-stream") {
        // A proxy's error page, or a server that ignored `stream`: worth another try.
        let mut body = Vec::new();
        let mut bytes = response.bytes_stream();
        while body.len() < MAX_EXCERPT
            && let Some(Ok(chunk)) = bytes.next().await
        {
            body.extend_from_slice(&chunk);
        }
        let excerpt: String = String::from_utf8_lossy(&body)
            .chars()
            .take(MAX_EXCERPT)
            .collect();
        return Err(CompletionError::ResponseError(format!(
            "the server answered `{content_type}`, not an event stream: {excerpt}"
        )));
    }
    let mut bytes = response.bytes_stream();
    let mut answer = Answer::default();
    let mut events = EventReader::default();
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk.map_err(|error| CompletionError::HttpError(instance(error)))?;
        events.feed(&chunk, |data| answer.event(data, log, sink));
        if answer.done {
            break;
        }
    }
    if !answer.done {
        events.finish(|data| answer.event(data, log, sink));
    }
    Ok(answer.finish())
}

/// Splits bytes into server-sent events: `data:` lines joined by newlines, ended by a blank
/// line. Other fields and comments are passed over.
#[derive(Default)]
struct EventReader {
    lines: Lines,
    /// The data of the event being read.
    data: String,
}

impl EventReader {
    fn feed(&mut self, chunk: &[u8], mut event: impl FnMut(&str)) {
        let data = &mut self.data;
        self.lines
            .feed(chunk, |line| Self::line(data, line, &mut event));
    }

    /// The stream ended: what is left is the last line and event.
    fn finish(&mut self, mut event: impl FnMut(&str)) {
        let data = &mut self.data;
        self.lines.finish(|line| Self::line(data, line, &mut event));
        Self::line(data, b"", &mut event);
    }

    fn line(data: &mut String, line: &[u8], event: &mut impl FnMut(&str)) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if !data.is_empty() {
                event(data);
                data.clear();
            }
            return;
        }
        let Some(value) = line.strip_prefix(b"data:") else {
            return;
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if !data.is_empty() {
            data.push('\n');
        }
        data.push_str(&String::from_utf8_lossy(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        seen: Vec<String>,
    }

    impl StreamSink for Recorder {
        fn text(&mut self, text: &str) {
            self.seen.push(format!("text {text}"));
        }
        fn tool_call_name(&mut self, call: &str, name: &str) {
            self.seen.push(format!("name {call} {name}"));
        }
        fn tool_call_arguments(&mut self, call: &str, fragment: &str) {
            self.seen.push(format!("arguments {call} {fragment}"));
        }
    }

    fn read_all(stream: &str, piece: usize) -> (Streamed, Vec<String>, ExchangeLog) {
        let log = ExchangeLog::default();
        let mut sink = Recorder::default();
        let mut answer = Answer::default();
        let mut events = EventReader::default();
        for bytes in stream.as_bytes().chunks(piece) {
            events.feed(bytes, |data| answer.event(data, &log, &mut sink));
        }
        events.finish(|data| answer.event(data, &log, &mut sink));
        (answer.finish(), sink.seen, log)
    }

    #[test]
    fn text_calls_usage_and_finish_are_read_across_any_chunking() {
        let stream = concat!(
            ": keep-alive\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\\"you\\\"\",\"reasoning_content\":\"hidden\"}}]}\r\n\r\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"reply\",\"arguments\":\"\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"content\\\":\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"c2\",\"function\":{\"name\":\"skip\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"hi\\\"}\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"choices\":null,\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n",
            "data: [DONE]\n\n",
        );
        for piece in [1, 7, stream.len()] {
            let (streamed, seen, log) = read_all(stream, piece);
            assert_eq!(
                seen,
                [
                    "text Hel",
                    "text lo \"you\"",
                    "name call-0 reply",
                    "arguments call-0 {\"content\":",
                    "name call-1 skip",
                    "arguments call-0 \"hi\"}",
                ]
            );
            assert_eq!(streamed.content.len(), 3);
            assert!(
                matches!(&streamed.content[0], AssistantContent::Text(text) if text.text == "Hello \"you\"")
            );
            let AssistantContent::ToolCall(reply) = &streamed.content[1] else {
                panic!("a call: {:?}", streamed.content[1]);
            };
            assert_eq!(reply.id, "c1");
            assert_eq!(
                reply.function.arguments,
                serde_json::json!({"content": "hi"})
            );
            let AssistantContent::ToolCall(skip) = &streamed.content[2] else {
                panic!("a call: {:?}", streamed.content[2]);
            };
            assert_eq!(skip.function.arguments, serde_json::json!({}));
            assert_eq!(streamed.usage.input_tokens, 10);
            assert_eq!(streamed.usage.output_tokens, 5);
            assert_eq!(streamed.usage.cached_input_tokens, 4);
            assert_eq!(log.snapshot().finish_reason.as_deref(), Some("tool_calls"));
        }
    }

    #[test]
    fn gateways_that_number_every_call_zero_still_give_separate_calls() {
        let stream = concat!(
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"one\",\"arguments\":\"{}\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"b\",\"function\":{\"name\":\"two\",\"arguments\":\"{\\\"x\\\":1}\"}}]}}]}\n\n",
        );
        let (streamed, _, _) = read_all(stream, 5);
        let names: Vec<_> = streamed
            .content
            .iter()
            .filter_map(|part| match part {
                AssistantContent::ToolCall(call) => {
                    Some((call.id.as_str(), call.function.name.as_str()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(names, [("a", "one"), ("b", "two")]);
    }

    #[test]
    fn refusals_errors_and_broken_arguments_are_kept_for_the_caller() {
        let stream = concat!(
            "data: {\"choices\":[{\"delta\":{\"refusal\":\"I can't\"},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"reply\",\"arguments\":\"{\\\"content\\\": \\\"cut\"}}]}}]}\n\n",
            "data: not json\n\n",
            "data: {\"error\":{\"type\":\"server_error\",\"message\":\"boom\"}}\n\n",
        );
        let (streamed, _, log) = read_all(stream, 3);
        let exchange = log.snapshot();
        assert_eq!(exchange.refusal, "I can't");
        assert_eq!(exchange.stream_error.as_deref(), Some("server_error: boom"));
        let AssistantContent::ToolCall(call) = &streamed.content[0] else {
            panic!("a call: {:?}", streamed.content[0]);
        };
        assert_eq!(
            call.id, "call_0",
            "an id is made up when the server sends none"
        );
        assert_eq!(
            call.function.arguments,
            Value::String("{\"content\": \"cut".into())
        );
    }
}
