//! Splitting a long reply into chunks that fit a platform's message limit: on paragraph, line
//! or word boundaries, never inside a character, and outside ``` code fences when possible.

/// Splits `text` into chunks of at most `limit` UTF-16 code units each (the strictest way
/// platforms count; a chunk never splits a character). Prefers, in order: a paragraph break, a
/// line break, a space. A break outside a code fence is preferred; when a fenced block must be
/// cut, the chunk closes the fence and the next one reopens it with the same info string.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(16);
    let mut chunks = Vec::new();
    let mut rest = text.trim_end();
    let mut reopen: Option<String> = None;
    while !rest.is_empty() {
        let in_fence = reopen.is_some();
        let prefix = reopen
            .take()
            .map(|info| format!("```{info}\n"))
            .unwrap_or_default();
        let available = limit.saturating_sub(utf16_length(&prefix)).max(8);
        if utf16_length(rest) <= available {
            chunks.push(format!("{prefix}{rest}"));
            break;
        }
        let mut cut = choose_cut(rest, available, in_fence);
        let mut chunk = format!("{prefix}{}", rest[..cut].trim_end());
        if open_fence_at_end(&chunk).is_some() {
            // Leave room to close the fence ("\n```").
            cut = choose_cut(rest, available - 4, in_fence);
            chunk = format!("{prefix}{}", rest[..cut].trim_end());
            if let Some(info) = open_fence_at_end(&chunk) {
                chunk.push_str("\n```");
                reopen = Some(info);
            }
        }
        if !chunk.trim().is_empty() {
            chunks.push(chunk);
        }
        let tail = &rest[cut..];
        rest = ["\n\n", "\n", " "]
            .iter()
            .find_map(|separator| tail.strip_prefix(separator))
            .unwrap_or(tail);
    }
    chunks
}

fn utf16_length(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// The byte index where the first chunk of `text` ends, within `budget` UTF-16 units.
fn choose_cut(text: &str, budget: usize, starts_in_fence: bool) -> usize {
    // The largest char boundary within the budget.
    let mut units = 0;
    let mut hard_end = 0;
    for (index, character) in text.char_indices() {
        units += character.len_utf16();
        if units > budget {
            break;
        }
        hard_end = index + character.len_utf8();
    }
    if hard_end == 0 {
        // A single character wider than the budget cannot happen with budget >= 2.
        return text.chars().next().map_or(text.len(), char::len_utf8);
    }
    let window = &text[..hard_end];
    let fenced = fence_state_per_byte(window, starts_in_fence);
    // Candidates by preference; a cut at a byte index `cut` is "outside a fence" when the
    // fence state just before it is closed.
    for separator in ["\n\n", "\n", " "] {
        let outside = window
            .match_indices(separator)
            .map(|(index, _)| index)
            .filter(|&index| index > 0 && !fenced[index])
            .last();
        if let Some(index) = outside {
            return index;
        }
    }
    for separator in ["\n\n", "\n", " "] {
        if let Some(index) = window
            .match_indices(separator)
            .map(|(index, _)| index)
            .filter(|&index| index > 0)
            .last()
        {
            return index;
        }
    }
    hard_end
}

/// For each byte index of `text`, whether a ``` fence is open at that point.
fn fence_state_per_byte(text: &str, starts_in_fence: bool) -> Vec<bool> {
    let mut state = Vec::with_capacity(text.len() + 1);
    let mut open = starts_in_fence;
    let mut line_start = true;
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        if line_start && text[index..].trim_start_matches(' ').starts_with("```") {
            let line_end = text[index..]
                .find('\n')
                .map_or(bytes.len(), |end| index + end);
            for _ in index..line_end {
                state.push(open);
            }
            open = !open;
            index = line_end;
            line_start = false;
            continue;
        }
        state.push(open);
        line_start = bytes[index] == b'\n';
        index += 1;
    }
    state.push(open);
    state
}

/// When `chunk` ends inside a code fence, the info string of that fence (e.g. `rust`).
fn open_fence_at_end(chunk: &str) -> Option<String> {
    let mut open: Option<String> = None;
    for line in chunk.lines() {
        let trimmed = line.trim_start_matches(' ');
        if let Some(info) = trimmed.strip_prefix("```") {
            open = match open {
                Some(_) => None,
                None => Some(info.trim().to_string()),
            };
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_within(chunks: &[String], limit: usize) {
        for chunk in chunks {
            assert!(
                utf16_length(chunk) <= limit,
                "chunk of {} units over {limit}: {chunk:?}",
                utf16_length(chunk)
            );
            assert!(!chunk.is_empty());
        }
    }

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(split_message("hello", 2000), vec!["hello"]);
        assert!(split_message("", 2000).is_empty());
    }

    #[test]
    fn splits_on_paragraphs_before_lines_and_words() {
        let text = format!("{}\n\n{}", "a".repeat(30), "b ".repeat(20).trim_end());
        let chunks = split_message(&text, 50);
        assert_within(&chunks, 50);
        assert_eq!(chunks[0], "a".repeat(30));
        assert_eq!(chunks[1], "b ".repeat(20).trim_end());

        let words = "word ".repeat(30);
        let chunks = split_message(&words, 42);
        assert_within(&chunks, 42);
        for chunk in &chunks {
            assert!(chunk.split(' ').all(|part| part == "word"), "{chunk:?}");
        }
        assert_eq!(chunks.join(" "), words.trim_end());
    }

    #[test]
    fn never_splits_inside_a_character() {
        let text = "ü".repeat(50) + &"🚀".repeat(40);
        let chunks = split_message(&text, 33);
        assert_within(&chunks, 33);
        assert_eq!(chunks.concat(), text);
    }

    #[test]
    fn prefers_a_break_outside_a_code_fence() {
        let code = "```rust\nfn main() {}\nlet x = 1;\n```";
        let text = format!("Intro line.\n\n{code}\n\nAfter the code.");
        let chunks = split_message(&text, 45);
        assert_within(&chunks, 45);
        assert!(chunks.iter().any(|chunk| chunk == code), "{chunks:#?}");
    }

    #[test]
    fn a_fence_longer_than_the_limit_is_closed_and_reopened() {
        let body: Vec<String> = (0..30)
            .map(|line| format!("let value_{line} = {line};"))
            .collect();
        let text = format!("```rust\n{}\n```", body.join("\n"));
        let chunks = split_message(&text, 120);
        assert!(chunks.len() > 2);
        assert_within(&chunks, 120);
        for chunk in &chunks {
            assert!(chunk.starts_with("```rust\n"), "{chunk:?}");
            assert!(chunk.ends_with("```"), "{chunk:?}");
        }
        let rebuilt: Vec<&str> = chunks
            .iter()
            .flat_map(|chunk| chunk.lines())
            .filter(|line| !line.starts_with("```"))
            .collect();
        assert_eq!(rebuilt, body);
    }

    #[test]
    fn text_without_any_break_is_cut_at_the_limit() {
        let text = "x".repeat(45);
        let chunks = split_message(&text, 20);
        assert_eq!(chunks, vec!["x".repeat(20), "x".repeat(20), "x".repeat(5)]);
    }
}
