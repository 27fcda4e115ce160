//! Reads one string field out of a JSON object while the object is still arriving in
//! fragments (a streamed tool call's arguments), so a `reply`'s `content` can be shown as it
//! is written.

/// Decodes the value of the top-level string field `field` incrementally.
#[derive(Debug, Clone)]
pub struct FieldReader {
    field: &'static str,
    buffer: String,
    /// Bytes of `buffer` already read.
    position: usize,
    state: State,
    /// Nesting depth of objects and arrays (the arguments object itself is 1).
    depth: usize,
    /// The last key read at depth 1, once complete.
    key: String,
    /// Whether the next string at depth 1 is a key (after `{` or `,`).
    expecting_key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Between tokens.
    Scanning,
    /// Inside a string that is not the wanted value (a key, or another value).
    InString { is_key: bool, escaped: bool },
    /// Inside the wanted value.
    InValue,
    /// The wanted value is complete.
    Done,
}

impl FieldReader {
    pub fn new(field: &'static str) -> Self {
        Self {
            field,
            buffer: String::new(),
            position: 0,
            state: State::Scanning,
            depth: 0,
            key: String::new(),
            expecting_key: false,
        }
    }

    /// Adds a fragment and returns the value text it completed (decoded), if any.
    pub fn push(&mut self, fragment: &str) -> String {
        self.buffer.push_str(fragment);
        let mut decoded = String::new();
        while self.position < self.buffer.len() && self.state != State::Done {
            let rest = &self.buffer[self.position..];
            let Some(character) = rest.chars().next() else {
                break;
            };
            match &mut self.state {
                State::Scanning => {
                    self.position += character.len_utf8();
                    match character {
                        '{' | '[' => {
                            self.depth += 1;
                            self.expecting_key = character == '{' && self.depth == 1;
                        }
                        '}' | ']' => self.depth = self.depth.saturating_sub(1),
                        ',' if self.depth == 1 => self.expecting_key = true,
                        '"' => {
                            let is_key = self.depth == 1 && self.expecting_key;
                            if is_key {
                                self.key.clear();
                                self.expecting_key = false;
                                self.state = State::InString {
                                    is_key,
                                    escaped: false,
                                };
                            } else if self.depth == 1 && self.key == self.field {
                                self.state = State::InValue;
                            } else {
                                self.state = State::InString {
                                    is_key,
                                    escaped: false,
                                };
                            }
                        }
                        _ => {}
                    }
                }
                State::InString { is_key, escaped } => {
                    self.position += character.len_utf8();
                    if *escaped {
                        *escaped = false;
                        if *is_key {
                            self.key.push(character);
                        }
                    } else if character == '\\' {
                        *escaped = true;
                    } else if character == '"' {
                        self.state = State::Scanning;
                    } else if *is_key {
                        self.key.push(character);
                    }
                }
                State::InValue => match character {
                    '"' => {
                        self.position += 1;
                        self.state = State::Done;
                    }
                    '\\' => match decode_escape(rest) {
                        Escape::Incomplete => break,
                        Escape::Decoded(text, length) => {
                            decoded.push_str(&text);
                            self.position += length;
                        }
                    },
                    _ => {
                        decoded.push(character);
                        self.position += character.len_utf8();
                    }
                },
                State::Done => break,
            }
        }
        decoded
    }
}

enum Escape {
    Incomplete,
    Decoded(String, usize),
}

/// Decodes the escape at the start of `text` (which starts with `\`).
fn decode_escape(text: &str) -> Escape {
    let bytes = text.as_bytes();
    let Some(&kind) = bytes.get(1) else {
        return Escape::Incomplete;
    };
    let simple = match kind {
        b'n' => Some('\n'),
        b't' => Some('\t'),
        b'r' => Some('\r'),
        b'b' => Some('\u{8}'),
        b'f' => Some('\u{c}'),
        b'"' => Some('"'),
        b'\\' => Some('\\'),
        b'/' => Some('/'),
        _ => None,
    };
    if let Some(character) = simple {
        return Escape::Decoded(character.to_string(), 2);
    }
    if kind != b'u' {
        // Not valid JSON; show it as written.
        return Escape::Decoded(String::from_utf8_lossy(&bytes[..2]).into_owned(), 2);
    }
    let Some(first) = text
        .get(2..6)
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
    else {
        return if text.len() < 6 {
            Escape::Incomplete
        } else {
            Escape::Decoded(String::new(), 2)
        };
    };
    if (0xD800..0xDC00).contains(&first) {
        // A high surrogate: its low half follows as another `\uXXXX`.
        if text.len() < 12 {
            return Escape::Incomplete;
        }
        let low = text
            .get(8..12)
            .filter(|_| text.get(6..8) == Some("\\u"))
            .and_then(|hex| u32::from_str_radix(hex, 16).ok());
        if let Some(low) = low.filter(|low| (0xDC00..0xE000).contains(low)) {
            let code = 0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00);
            let character = char::from_u32(code).unwrap_or('\u{FFFD}');
            return Escape::Decoded(character.to_string(), 12);
        }
        return Escape::Decoded('\u{FFFD}'.to_string(), 6);
    }
    let character = char::from_u32(first).unwrap_or('\u{FFFD}');
    Escape::Decoded(character.to_string(), 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_in_pieces(json: &str, size: usize) -> String {
        let mut reader = FieldReader::new("content");
        let characters: Vec<char> = json.chars().collect();
        characters
            .chunks(size)
            .map(|piece| reader.push(&piece.iter().collect::<String>()))
            .collect()
    }

    #[test]
    fn the_field_is_decoded_whatever_the_fragment_sizes() {
        let json = r#"{"note": "x\"content\"", "nested": {"content": "no"}, "content": "Hi \"you\"\n\u00e9\ud83d\ude00 done", "after": "z"}"#;
        let expected = "Hi \"you\"\né😀 done";
        for size in 1..12 {
            assert_eq!(read_in_pieces(json, size), expected, "pieces of {size}");
        }
    }

    #[test]
    fn other_fields_and_missing_fields_yield_nothing() {
        assert_eq!(read_in_pieces(r#"{"reason": "quiet"}"#, 3), "");
        assert_eq!(read_in_pieces(r#"{"content": "par"#, 2), "par");
    }
}
