//! HTML to Markdown-ish text for a model to read: the page's title, then its main content
//! (`<main>`, else its `<article>`s, else the `<body>`) with headings, lists, links and
//! preformatted blocks kept, and scripts, styles, navigation and forms left out.

/// An element whose content is never text a reader wants.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "head", "nav", "footer", "header", "aside",
    "form", "iframe", "object", "canvas", "select", "button",
];
/// Elements that start on a new line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "ul",
    "ol",
    "li",
    "table",
    "tr",
    "blockquote",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "hr",
    "body",
    "details",
    "summary",
    "address",
];
/// Elements that never have content or an end tag.
const VOID: &[&str] = &[
    "br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track",
    "wbr", "param",
];

#[derive(Debug, PartialEq)]
enum Token {
    Start {
        name: String,
        attributes: Vec<(String, String)>,
        closed: bool,
    },
    End(String),
    Text(String),
}

/// The readable text of `html`; links are resolved against `base`.
pub fn to_text(html: &str, base: Option<&url::Url>) -> String {
    let tokens = tokenize(html);
    let title = title(&tokens);
    let scope = main_scope(&tokens);
    let mut writer = Writer::default();
    let mut skipping: Vec<String> = Vec::new();
    let mut inside = scope.is_none();
    let mut scope_depth = 0usize;
    let mut links: Vec<Option<String>> = Vec::new();
    for token in &tokens {
        match token {
            Token::Start {
                name,
                attributes,
                closed,
            } => {
                if let Some(scope) = scope
                    && name == scope
                {
                    scope_depth += 1;
                    inside = true;
                }
                if !skipping.is_empty() || !inside {
                    if SKIPPED.contains(&name.as_str())
                        && !*closed
                        && !VOID.contains(&name.as_str())
                    {
                        skipping.push(name.clone());
                    }
                    continue;
                }
                if SKIPPED.contains(&name.as_str()) && !*closed {
                    skipping.push(name.clone());
                    continue;
                }
                writer.start(name, attributes, base, &mut links);
            }
            Token::End(name) => {
                if let Some(position) = skipping.iter().rposition(|open| open == name) {
                    skipping.truncate(position);
                    continue;
                }
                if !skipping.is_empty() || !inside {
                    continue;
                }
                writer.end(name, &mut links);
                if let Some(scope) = scope
                    && name == scope
                {
                    scope_depth = scope_depth.saturating_sub(1);
                    if scope_depth == 0 {
                        inside = false;
                        writer.block();
                    }
                }
            }
            Token::Text(text) => {
                if skipping.is_empty() && inside {
                    writer.text(&decode_entities(text));
                }
            }
        }
    }
    let body = writer.finish();
    match title {
        Some(title) if !title.is_empty() && !body.starts_with(&format!("# {title}")) => {
            format!("# {title}\n\n{body}")
        }
        _ => body,
    }
}

/// `main` when the page has one, else `article`, else the whole page.
fn main_scope(tokens: &[Token]) -> Option<&'static str> {
    let has = |wanted: &str| {
        tokens
            .iter()
            .any(|token| matches!(token, Token::Start { name, .. } if name == wanted))
    };
    if has("main") {
        Some("main")
    } else if has("article") {
        Some("article")
    } else {
        None
    }
}

