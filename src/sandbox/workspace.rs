//! The directory an agent's workers act in, and the file operations the file tools use on it.
//! A path is opened one component at a time from a descriptor of the workspace root, never
//! following a symlink (`O_NOFOLLOW` at every step), so nothing a worker puts in the
//! workspace can lead a file tool outside it, and no check can be raced between checking and
//! using a path. Only regular files are read or written: a FIFO, a device or a socket is
//! refused before anything blocks on it.

use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::SandboxError;

/// Where the workspace appears to shell commands (and how tools may name paths in it).
pub const SANDBOX_ROOT: &str = "/workspace";

/// A file read from the workspace: its first bytes, up to the limit, and its whole size.
#[derive(Debug)]
pub struct FileContents {
    pub bytes: Vec<u8>,
    pub size: u64,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    Other,
}

/// The directory an agent's workers act in.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
    /// Who owns what is created in it (when the daemon runs as root and commands run as an
    /// unprivileged user, the workspace is theirs).
    owner: Option<(u32, u32)>,
}

impl Workspace {
    /// `root` must exist; it is canonicalised so paths compare as real paths. With an
    /// `owner`, the workspace and everything in it is handed to that user.
    pub fn new(root: &Path, owner: Option<(u32, u32)>) -> std::io::Result<Self> {
        let workspace = Self {
            root: root.canonicalize()?,
            owner,
        };
        if let Some((uid, gid)) = owner {
            hand_over(&workspace.root, uid, gid)?;
        }
        Ok(workspace)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The components of a path a tool gave, relative to the workspace: relative paths as
    /// they are, absolute ones inside the workspace (its real path, or `/workspace/…` as
    /// shell commands see it). `..` that climbs out is refused.
    pub fn components(&self, requested: &str) -> Result<Vec<String>, SandboxError> {
        let requested = requested.trim();
        if requested.is_empty() {
            return Err(SandboxError::EmptyPath);
        }
        let outside = || SandboxError::OutsideWorkspace(requested.to_string());
        let path = Path::new(requested);
        let relative = if path.is_absolute() {
            path.strip_prefix(&self.root)
                .or_else(|_| path.strip_prefix(SANDBOX_ROOT))
                .map_err(|_| outside())?
        } else {
            path
        };
        let mut components: Vec<String> = Vec::new();
        for component in relative.components() {
            match component {
                Component::Normal(name) => components.push(
                    name.to_str()
                        .ok_or_else(|| SandboxError::NotUnicode(requested.to_string()))?
                        .to_string(),
                ),
                Component::ParentDir => {
                    components.pop().ok_or_else(outside)?;
                }
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) => return Err(outside()),
            }
        }
        Ok(components)
    }

    /// A descriptor of the directory `components` name, walked from the root without
    /// following symlinks; with `create`, missing directories are made.
    fn directory(&self, components: &[String], create: bool) -> Result<OwnedFd, SandboxError> {
        let mut directory = rustix::fs::open(
            &self.root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| self.error(&[], errno))?;
        for (index, name) in components.iter().enumerate() {
            let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let next = match rustix::fs::openat(&directory, name, flags, Mode::empty()) {
                Err(Errno::NOENT) if create => {
                    rustix::fs::mkdirat(&directory, name, Mode::from_raw_mode(0o700))
                        .or_else(|errno| {
                            if errno == Errno::EXIST {
                                Ok(())
                            } else {
                                Err(errno)
                            }
                        })
                        .map_err(|errno| self.error(&components[..=index], errno))?;
                    let created = rustix::fs::openat(&directory, name, flags, Mode::empty())
                        .map_err(|errno| self.error(&components[..=index], errno))?;
                    self.own(&created, &components[..=index])?;
                    created
                }
                Ok(next) => next,
                // O_NOFOLLOW with O_DIRECTORY reports a symlink as "not a directory".
                Err(Errno::NOTDIR) if is_symlink(&directory, name) => {
                    return Err(SandboxError::Symlink(components[..=index].join("/")));
                }
                Err(errno) => return Err(self.error(&components[..=index], errno)),
            };
            directory = next;
        }
        Ok(directory)
    }

