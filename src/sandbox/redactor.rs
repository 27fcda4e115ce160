//! Keeping secrets out of what models and people see: every configured secret is replaced in
//! tool output, events, replies and transcripts, as itself and in its common encodings
//! (base64 in its three alignments, standard and URL-safe, hex, percent-encoding), so that
//! `cat config.toml | base64` shows no key either.

use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// Secrets shorter than this are ignored: replacing them would garble ordinary output.
const SHORTEST_SECRET: usize = 6;
/// Encoded forms shorter than this are not searched for (a few base64 characters of a
/// secret's middle match too much ordinary text).
const SHORTEST_FORM: usize = 8;
const REPLACEMENT: &str = "[redacted]";

/// Replaces every configured secret value, in its encodings, before text leaves the daemon.
/// Clones share one list, which a config reload can extend.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Every searched form, longest first, so a form containing another is replaced whole.
    forms: Arc<RwLock<Arc<[String]>>>,
}

impl Redactor {
    pub fn new(secrets: Vec<String>) -> Self {
        let redactor = Self::default();
        redactor.add(secrets);
        redactor
    }

    /// Redacts `secrets` too from now on, in every clone (a config reload named new ones).
    /// Secrets known before stay redacted: they may still be in transcripts and workspaces.
    pub fn add(&self, secrets: Vec<String>) {
        let mut forms: Vec<String> = self.forms().iter().cloned().collect();
        forms.extend(
            secrets
                .iter()
                .filter(|secret| secret.len() >= SHORTEST_SECRET)
                .flat_map(|secret| encodings(secret.as_bytes())),
        );
        forms.sort_by(|left, right| right.len().cmp(&left.len()).then(left.cmp(right)));
        forms.dedup();
        let forms: Arc<[String]> = forms.into();
        match self.forms.write() {
            Ok(mut current) => *current = forms,
            Err(poisoned) => *poisoned.into_inner() = forms,
        }
    }

    fn forms(&self) -> Arc<[String]> {
        match self.forms.read() {
            Ok(forms) => forms.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for form in self.forms().iter() {
            if text.contains(form.as_str()) {
                text = text.replace(form.as_str(), REPLACEMENT);
            }
        }
        text
    }

    /// Redacts every string inside a JSON value (a tool call's arguments).
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(text) => *text = self.redact(text),
            serde_json::Value::Array(items) => {
                items.iter_mut().for_each(|item| self.redact_json(item));
            }
            serde_json::Value::Object(fields) => {
                fields.values_mut().for_each(|item| self.redact_json(item));
            }
            _ => {}
        }
    }

    /// Whether there is anything to redact at all.
    pub fn is_empty(&self) -> bool {
        self.forms().is_empty()
    }

    /// `redact` for text still being written (a streamed draft): a tail that could be the
    /// start of a secret is held back, so no part of one is ever shown.
    pub fn redact_draft(&self, text: &str) -> String {
        let held = self
            .forms()
            .iter()
            .map(|form| {
                (1..form.len().min(text.len() + 1))
                    .rev()
                    .find(|length| {
                        form.is_char_boundary(*length) && text.ends_with(&form[..*length])
                    })
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        self.redact(&text[..text.len() - held])
    }
}

/// The secret and what it looks like encoded. A secret inside a longer base64 stream is
/// encoded differently depending on where it starts (its offset modulo 3); each of the three
/// alignments has a stable core, which is what is searched for.
fn encodings(secret: &[u8]) -> Vec<String> {
    let mut forms = vec![String::from_utf8_lossy(secret).into_owned()];
    for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
        for offset in 0..3 {
            let mut padded = vec![0u8; offset];
            padded.extend_from_slice(secret);
            let encoded = engine.encode(&padded);
            // Characters touched by the leading padding, and the last partial group, depend
            // on what surrounds the secret: keep only the core.
            let skip = (offset * 8).div_ceil(6);
            let whole = (padded.len() / 3) * 4;
            if whole > skip {
                let core = &encoded[skip..whole];
                if core.len() >= SHORTEST_FORM {
                    forms.push(core.to_string());
                }
            }
        }
    }
    let hex: String = secret.iter().map(|byte| format!("{byte:02x}")).collect();
    forms.push(hex.to_ascii_uppercase());
    forms.push(hex);
    let escaped = url::form_urlencoded::byte_serialize(secret).collect::<String>();
    if escaped.as_bytes() != secret {
        forms.push(escaped);
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_never_shows_the_start_of_a_secret() {
        let redactor = Redactor::new(vec![SECRET.to_string()]);
        assert_eq!(
            redactor.redact_draft("the key is sk-live-12"),
            "the key is "
        );
        assert_eq!(redactor.redact_draft("the key is s"), "the key is ");
        assert_eq!(redactor.redact_draft("plain text"), "plain text");
        assert!(
            !redactor
                .redact_draft(&format!("{SECRET} ok"))
                .contains("sk-live")
        );
    }

    const SECRET: &str = "sk-live-1234567890abcdef";

    #[test]
    fn secrets_are_redacted_as_they_are_and_short_values_are_left_alone() {
        let redactor = Redactor::new(vec![SECRET.into(), "abc".into()]);
        assert_eq!(
            redactor.redact(&format!("key={SECRET} abc")),
            "key=[redacted] abc"
        );
    }

    #[test]
    fn every_string_of_a_tool_calls_arguments_is_redacted() {
        let redactor = Redactor::new(vec![SECRET.into()]);
        let mut arguments = serde_json::json!({
            "command": format!("curl -H 'Authorization: {SECRET}'"),
            "nested": [{"value": SECRET}, 42],
            "plain": "nothing here",
        });
        redactor.redact_json(&mut arguments);
        assert_eq!(
            arguments,
            serde_json::json!({
                "command": "curl -H 'Authorization: [redacted]'",
                "nested": [{"value": "[redacted]"}, 42],
                "plain": "nothing here",
            })
        );
    }

    #[test]
    fn encoded_secrets_are_redacted_wherever_they_start() {
        let redactor = Redactor::new(vec![SECRET.into()]);
        for prefix in ["", "a", "ab", "api_key = \"", "[llm]\napi_key = \""] {
            let file = format!("{prefix}{SECRET}\"\nmore config\n");
            for engine in [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::URL_SAFE,
            ] {
                let encoded = engine.encode(file.as_bytes());
                let redacted = redactor.redact(&encoded);
                assert!(redacted.contains(REPLACEMENT), "{prefix:?}: {redacted}");
                // What is left of the secret's encoding is at most a few characters at
                // either end of the cut.
                let cut = encoded.len() - (redacted.len() - REPLACEMENT.len());
                assert!(
                    cut * 3 / 4 + 3 >= SECRET.len(),
                    "{prefix:?}: only {cut} cut"
                );
            }
        }
        let hex: String = SECRET.bytes().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(redactor.redact(&hex), REPLACEMENT);
        assert_eq!(redactor.redact(&hex.to_uppercase()), REPLACEMENT);
        let with_symbols = Redactor::new(vec!["p@ss w/rd+42".into()]);
        assert_eq!(with_symbols.redact("p%40ss+w%2Frd%2B42"), REPLACEMENT);
    }
}
