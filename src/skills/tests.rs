use super::*;

fn write_skill(root: &Path, folder: &str, name: &str, description: &str) -> PathBuf {
    let directory = root.join(folder);
    std::fs::create_dir_all(&directory).expect("mkdir");
    std::fs::write(
        directory.join(SKILL_FILE),
        format!("---\nname: {name}\ndescription: {description}\n---\n\n# Steps\n1. Do it.\n"),
    )
    .expect("write");
    directory
}

#[test]
fn front_matter_is_read_with_quotes_and_blocks() {
    let (name, description, body) =
        parse("---\nname: deploy\ndescription: \"Ship it: safely\"\n---\nBody here\n")
            .expect("valid");
    assert_eq!(
        (name.as_str(), description.as_str(), body.as_str()),
        ("deploy", "Ship it: safely", "Body here")
    );
    let (_, description, _) =
        parse("---\nname: a\ndescription: >\n  one\n  two\nother: x\n---\nB").expect("valid");
    assert_eq!(description, "one two");
    for broken in [
        "no front matter",
        "---\nname: a\n",
        "---\ndescription: d\n---\nB",
        "---\nname: Bad Name\ndescription: d\n---\nB",
        "---\nname: a\n---\nB",
        "---\nname: a\ndescription: d\n---\n",
    ] {
        assert!(parse(broken).is_err(), "{broken:?} was accepted");
    }
}

#[test]
fn an_agents_skill_replaces_a_shared_one_and_changes_are_seen() {
    let home = tempfile::tempdir().expect("tempdir");
    let shared = home.path().join("skills");
    let own = home.path().join("agents/main/skills");
    write_skill(&shared, "deploy", "deploy", "shared way");
    write_skill(&shared, "broken", "Not Valid", "x");
    let skills = Skills::new(&shared, &own);
    let listed = skills.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].scope, Scope::Shared);
    write_skill(&own, "deploy-mine", "deploy", "my way");
    write_skill(&own, "backup", "backup", "copy the data");
    let listed = skills.list();
    let names: Vec<(&str, &str)> = listed
        .iter()
        .map(|skill| (skill.name.as_str(), skill.description.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![("backup", "copy the data"), ("deploy", "my way")]
    );
}

#[test]
fn files_are_listed_and_read_inside_the_skill_only() {
    let home = tempfile::tempdir().expect("tempdir");
    let shared = home.path().join("skills");
    let directory = write_skill(&shared, "deploy", "deploy", "ship");
    std::fs::create_dir_all(directory.join("scripts")).expect("mkdir");
    std::fs::write(directory.join("scripts/run.sh"), "echo hi\n").expect("write");
    std::fs::write(home.path().join("secret.toml"), "key = 1").expect("write");
    std::os::unix::fs::symlink(home.path().join("secret.toml"), directory.join("link"))
        .expect("symlink");
    let skills = Skills::new(&shared, &home.path().join("none"));
    let document = skills.read("deploy").expect("read");
    assert_eq!(document.body, "# Steps\n1. Do it.");
    assert_eq!(document.files, vec!["scripts/run.sh"]);
    assert_eq!(
        skills.read_file("deploy", "scripts/run.sh").expect("file"),
        "echo hi\n"
    );
    assert!(matches!(
        skills.read_file("deploy", "../../secret.toml"),
        Err(SkillError::OutsidePath(_))
    ));
    assert!(matches!(
        skills.read_file("deploy", "link"),
        Err(SkillError::Link(_))
    ));
    assert!(matches!(
        skills.read("nope"),
        Err(SkillError::Unknown { known, .. }) if known == vec!["deploy"]
    ));
}

#[test]
fn install_copies_a_valid_skill_and_remove_deletes_it() {
    let home = tempfile::tempdir().expect("tempdir");
    let source = write_skill(&home.path().join("src"), "whatever", "report", "weekly");
    std::fs::write(source.join("template.md"), "T").expect("write");
    let root = home.path().join("skills");
    let skill = install(&source, &root).expect("install");
    assert_eq!(skill.directory, root.join("report"));
    assert!(root.join("report/template.md").is_file());
    assert!(matches!(
        install(&source, &root),
        Err(SkillError::Exists(_))
    ));
    remove(&root, "report").expect("remove");
    assert!(!root.join("report").exists());
    assert!(matches!(
        remove(&root, "report"),
        Err(SkillError::Unknown { .. })
    ));
}
