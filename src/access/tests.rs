//! Unit tests of the access decisions, on a real daemon database.

use super::*;

async fn access(config: AccessConfig) -> (Access, tempfile::TempDir) {
    let directory = tempfile::tempdir().expect("tempdir");
    let pool = crate::database::open_daemon(&directory.path().join("daemon.db"))
        .await
        .expect("database");
    let access = Access::open(config, AccessStore::new(pool))
        .await
        .expect("access");
    (access, directory)
}

fn config() -> AccessConfig {
    AccessConfig {
        owners: vec!["telegram:1".into()],
        members: vec!["telegram:2".into()],
        groups: vec!["telegram:-100".into(), "discord:7".into()],
        require_mention: true,
        pairing: true,
        pairing_ttl_secs: 3600,
        group_messages_per_minute: 2,
    }
}

fn message(conversation: &str, sender: &str, direct: bool, mentions: bool) -> InboundMessage {
    let mut message = InboundMessage::new(
        ConversationId::parse(conversation).expect("conversation"),
        "someone",
        "hello",
    );
    message.sender_id = Some(sender.to_string());
    message.is_direct = direct;
    message.mentions_bot = mentions;
    message
}

#[tokio::test]
async fn direct_messages_are_read_only_from_known_people_and_strangers_get_one_code() {
    let (access, _directory) = access(config()).await;
    let open = GroupRule::default();
    let owner = message("telegram:1", "telegram:1", true, false);
    assert_eq!(
        access.admit(&owner, open).await.expect("admit"),
        Admission::Admit(Authority::Owner)
    );
    let member = message("telegram:2", "telegram:2", true, false);
    assert_eq!(
        access.admit(&member, open).await.expect("admit"),
        Admission::Admit(Authority::Member)
    );
    let stranger = message("telegram:3", "telegram:3", true, false);
    let Admission::Pair(first) = access.admit(&stranger, open).await.expect("admit") else {
        panic!("a stranger gets a pairing code");
    };
    assert_eq!(first.code.len(), CODE_LENGTH);
    let Admission::Pair(again) = access.admit(&stranger, open).await.expect("admit") else {
        panic!("and the same one again");
    };
    assert_eq!(again.code, first.code);
    assert_eq!(access.pending().await.expect("pending").len(), 1);

    access
        .approve(&first.code.to_lowercase(), Authority::Member)
        .await
        .expect("approve");
    assert_eq!(
        access.authority_of(Some("telegram:3")),
        Some(Authority::Member)
    );
    assert!(access.pending().await.expect("pending").is_empty());
    assert!(matches!(
        access.approve(&first.code, Authority::Member).await,
        Err(AccessError::UnknownCode(_))
    ));
    assert!(access.revoke("telegram:3").await.expect("revoke"));
    assert_eq!(access.authority_of(Some("telegram:3")), None);

    let mut closed = config();
    closed.pairing = false;
    let (access, _directory) = self::access(closed).await;
    assert!(matches!(
        access.admit(&stranger, open).await.expect("admit"),
        Admission::Ignore(_)
    ));
}

#[tokio::test]
async fn groups_are_read_only_when_allowed_and_mentioned() {
    let (access, _directory) = access(config()).await;
    let unnamed = GroupRule::default();
    let outside = message("telegram:-200", "telegram:2", false, true);
    assert!(matches!(
        access.admit(&outside, unnamed).await.expect("admit"),
        Admission::Ignore(_)
    ));
    let quiet = message("telegram:-100", "telegram:9", false, false);
    assert!(matches!(
        access.admit(&quiet, unnamed).await.expect("admit"),
        Admission::Ignore(_)
    ));
    let addressed = message("telegram:-100", "telegram:9", false, true);
    assert_eq!(
        access.admit(&addressed, unnamed).await.expect("admit"),
        Admission::Admit(Authority::Guest)
    );
    let guild = message("discord:7:8", "discord:5", false, true);
    assert_eq!(
        access.admit(&guild, unnamed).await.expect("admit"),
        Admission::Admit(Authority::Guest)
    );
    // A binding names a group, and may let it speak without a mention.
    let bound = GroupRule {
        named: true,
        require_mention: Some(false),
    };
    let elsewhere = message("telegram:-300", "telegram:2", false, false);
    assert_eq!(
        access.admit(&elsewhere, bound).await.expect("admit"),
        Admission::Admit(Authority::Member)
    );
}

#[tokio::test]
async fn a_flood_in_a_group_is_cut_off_and_told_once() {
    let (access, _directory) = access(config()).await;
    let rule = GroupRule::default();
    let flood = message("telegram:-100", "telegram:9", false, true);
    for _ in 0..2 {
        assert!(matches!(
            access.admit(&flood, rule).await.expect("admit"),
            Admission::Admit(_)
        ));
    }
    assert_eq!(
        access.admit(&flood, rule).await.expect("admit"),
        Admission::Throttle { notify: true }
    );
    assert_eq!(
        access.admit(&flood, rule).await.expect("admit"),
        Admission::Throttle { notify: false }
    );
    let owner = message("telegram:-100", "telegram:1", false, true);
    for _ in 0..5 {
        assert_eq!(
            access.admit(&owner, rule).await.expect("admit"),
            Admission::Admit(Authority::Owner)
        );
    }
}