fn title(tokens: &[Token]) -> Option<String> {
    let start = tokens
        .iter()
        .position(|token| matches!(token, Token::Start { name, .. } if name == "title"))?;
    let mut title = String::new();
    for token in &tokens[start + 1..] {
        match token {
            Token::Text(text) => title.push_str(&decode_entities(text)),
            _ => break,
        }
    }
    Some(title.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Builds the text: whitespace collapsed outside `<pre>`, blank lines between blocks.
#[derive(Default)]
struct Writer {
    output: String,
    /// Blank lines owed before the next text.
    pending_break: usize,
    pending_space: bool,
    preformatted: usize,
    lists: Vec<Option<usize>>,
}

impl Writer {
    fn start(
        &mut self,
        name: &str,
        attributes: &[(String, String)],
        base: Option<&url::Url>,
        links: &mut Vec<Option<String>>,
    ) {
        let attribute = |wanted: &str| {
            attributes
                .iter()
                .find(|(key, _)| key == wanted)
                .map(|(_, value)| decode_entities(value))
        };
        match name {
            "br" => self.line(),
            "hr" => {
                self.block();
                self.raw("---");
                self.block();
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                self.block();
                let level = usize::from(name.as_bytes()[1] - b'0');
                self.raw(&format!("{} ", "#".repeat(level)));
            }
            "ul" => {
                self.block();
                self.lists.push(None);
            }
            "ol" => {
                self.block();
                self.lists.push(Some(0));
            }
            "li" => {
                self.line();
                let depth = self.lists.len().saturating_sub(1);
                let marker = match self.lists.last_mut() {
                    Some(Some(number)) => {
                        *number += 1;
                        format!("{number}. ")
                    }
                    _ => "- ".to_string(),
                };
                self.raw(&format!("{}{marker}", "  ".repeat(depth)));
            }
            "pre" => {
                self.block();
                self.raw("```\n");
                self.preformatted += 1;
            }
            "blockquote" => {
                self.block();
                self.raw("> ");
            }
            "tr" | "dt" | "dd" => self.line(),
            "td" | "th" => self.text(" | "),
            "code" if self.preformatted == 0 => self.inline("`"),
            "strong" | "b" => self.inline("**"),
            "em" | "i" => self.inline("_"),
            "img" => {
                if let Some(alt) = attribute("alt").filter(|alt| !alt.trim().is_empty()) {
                    self.text(&format!("[image: {}]", alt.trim()));
                }
            }
            "a" => {
                let href = attribute("href")
                    .filter(|href| !href.starts_with("javascript:") && !href.starts_with('#'))
                    .map(|href| match base.and_then(|base| base.join(&href).ok()) {
                        Some(url) => url.to_string(),
                        None => href,
                    });
                if href.is_some() {
                    self.inline("[");
                }
                links.push(href);
            }
            _ if BLOCKS.contains(&name) => self.block(),
            _ => {}
        }
    }

    fn end(&mut self, name: &str, links: &mut Vec<Option<String>>) {
        match name {
            "pre" => {
                self.preformatted = self.preformatted.saturating_sub(1);
                if !self.output.ends_with('\n') {
                    self.output.push('\n');
                }
                self.output.push_str("```");
                self.block();
            }
            "ul" | "ol" => {
                self.lists.pop();
                self.block();
            }
            "code" if self.preformatted == 0 => self.inline("`"),
            "strong" | "b" => self.inline("**"),
            "em" | "i" => self.inline("_"),
            "a" => {
                if let Some(Some(href)) = links.pop() {
                    self.inline(&format!("]({href})"));
                }
            }
            "li" | "tr" | "dt" | "dd" => self.line(),
            _ if BLOCKS.contains(&name) => self.block(),
            _ => {}
        }
    }

    fn block(&mut self) {
        if !self.output.is_empty() {
            self.pending_break = 2;
        }
        self.pending_space = false;
    }

    fn line(&mut self) {
        if !self.output.is_empty() {
            self.pending_break = self.pending_break.max(1);
        }
        self.pending_space = false;
    }

    /// Markup glued to the text around it.
    fn inline(&mut self, markup: &str) {
        self.flush_breaks();
        if self.pending_space {
            self.output.push(' ');
            self.pending_space = false;
        }
        self.output.push_str(markup);
    }

    /// Markup at the start of a line (list markers, heading hashes).
    fn raw(&mut self, markup: &str) {
        self.flush_breaks();
        self.pending_space = false;
        self.output.push_str(markup);
    }

    fn flush_breaks(&mut self) {
        if self.pending_break > 0 {
            while self.output.ends_with(' ') {
                self.output.pop();
            }
            let have = self.output.chars().rev().take_while(|c| *c == '\n').count();
            for _ in have..self.pending_break {
                self.output.push('\n');
            }
            self.pending_break = 0;
        }
    }

    fn text(&mut self, text: &str) {
        if self.preformatted > 0 {
            self.flush_breaks();
            self.output.push_str(text);
            return;
        }
        let starts_with_space = text.starts_with(char::is_whitespace);
        let ends_with_space = text.ends_with(char::is_whitespace);
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() {
            if !text.is_empty() {
                self.pending_space = true;
            }
            return;
        }
        self.flush_breaks();
        let at_line_start = self.output.is_empty() || self.output.ends_with(['\n', ' ']);
        if (self.pending_space || starts_with_space) && !at_line_start {
            self.output.push(' ');
        }
        self.output.push_str(&words.join(" "));
        self.pending_space = ends_with_space;
    }

    fn finish(self) -> String {
        let mut lines: Vec<&str> = self.output.lines().map(str::trim_end).collect();
        lines.dedup_by(|line, previous| line.is_empty() && previous.is_empty());
        lines.join("\n").trim().to_string()
    }
}

/// Splits HTML into start tags, end tags and text; comments, doctypes and processing
/// instructions are dropped, and the content of `script`/`style` is kept whole as text.
fn tokenize(html: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut rest = html;
    while !rest.is_empty() {
        let Some(open) = rest.find('<') else {
            tokens.push(Token::Text(rest.to_string()));
            break;
        };
        if open > 0 {
            tokens.push(Token::Text(rest[..open].to_string()));
        }
        rest = &rest[open..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            rest = rest.find('>').map_or("", |end| &rest[end + 1..]);
            continue;
        }
        let is_end = rest.starts_with("</");
        let name_start = if is_end { 2 } else { 1 };
        let name_length = rest[name_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == ':'))
            .unwrap_or(rest.len() - name_start);
        if name_length == 0 {
            // A `<` that starts no tag is text.
            tokens.push(Token::Text("<".to_string()));
            rest = &rest[1..];
            continue;
        }
        let name = rest[name_start..name_start + name_length].to_ascii_lowercase();
        let (attributes_text, after) = tag_end(&rest[name_start + name_length..]);
        rest = after;
        if is_end {
            tokens.push(Token::End(name));
            continue;
        }
        let closed = attributes_text.trim_end().ends_with('/') || VOID.contains(&name.as_str());
        let attributes = parse_attributes(attributes_text);
        let raw_text = matches!(name.as_str(), "script" | "style" | "textarea" | "title");
        tokens.push(Token::Start {
            name: name.clone(),
            attributes,
            closed,
        });
        if raw_text && !closed {
            let closing = format!("</{name}");
            let end = find_case_insensitive(rest, &closing).unwrap_or(rest.len());
            tokens.push(Token::Text(rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    tokens
}

/// The text of a tag's attributes and what follows the tag's `>`, minding quotes.
fn tag_end(text: &str) -> (&str, &str) {
    let mut quote: Option<char> = None;
    for (index, character) in text.char_indices() {
        match (quote, character) {
            (Some(open), _) if character == open => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(character),
            (None, '>') => return (&text[..index], &text[index + 1..]),
            (None, _) => {}
        }
    }
    (text, "")
}

fn parse_attributes(text: &str) -> Vec<(String, String)> {
    let mut attributes = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            if let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') {
                let inner = &after[1..];
                let end = inner.find(quote).unwrap_or(inner.len());
                value = inner[..end].to_string();
                rest = inner.get(end + 1..).unwrap_or("");
            } else {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                value = after[..end].to_string();
                rest = &after[end..];
            }
        } else if name.is_empty() {
            // A stray `/` or `=`.
            rest = rest.get(1..).unwrap_or("");
        }
        if !name.is_empty() {
            attributes.push((name, value));
        }
        rest = rest.trim_start();
    }
    attributes
}

fn find_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    let lower = haystack.to_ascii_lowercase();
    lower.find(&needle.to_ascii_lowercase())
}

/// Replaces character references: numeric ones and the named ones pages commonly use.
pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        output.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .map(|index| index + 1)
            .unwrap_or(rest.len());
        let name = &rest[1..end];
        let decoded = if let Some(number) = name.strip_prefix('#') {
            let value = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => number.parse().ok(),
            };
            value.and_then(char::from_u32).map(String::from)
        } else {
            named_entity(name).map(str::to_string)
        };
        match decoded {
            Some(decoded) => {
                output.push_str(&decoded);
                rest = &rest[end..];
                rest = rest.strip_prefix(';').unwrap_or(rest);
            }
            None => {
                output.push('&');
                rest = &rest[1..];
            }
        }
    }
    output.push_str(rest);
    output
}

