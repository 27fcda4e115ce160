//! What Slack says of the files people share that slack-morphism's `SlackFile` leaves out
//! (the stated size, the voice-clip subtype), read from the raw event.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::Value;
use slack_morphism::prelude::SlackFile;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FileFacts {
    /// The stated size, so that a file over the limit is refused before it is fetched; 0
    /// when not stated.
    pub size: u64,
    /// A voice clip recorded in Slack (`subtype: slack_audio`).
    pub audio_clip: bool,
}

impl FileFacts {
    /// The file's MIME type: as Slack states it, else as its name suggests; a voice clip
    /// is audio even when Slack calls it `video/mp4`.
    pub fn media_type<'a>(&self, file: &'a SlackFile, name: &str) -> Cow<'a, str> {
        let stated = file
            .mimetype
            .as_ref()
            .map_or(crate::message::media_type_of(name), |mime| mime.0.as_str());
        match stated.strip_prefix("video/") {
            Some(container) if self.audio_clip => Cow::Owned(format!("audio/{container}")),
            _ => Cow::Borrowed(stated),
        }
    }
}

/// The `FileFacts` of each file of an event, by file id.
pub(super) fn file_facts(payload: &Value) -> HashMap<String, FileFacts> {
    payload["event"]["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|file| {
            let facts = FileFacts {
                size: file["size"].as_u64().unwrap_or(0),
                audio_clip: file["subtype"] == "slack_audio",
            };
            Some((file["id"].as_str()?.to_string(), facts))
        })
        .collect()
}
