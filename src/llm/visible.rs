//! The part of a text answer that may be shown while it is still being written: without
//! `<think>` blocks, stopping where a tool call written as text begins, holding back a tail
//! that might become such a marker, and nothing at all while the answer looks like a bare
//! JSON call.

use super::text_tools::{HERMES_OPEN, MISTRAL_MARKER, strip_think};

const MARKERS: [&str; 4] = ["<think>", "</think>", HERMES_OPEN, MISTRAL_MARKER];

/// What of `raw` (the text streamed so far) a person may see now.
pub fn visible_prefix(raw: &str) -> String {
    // An unfinished marker at the end is held back until it is one or is not.
    let settled = raw.len() - partial_marker_suffix(raw);
    let mut text = strip_think(&raw[..settled]);
    if let Some(start) = [HERMES_OPEN, MISTRAL_MARKER]
        .iter()
        .filter_map(|marker| text.find(marker))
        .min()
    {
        text.truncate(start);
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with("```json") || trimmed.starts_with('[') {
        return String::new();
    }
    trimmed.trim_end().to_string()
}

/// The length of the longest suffix of `text` that is a proper prefix of a marker.
fn partial_marker_suffix(text: &str) -> usize {
    let Some(start) = text.rfind(['<', '[']) else {
        return 0;
    };
    let tail = &text[start..];
    let is_partial = MARKERS
        .iter()
        .any(|marker| marker.len() > tail.len() && marker.starts_with(tail));
    if is_partial { tail.len() } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_and_call_syntax_never_show_while_streaming() {
        let answer = "<think>hmm</think>Hello there <tool_call>{\"name\":\"reply\"}";
        let mut shown = Vec::new();
        for end in 0..=answer.len() {
            if answer.is_char_boundary(end) {
                shown.push(visible_prefix(&answer[..end]));
            }
        }
        assert!(
            shown
                .iter()
                .all(|text| !text.contains('<') && !text.contains("hmm"))
        );
        assert_eq!(shown.last().map(String::as_str), Some("Hello there"));
        assert_eq!(visible_prefix("Hi [TOOL"), "Hi");
        assert_eq!(visible_prefix("Hi [1] and <b>"), "Hi [1] and <b>");
        assert_eq!(visible_prefix("{\"name\": \"reply\""), "");
    }
}
