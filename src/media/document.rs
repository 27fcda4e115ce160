//! The text of a document people send: text, Markdown, CSV, JSON and source code as they are
//! (lossy UTF-8), PDFs through their text operators (lopdf), page by page.

use super::MediaError;

/// Whether `media_type`/`name` is a PDF.
pub fn is_pdf(media_type: &str, name: &str) -> bool {
    media_type.eq_ignore_ascii_case("application/pdf")
        || name.to_ascii_lowercase().ends_with(".pdf")
}

/// The text of a document. A PDF without a text layer (a scan) has none: the error says so.
pub fn document_text(name: &str, media_type: &str, bytes: &[u8]) -> Result<String, MediaError> {
    let error = |reason: String| MediaError::Document {
        name: name.to_string(),
        reason,
    };
    if is_pdf(media_type, name) {
        let document =
            lopdf::Document::load_mem(bytes).map_err(|source| error(source.to_string()))?;
        let pages: Vec<u32> = document.get_pages().keys().copied().collect();
        let mut text = String::new();
        for page in pages {
            // A page whose text cannot be read is skipped; the others still count.
            match document.extract_text(&[page]) {
                Ok(page_text) => {
                    text.push_str(page_text.trim_end());
                    text.push_str("\n\n");
                }
                Err(problem) => {
                    tracing::debug!(%problem, page, %name, "a PDF page has no readable text")
                }
            }
        }
        let text = text.trim().to_string();
        if text.is_empty() {
            return Err(error(
                "it has no text layer (a scan or pictures only)".to_string(),
            ));
        }
        return Ok(text);
    }
    if bytes.iter().take(8192).any(|byte| *byte == 0) {
        return Err(error("it is not a text file".to_string()));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// At most `limit` characters of `text`, and whether it was cut.
pub fn excerpt(text: &str, limit: usize) -> (String, bool) {
    match text.char_indices().nth(limit) {
        Some((end, _)) => (text[..end].to_string(), true),
        None => (text.to_string(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-page PDF whose text layer says `text` (for tests: PDFs people send are made by
    /// other programs).
    fn pdf_with_text(text: &str) -> Vec<u8> {
        use lopdf::content::{Content, Operation};
        use lopdf::{Document, Object, Stream, dictionary};
        let mut document = Document::with_version("1.5");
        let pages_id = document.new_object_id();
        let font_id = document.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
            "Encoding" => "WinAnsiEncoding",
        });
        let resources_id =
            document.add_object(dictionary! {"Font" => dictionary! {"F1" => font_id}});
        let content = Content {
            operations: vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 12.into()]),
                Operation::new("Td", vec![72.into(), 720.into()]),
                Operation::new("Tj", vec![Object::string_literal(text)]),
                Operation::new("ET", vec![]),
            ],
        };
        let encoded = content.encode().unwrap_or_default();
        let content_id = document.add_object(Stream::new(dictionary! {}, encoded));
        let page_id = document.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        });
        document.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
                "Resources" => resources_id,
                "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            }),
        );
        let catalog_id =
            document.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages_id});
        document.trailer.set("Root", catalog_id);
        let mut bytes = Vec::new();
        let _ = document.save_to(&mut bytes);
        bytes
    }

    #[test]
    fn a_pdf_text_layer_is_extracted() {
        let pdf = pdf_with_text("Quarterly revenue grew 42 percent");
        let text = document_text("report.pdf", "application/pdf", &pdf).expect("text");
        assert!(text.contains("Quarterly revenue grew 42 percent"), "{text}");
    }

    #[test]
    fn text_files_are_read_as_they_are_and_binaries_refused() {
        let text = document_text("notes.md", "text/markdown", "# Hi\nthere".as_bytes());
        assert_eq!(text.expect("text"), "# Hi\nthere");
        assert!(document_text("a.bin", "text/plain", &[0, 1, 2]).is_err());
        assert!(document_text("broken.pdf", "application/pdf", b"%PDF-1.4 nothing").is_err());
    }

    #[test]
    fn an_excerpt_is_cut_at_a_character_boundary() {
        assert_eq!(excerpt("héllo", 2), ("hé".to_string(), true));
        assert_eq!(excerpt("hi", 5), ("hi".to_string(), false));
    }
}
