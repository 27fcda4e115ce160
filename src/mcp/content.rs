//! A tool call's result as text the model reads: text as is, embedded text resources with
//! their URI, images, audio and binary resources as a note of what they were, structured
//! content as JSON when nothing else came; all of it capped.

use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};

use super::McpOutput;

/// Most bytes of a result the model reads; the rest is cut, saying how much there was.
pub const RESULT_CAP: usize = 32 * 1024;

pub(super) fn render(result: CallToolResult) -> McpOutput {
    let mut parts = Vec::with_capacity(result.content.len());
    for block in &result.content {
        parts.push(match block {
            ContentBlock::Text(text) => text.text.clone(),
            ContentBlock::Image(image) => format!(
                "[an image ({}, {} bytes) that cannot be shown here]",
                image.mime_type,
                decoded_size(&image.data)
            ),
            ContentBlock::Audio(audio) => format!(
                "[audio ({}, {} bytes) that cannot be played here]",
                audio.mime_type,
                decoded_size(&audio.data)
            ),
            ContentBlock::Resource(embedded) => match &embedded.resource {
                ResourceContents::TextResourceContents { uri, text, .. } => {
                    format!("[resource {uri}]\n{text}")
                }
                ResourceContents::BlobResourceContents {
                    uri,
                    mime_type,
                    blob,
                    ..
                } => format!(
                    "[resource {uri} ({}, {} bytes of binary data, not shown)]",
                    mime_type.as_deref().unwrap_or("unknown type"),
                    decoded_size(blob)
                ),
                // A kind of resource content newer than this client.
                other => format!(
                    "[a resource this client cannot read: {}]",
                    preview(&format!("{other:?}"))
                ),
            },
            ContentBlock::ResourceLink(resource) => format!(
                "[resource link: {} {}{}]",
                resource.name,
                resource.uri,
                resource
                    .description
                    .as_deref()
                    .map(|description| format!(" ({description})"))
                    .unwrap_or_default()
            ),
            // A kind of content newer than this client.
            other => format!(
                "[content this client cannot read: {}]",
                preview(&serde_json::to_string(other).unwrap_or_default())
            ),
        });
    }
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        parts.push(structured.to_string());
    }
    let is_error = result.is_error.unwrap_or(false);
    let text = if parts.is_empty() {
        "(the tool returned nothing)".to_string()
    } else {
        parts.join("\n")
    };
    McpOutput {
        text: cap(text, RESULT_CAP),
        is_error,
    }
}

/// The size of base64 `data` once decoded.
fn decoded_size(data: &str) -> usize {
    let padding = data.bytes().rev().take_while(|byte| *byte == b'=').count();
    (data.len() / 4 * 3).saturating_sub(padding)
}

/// `text` cut at a character boundary to at most `limit` bytes, saying how much there was.
fn cap(text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[cut: the result has {} bytes; only the first {end} are shown]",
        &text[..end],
        text.len()
    )
}

/// The start of `text`, for an error message.
pub(super) fn preview(text: &str) -> String {
    cap(text.to_string(), 200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{ContentBlock, Resource};

    #[test]
    fn every_kind_of_content_becomes_text_and_the_whole_is_capped() {
        let result = CallToolResult::success(vec![
            ContentBlock::text("hello"),
            ContentBlock::image("aGVsbG8=", "image/png"),
            ContentBlock::embedded_text("file:///notes.txt", "the notes"),
            ContentBlock::resource_link(Resource::new("file:///a.bin", "a.bin")),
        ]);
        let output = render(result);
        assert!(!output.is_error);
        assert_eq!(
            output.text,
            "hello\n[an image (image/png, 5 bytes) that cannot be shown here]\n\
             [resource file:///notes.txt]\nthe notes\n[resource link: a.bin file:///a.bin]"
        );
        let long = render(CallToolResult::error(vec![ContentBlock::text(
            "é".repeat(RESULT_CAP),
        )]));
        assert!(long.is_error);
        assert!(long.text.len() < RESULT_CAP + 100, "{}", long.text.len());
        assert!(long.text.ends_with("are shown]"));
    }
}
