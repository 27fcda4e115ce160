//! Unit tests of the workspace's file operations, on real files.

use super::*;

fn workspace() -> (Workspace, tempfile::TempDir) {
    let directory = tempfile::tempdir().expect("tempdir");
    let workspace = Workspace::new(directory.path(), None).expect("workspace");
    (workspace, directory)
}

#[test]
fn paths_stay_inside_the_workspace() {
    let (workspace, _directory) = workspace();
    let root = workspace.root().to_path_buf();
    assert_eq!(
        workspace.components("notes/today.md").expect("inside"),
        vec!["notes", "today.md"]
    );
    assert_eq!(
        workspace.components("a/../b.txt").expect("inside"),
        vec!["b.txt"]
    );
    assert_eq!(
        workspace
            .components(&root.join("inside.txt").to_string_lossy())
            .expect("inside"),
        vec!["inside.txt"]
    );
    assert_eq!(
        workspace.components("/workspace/x/y").expect("inside"),
        vec!["x", "y"]
    );
    for escape in [
        "../secret",
        "a/../../x",
        "/etc/passwd",
        "../../../../etc",
        "/workspacex/y",
    ] {
        assert!(
            matches!(
                workspace.components(escape),
                Err(SandboxError::OutsideWorkspace(_))
            ),
            "{escape} was allowed"
        );
    }
}

#[test]
fn files_are_written_read_and_listed_with_their_directories() {
    let (workspace, _directory) = workspace();
    workspace
        .write("notes/a/today.md", b"hello")
        .expect("write");
    let read = workspace.read("notes/a/today.md", 1024).expect("read");
    assert_eq!((read.bytes.as_slice(), read.size), (b"hello".as_slice(), 5));
    workspace.write("notes/a/today.md", b"hi").expect("replace");
    assert_eq!(
        workspace
            .read("notes/a/today.md", 1024)
            .expect("read")
            .bytes,
        b"hi"
    );
    let capped = workspace.read("notes/a/today.md", 1).expect("read");
    assert_eq!((capped.bytes.as_slice(), capped.size), (b"h".as_slice(), 2));
    let entries = workspace.list("notes").expect("list");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, EntryKind::Directory);
    assert!(matches!(
        workspace.read("missing.txt", 10),
        Err(SandboxError::NotFound(_))
    ));
    assert!(matches!(
        workspace.read("notes", 10),
        Err(SandboxError::Io { .. } | SandboxError::NotAFile { .. })
    ));
}

#[test]
fn symlinks_are_never_followed_even_inside() {
    let (workspace, directory) = workspace();
    std::os::unix::fs::symlink("/etc", directory.path().join("etc")).expect("symlink");
    std::os::unix::fs::symlink("/etc/passwd", directory.path().join("passwd")).expect("symlink");
    std::fs::write(directory.path().join("real.txt"), "x").expect("write");
    std::os::unix::fs::symlink("real.txt", directory.path().join("alias.txt")).expect("symlink");
    for path in ["etc/passwd", "passwd", "alias.txt", "etc/new-file"] {
        assert!(
            matches!(
                workspace.read(path, 10),
                Err(SandboxError::Symlink(_) | SandboxError::NotADirectory(_))
            ),
            "{path} was followed"
        );
    }
    for path in ["passwd", "etc/new-file", "etc/sub/new-file"] {
        assert!(
            workspace.write(path, b"x").is_err(),
            "{path} was written through"
        );
    }
    assert!(!Path::new("/etc/new-file").exists());
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let (workspace, directory) = workspace();
    let fifo = directory.path().join("pipe");
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, Mode::from_raw_mode(0o600)).expect("mkfifo");
    assert!(matches!(
        workspace.read("pipe", 10),
        Err(SandboxError::NotAFile { kind: "a FIFO", .. })
    ));
    assert!(matches!(
        workspace.write("pipe", b"x"),
        Err(SandboxError::NotAFile { .. })
    ));
}
