//! Unit tests of the `[access]` and `[sandbox]` tables: who may do what, and where workers run.

use super::{invalid, invalid_with, parse};

#[test]
fn access_names_people_by_stable_ids_and_denies_by_default() {
    let config = parse("");
    assert!(config.access.owners.is_empty() && config.access.members.is_empty());
    assert!(config.access.require_mention && config.access.pairing);
    assert!(
        config
            .notices
            .iter()
            .any(|notice| notice.contains("owners is empty")),
        "{:#?}",
        config.notices
    );
    let config = parse(
        "[access]\nowners = [\"telegram:123456789\", \"slack:U024BE7LH\"]\n\
         members = [\"discord:80351110224678912\"]\ngroups = [\"telegram:-1001\", \"discord:7:8\"]\n\
         pairing_ttl = \"30m\"\n",
    );
    assert_eq!(
        config.access.owners,
        vec!["telegram:123456789", "slack:U024BE7LH"]
    );
    assert_eq!(config.access.pairing_ttl_secs, 1800);
    assert!(
        !config
            .notices
            .iter()
            .any(|notice| notice.contains("owners is empty"))
    );
    for (text, key) in [
        (
            "[access]\nowners = [\"telegram:@alice\"]\n",
            "access.owners[0]",
        ),
        ("[access]\nowners = [\"alice\"]\n", "access.owners[0]"),
        (
            "[access]\nmembers = [\"slack:alice\"]\n",
            "access.members[0]",
        ),
        ("[access]\ngroups = [\"irc:x\"]\n", "access.groups[0]"),
    ] {
        let (line, _, found, message) = invalid(text);
        assert_eq!((line, found.as_str()), (2, key), "{message}");
    }
    let (_, _, _, message) = invalid("[access]\nowners = [\"telegram:@alice\"]\n");
    assert!(message.contains("usernames"), "{message}");
}

#[test]
fn an_empty_dm_allow_list_no_longer_lets_everyone_in_and_says_so() {
    let config = parse("[messaging.telegram]\ntoken = \"t\"\ndm_allowed_users = []\n");
    assert!(config.access.members.is_empty());
    assert!(
        config
            .notices
            .iter()
            .any(|notice| notice.contains("no longer lets everyone in")),
        "{:#?}",
        config.notices
    );
}

#[test]
fn old_allow_lists_add_members_and_ignore_usernames_loudly() {
    let config = parse(
        "[messaging.telegram]\ntoken = \"t\"\ndm_allowed_users = [\"@alice\", \"987654321\"]\n\
         [messaging.discord]\ntoken = \"d\"\ndm_allowed_users = [\"123456789012345678\"]\n",
    );
    assert_eq!(
        config.access.members,
        vec!["telegram:987654321", "discord:123456789012345678"]
    );
    assert!(
        config
            .notices
            .iter()
            .any(|notice| notice.contains("`@alice` is ignored")),
        "{:#?}",
        config.notices
    );
}

#[test]
fn a_relative_bwrap_path_is_refused_with_its_place() {
    let (line, _, key, message) = invalid_with("[sandbox]\nbwrap = \"bin/bwrap\"\n", &[]);
    assert_eq!((line, key.as_str()), (2, "sandbox.bwrap"));
    assert!(message.contains("not an absolute path"), "{message}");
}