fn named_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        "nbsp" => " ",
        "mdash" => "—",
        "ndash" => "–",
        "hellip" => "…",
        "copy" => "©",
        "reg" => "®",
        "trade" => "™",
        "lsquo" => "‘",
        "rsquo" => "’",
        "ldquo" => "“",
        "rdquo" => "”",
        "laquo" => "«",
        "raquo" => "»",
        "middot" => "·",
        "bull" => "•",
        "times" => "×",
        "deg" => "°",
        "euro" => "€",
        "pound" => "£",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_content_becomes_markdownish_text() {
        let html = r#"<!doctype html><html><head><title>The Garden &amp; You</title>
            <style>body { color: red }</style><script>var x = "<p>no</p>";</script></head>
            <body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
            <main><h1>Growing   tomatoes</h1>
            <p>Water them <strong>daily</strong>, see <a href="/guide?a=1&amp;b=2">the guide</a>.</p>
            <ul><li>Sun</li><li>Soil<ol><li>loam</li></ol></li></ul>
            <pre>  keep   this
  spacing</pre><!-- hidden --></main>
            <footer>Copyright</footer></body></html>"#;
        let base = url::Url::parse("https://garden.example/articles/1").expect("url");
        let text = to_text(html, Some(&base));
        assert_eq!(
            text,
            "# The Garden & You\n\n# Growing tomatoes\n\nWater them **daily**, see \
             [the guide](https://garden.example/guide?a=1&b=2).\n\n- Sun\n- Soil\n\n  1. loam\n\n\
             ```\n  keep   this\n  spacing\n```"
        );
    }

    #[test]
    fn pages_without_main_keep_the_body_without_scripts() {
        let text = to_text(
            "<body><div>One<br>Two</div><script>alert(1)</script><p>caf&eacute; &#233; &#x41;</p></body>",
            None,
        );
        assert_eq!(text, "One\nTwo\n\ncaf&eacute; é A");
    }
}
