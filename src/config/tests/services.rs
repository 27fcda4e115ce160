//! Unit tests of `[web]`, agent `links` with `[agent_messages]`, and `[media]`.

use super::{invalid, invalid_with, parse, parse_with};
use crate::config::WebConfig;

#[test]
fn web_settings_resolve_hosts_backends_and_keys() {
    let config = parse_with(
        "[web]\nallow_hosts = [\"Wiki.Internal\", \"[::1]\"]\nmax_fetch_kb = 64\n\n[web.search]\nbackend = \"brave\"\napi_key = \"env:BRAVE_KEY\"\n",
        &[("BRAVE_KEY", "brave-secret")],
    )
    .expect("parses");
    assert_eq!(config.web.allow_hosts, vec!["wiki.internal", "::1"]);
    assert_eq!(config.web.max_fetch_bytes, 64 * 1024);
    let search = config.web.search.as_ref().expect("search");
    assert_eq!(search.url, "https://api.search.brave.com");
    assert!(config.secrets().contains(&"brave-secret".to_string()));
    assert_eq!(parse("").web, WebConfig::default());

    let (line, _, key, message) = invalid("[web.search]\nbackend = \"searxng\"\n");
    assert_eq!((line, key.as_str()), (2, "web.search.url"));
    assert!(message.contains("instance"), "{message}");
    let (_, _, key, _) = invalid("[web.search]\nbackend = \"tavily\"\n");
    assert_eq!(key, "web.search.api_key");
    let (_, _, key, _) = invalid("[web]\nallow_hosts = [\"http://wiki/\"]\n");
    assert_eq!(key, "web.allow_hosts");
}

#[test]
fn agent_links_name_other_agents_and_the_limits_are_positive() {
    let config = parse(
        "[[agents]]\nid = \"main\"\nlinks = [\"research\", \"research\"]\n\n[[agents]]\nid = \"research\"\n\n[agent_messages]\nmax_depth = 2\n",
    );
    assert_eq!(config.agents[0].links, vec!["research"]);
    assert!(config.agents[1].links.is_empty());
    assert_eq!(config.agent_messages.max_depth, 2);
    assert_eq!(config.agent_messages.per_minute, 10);
    let (line, _, key, message) = invalid("[[agents]]\nid = \"main\"\nlinks = [\"ghost\"]\n");
    assert_eq!((line, key.as_str()), (3, "agents[0].links"));
    assert!(message.contains("no agent `ghost`"), "{message}");
    let (_, _, _, message) = invalid("[[agents]]\nid = \"main\"\nlinks = [\"main\"]\n");
    assert!(message.contains("itself"), "{message}");
    let (_, _, key, _) = invalid("[agent_messages]\nper_minute = 0\n");
    assert_eq!(key, "agent_messages.per_minute");
}

#[test]
fn media_limits_have_defaults_and_are_checked() {
    let config = parse("");
    assert_eq!(config.media, crate::config::MediaConfig::default());
    let config = parse("[media]\nmax_file_mb = 5\nimage_max_side = 800\ndocument_chars = 100\n");
    assert_eq!(config.media.max_file_bytes, 5 << 20);
    assert_eq!(config.media.image_max_side, 800);
    assert_eq!(config.media.document_chars, 100);
    let (line, _, key, message) = invalid_with("[media]\nimage_max_side = 10\n", &[]);
    assert_eq!((line, key.as_str()), (2, "media.image_max_side"));
    assert!(message.contains("64"), "{message}");
    let config = parse("[llm.models.\"local/llava\"]\nvision = false\n");
    assert!(!config.llm.models["local/llava"].reads_images());
}
