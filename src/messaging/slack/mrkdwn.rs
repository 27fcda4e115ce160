//! Slack's mrkdwn from the Markdown models write.

/// The Markdown an LLM writes, in Slack's mrkdwn: `**bold**` → `*bold*`, `[label](url)` →
/// `<url|label>`, headings → bold lines. Code blocks pass through unchanged.
pub fn markdown_to_mrkdwn(markdown: &str) -> String {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in markdown.split('\n') {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            out.push(line.to_string());
            continue;
        }
        if in_code {
            out.push(line.to_string());
            continue;
        }
        let trimmed = line.trim_start();
        let heading = trimmed.trim_start_matches('#');
        let line = if heading.len() < trimmed.len() && heading.starts_with(' ') {
            format!("*{}*", heading.trim())
        } else {
            line.replace("**", "*").replace("__", "_")
        };
        out.push(convert_links(&line));
    }
    out.join("\n")
}

fn convert_links(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('[') {
        let candidate = &rest[start..];
        let parsed = candidate.find("](").and_then(|close| {
            let after = &candidate[close + 2..];
            let end = after.find(')')?;
            let url = &after[..end];
            (url.starts_with("http://") || url.starts_with("https://"))
                .then(|| (&candidate[1..close], url, close + 2 + end + 1))
        });
        match parsed {
            Some((label, url, used)) => {
                out.push_str(&rest[..start]);
                out.push_str(&format!("<{url}|{label}>"));
                rest = &candidate[used..];
            }
            None => {
                out.push_str(&rest[..=start]);
                rest = &rest[start + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_mrkdwn() {
        assert_eq!(markdown_to_mrkdwn("**bold** text"), "*bold* text");
        assert_eq!(markdown_to_mrkdwn("## Title"), "*Title*");
        assert_eq!(
            markdown_to_mrkdwn("see [docs](https://example.com) [x]"),
            "see <https://example.com|docs> [x]"
        );
        assert_eq!(markdown_to_mrkdwn("```\n**raw**\n```"), "```\n**raw**\n```");
    }
}
