//! Emoji for reactions: the common ones with their Slack names, since Slack's
//! `reactions.add` takes a name (`thumbsup`) where Telegram and Discord take the emoji
//! itself (👍). A model may give either: the emoji, a bare name or `:name:`.

/// The emoji the daemon can name, each with its Slack name.
const NAMED: &[(&str, &str)] = &[
    ("👍", "thumbsup"),
    ("👎", "thumbsdown"),
    ("❤", "heart"),
    ("😂", "joy"),
    ("🎉", "tada"),
    ("✅", "white_check_mark"),
    ("👀", "eyes"),
    ("🙏", "pray"),
    ("🔥", "fire"),
    ("😢", "cry"),
    ("😮", "open_mouth"),
    ("🤔", "thinking_face"),
    ("😀", "grinning"),
    ("😄", "smile"),
    ("😊", "blush"),
    ("🙂", "slightly_smiling_face"),
    ("😉", "wink"),
    ("😍", "heart_eyes"),
    ("😅", "sweat_smile"),
    ("🤣", "rolling_on_the_floor_laughing"),
    ("😭", "sob"),
    ("😡", "rage"),
    ("🤯", "exploding_head"),
    ("🥳", "partying_face"),
    ("👏", "clap"),
    ("🙌", "raised_hands"),
    ("👌", "ok_hand"),
    ("👋", "wave"),
    ("💪", "muscle"),
    ("🤝", "handshake"),
    ("💯", "100"),
    ("🚀", "rocket"),
    ("⭐", "star"),
    ("✨", "sparkles"),
    ("💡", "bulb"),
    ("❌", "x"),
    ("⚠", "warning"),
    ("✔", "heavy_check_mark"),
];

/// Slack's other names for some of the emoji above.
const ALIASES: &[(&str, &str)] = &[("+1", "thumbsup"), ("-1", "thumbsdown")];

/// The longest emoji name taken (Slack allows 100 characters for custom emoji).
const MAXIMUM_NAME: usize = 100;

/// Without variation selectors (U+FE0F asks for the emoji presentation, U+FE0E for text),
/// which models write or leave out at will.
fn bare(emoji: &str) -> String {
    emoji
        .chars()
        .filter(|character| !matches!(character, '\u{FE0F}' | '\u{FE0E}'))
        .collect()
}

/// The name in `text` when it is an emoji name, bare or as `:name:`: lowercase letters,
/// digits, `_`, `-`, `+` and `'`, and `:` within (`thumbsup::skin-tone-2`).
pub fn name_in(text: &str) -> Option<&str> {
    let text = text.trim();
    let name = text
        .strip_prefix(':')
        .and_then(|inner| inner.strip_suffix(':'))
        .unwrap_or(text);
    let valid = !name.is_empty()
        && name.len() <= MAXIMUM_NAME
        && !name.starts_with(':')
        && !name.ends_with(':')
        && name.chars().all(|character| {
            character.is_ascii_lowercase()
                || character.is_ascii_digit()
                || matches!(character, '_' | '-' | '+' | '\'' | ':')
        });
    valid.then_some(name)
}

/// The name Slack's `reactions.add` takes for `emoji`: a name as given (Slack also knows
/// names this table lacks, and a workspace's own), else the name of a known emoji; `None`
/// for an emoji the table does not name.
pub fn slack_name(emoji: &str) -> Option<String> {
    if let Some(name) = name_in(emoji) {
        return Some(name.to_string());
    }
    let wanted = bare(emoji.trim());
    // A skin tone (U+1F3FB to U+1F3FF) is Slack's `::skin-tone-2` to `::skin-tone-6`.
    let (base, tone) = match wanted.chars().last() {
        Some(last @ '\u{1F3FB}'..='\u{1F3FF}') => (
            &wanted[..wanted.len() - last.len_utf8()],
            Some(u32::from(last) - 0x1F3FB + 2),
        ),
        _ => (wanted.as_str(), None),
    };
    let name = NAMED
        .iter()
        .find(|(unicode, _)| *unicode == base)
        .map(|(_, name)| *name)?;
    Some(match tone {
        Some(tone) => format!("{name}::skin-tone-{tone}"),
        None => name.to_string(),
    })
}

/// The emoji itself, for platforms that take Unicode: `emoji` as given when it is no name,
/// the emoji of a known name; `None` for a name the table does not know.
pub fn unicode(emoji: &str) -> Option<String> {
    let Some(name) = name_in(emoji) else {
        return Some(emoji.trim().to_string());
    };
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, name)| name);
    NAMED
        .iter()
        .find(|(_, known)| *known == name)
        .map(|(unicode, _)| (*unicode).to_string())
}

/// The known emoji, for messages that list them.
pub fn known() -> String {
    NAMED
        .iter()
        .map(|(unicode, _)| *unicode)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_emoji_get_their_slack_names() {
        assert_eq!(slack_name("👍").as_deref(), Some("thumbsup"));
        assert_eq!(slack_name("❤️").as_deref(), Some("heart"));
        assert_eq!(slack_name("❤").as_deref(), Some("heart"));
        assert_eq!(slack_name(" 🎉 ").as_deref(), Some("tada"));
        assert_eq!(slack_name("🤔").as_deref(), Some("thinking_face"));
        assert_eq!(slack_name("👍🏽").as_deref(), Some("thumbsup::skin-tone-4"));
    }

    #[test]
    fn names_pass_through_for_slack_with_or_without_colons() {
        assert_eq!(slack_name(":thumbsup:").as_deref(), Some("thumbsup"));
        assert_eq!(slack_name("party_parrot").as_deref(), Some("party_parrot"));
        assert_eq!(slack_name(":+1:").as_deref(), Some("+1"));
        assert_eq!(
            slack_name(":wave::skin-tone-3:").as_deref(),
            Some("wave::skin-tone-3")
        );
        assert_eq!(slack_name(":x"), None);
    }

    #[test]
    fn an_unknown_emoji_has_no_slack_name() {
        assert_eq!(slack_name("🦑"), None);
        assert_eq!(slack_name("Thumbs Up"), None);
    }

    #[test]
    fn known_names_become_unicode_for_the_other_platforms() {
        assert_eq!(unicode(":tada:").as_deref(), Some("🎉"));
        assert_eq!(unicode("+1").as_deref(), Some("👍"));
        assert_eq!(unicode("🦑").as_deref(), Some("🦑"));
        assert_eq!(unicode(":party_parrot:"), None);
    }
}