    /// Opens the regular file `requested` names, refusing anything else before reading.
    fn open_file(
        &self,
        requested: &str,
        flags: OFlags,
        create: bool,
    ) -> Result<(OwnedFd, u64), SandboxError> {
        let components = self.components(requested)?;
        let Some((name, parents)) = components.split_last() else {
            return Err(SandboxError::NotAFile {
                path: requested.to_string(),
                kind: "the workspace directory",
            });
        };
        let directory = self.directory(parents, create)?;
        let mut flags = flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        if create {
            flags |= OFlags::CREATE;
        }
        let file = rustix::fs::openat(&directory, name, flags, Mode::from_raw_mode(0o600))
            .map_err(|errno| self.error(&components, errno))?;
        let stat = rustix::fs::fstat(&file).map_err(|errno| self.error(&components, errno))?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        if kind != FileType::RegularFile {
            return Err(SandboxError::NotAFile {
                path: requested.to_string(),
                kind: describe(kind),
            });
        }
        if create {
            self.own(&file, &components)?;
        }
        Ok((file, u64::try_from(stat.st_size).unwrap_or(0)))
    }

    /// Reads up to `limit` bytes of a regular file.
    pub fn read(&self, requested: &str, limit: u64) -> Result<FileContents, SandboxError> {
        use std::io::Read;
        let (file, size) = self.open_file(requested, OFlags::RDONLY, false)?;
        let mut bytes = Vec::new();
        std::fs::File::from(file)
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|source| SandboxError::Io {
                path: requested.to_string(),
                source,
            })?;
        Ok(FileContents { bytes, size })
    }

    /// Creates or replaces a regular file (and its missing directories) with `contents`.
    pub fn write(&self, requested: &str, contents: &[u8]) -> Result<(), SandboxError> {
        use std::io::Write;
        let (file, _) = self.open_file(requested, OFlags::WRONLY, true)?;
        rustix::fs::ftruncate(&file, 0).map_err(|errno| SandboxError::Io {
            path: requested.to_string(),
            source: errno.into(),
        })?;
        let mut file = std::fs::File::from(file);
        file.write_all(contents)
            .and_then(|()| file.flush())
            .map_err(|source| SandboxError::Io {
                path: requested.to_string(),
                source,
            })
    }

    /// The entries of a directory, sorted by name, without following symlinks.
    pub fn list(&self, requested: &str) -> Result<Vec<Entry>, SandboxError> {
        let components = self.components(requested)?;
        let directory = self.directory(&components, false)?;
        let mut entries = Vec::new();
        let mut reader = rustix::fs::Dir::read_from(&directory)
            .map_err(|errno| self.error(&components, errno))?;
        for entry in reader.by_ref() {
            let entry = entry.map_err(|errno| self.error(&components, errno))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            let stat = rustix::fs::statat(&directory, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|errno| self.error(&components, errno))?;
            let kind = match FileType::from_raw_mode(stat.st_mode) {
                FileType::RegularFile => EntryKind::File,
                FileType::Directory => EntryKind::Directory,
                FileType::Symlink => EntryKind::Symlink,
                _ => EntryKind::Other,
            };
            entries.push(Entry {
                name,
                kind,
                size: u64::try_from(stat.st_size).unwrap_or(0),
            });
        }
        entries.sort_by(|left, right| left.name.cmp(&right.name));
        Ok(entries)
    }

    /// Hands something just created to the workspace's owner.
    fn own(&self, file: &OwnedFd, components: &[String]) -> Result<(), SandboxError> {
        let Some((uid, gid)) = self.owner else {
            return Ok(());
        };
        rustix::fs::fchown(
            file,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .map_err(|errno| self.error(components, errno))
    }

    fn error(&self, components: &[String], errno: Errno) -> SandboxError {
        let path = components.join("/");
        match errno {
            Errno::LOOP | Errno::MLINK => SandboxError::Symlink(path),
            Errno::NOENT => SandboxError::NotFound(path),
            Errno::NOTDIR => SandboxError::NotADirectory(path),
            Errno::NXIO => SandboxError::NotAFile {
                path,
                kind: "a FIFO without a reader",
            },
            errno => SandboxError::Io {
                path,
                source: errno.into(),
            },
        }
    }
}

fn is_symlink(directory: &OwnedFd, name: &str) -> bool {
    rustix::fs::statat(directory, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Symlink)
}

fn describe(kind: FileType) -> &'static str {
    match kind {
        FileType::Directory => "a directory (use file_list)",
        FileType::Fifo => "a FIFO",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        FileType::Socket => "a socket",
        FileType::Symlink => "a symlink",
        FileType::RegularFile | FileType::Unknown => "not a regular file",
    }
}

/// Gives `root` and everything under it (symlinks themselves, never their targets) to `uid`.
fn hand_over(root: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
        let metadata = std::fs::symlink_metadata(&path)?;
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
