//! Skills: procedures the owner writes down once, as folders holding a `SKILL.md` (front
//! matter `name` and `description`, then the body) and any files beside it. They live under
//! `$SPACEBOT_HOME/skills/` (every agent's) and each agent's `skills/` (its own, which win over
//! a shared one of the same name). `Skills::list` rescans when a folder or `SKILL.md` changed,
//! so a skill added while the daemon runs is offered on the next turn. The `skills` CLI
//! installs and removes them with `install` and `remove`.

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The file that makes a folder a skill.
pub const SKILL_FILE: &str = "SKILL.md";
/// Bytes of a `SKILL.md`, and of another file of a skill, read at most.
const MAX_SKILL_BYTES: u64 = 256 << 10;
const MAX_FILE_BYTES: u64 = 256 << 10;
/// Characters of a description kept.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Skill folders looked at per root, and files listed per skill, at most.
const MAX_SKILLS_PER_ROOT: usize = 500;
const MAX_FILES_LISTED: usize = 200;
const MAX_LIST_DEPTH: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum SkillError {
    #[error("there is no skill named `{name}`{}", known_names(.known))]
    Unknown { name: String, known: Vec<String> },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{0}` is not a file of the skill (a relative path inside its folder, without `..`)")]
    OutsidePath(String),
    #[error("`{0}` is a link; skills' files are read only when they are plain files")]
    Link(String),
    #[error("`{path}` is {size} bytes; at most {MAX_FILE_BYTES} are read")]
    TooLarge { path: String, size: u64 },
    #[error("a skill named `{0}` is already installed there; remove it first")]
    Exists(String),
}

fn known_names(known: &[String]) -> String {
    if known.is_empty() {
        "; no skills are installed".to_string()
    } else {
        format!("; the skills are: {}", known.join(", "))
    }
}

/// Where a skill comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `$SPACEBOT_HOME/skills/`: every agent's.
    Shared,
    /// The agent's own `skills/`.
    Agent,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skill {
    pub name: String,
    pub description: String,
    pub directory: PathBuf,
    pub scope: Scope,
}

/// A skill as `read_skill` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillDocument {
    pub skill: Skill,
    pub body: String,
    /// Paths of the other files, relative to the skill's folder, sorted.
    pub files: Vec<String>,
}

/// What a scan found: the skills, and the folders that are not valid skills (logged).
#[derive(Debug, Default)]
pub struct Scan {
    pub skills: Vec<Skill>,
    pub problems: Vec<String>,
}

/// The skills one agent sees, rescanned when their folders change.
#[derive(Clone)]
pub struct Skills {
    roots: Arc<[(PathBuf, Scope)]>,
    cache: Arc<Mutex<Option<Scanned>>>,
}

/// The last scan, with the stamps it was made at.
type Scanned = (Vec<Stamp>, Arc<[Skill]>);

/// A path's modification time and size, to notice changes without reading files.
type Stamp = (PathBuf, Option<SystemTime>, u64);

impl Skills {
    pub fn new(shared_root: &Path, agent_root: &Path) -> Self {
        Self {
            roots: vec![
                (shared_root.to_path_buf(), Scope::Shared),
                (agent_root.to_path_buf(), Scope::Agent),
            ]
            .into(),
            cache: Arc::default(),
        }
    }

    /// The skills now, sorted by name; rescanned only when a root, a skill folder or a
    /// `SKILL.md` changed since the last call.
    pub fn list(&self) -> Arc<[Skill]> {
        let stamps = stamps(&self.roots);
        if let Ok(cache) = self.cache.lock()
            && let Some((known, skills)) = cache.as_ref()
            && *known == stamps
        {
            return skills.clone();
        }
        let scan = scan(&self.roots);
        for problem in &scan.problems {
            tracing::warn!(problem = %problem, "a skill folder was skipped");
        }
        tracing::debug!(skills = scan.skills.len(), "skills scanned");
        let skills: Arc<[Skill]> = scan.skills.into();
        // A poisoned cache is treated as empty: the next call scans again.
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((stamps, skills.clone()));
        }
        skills
    }

    fn find(&self, name: &str) -> Result<Skill, SkillError> {
        let skills = self.list();
        skills
            .iter()
            .find(|skill| skill.name == name)
            .cloned()
            .ok_or_else(|| SkillError::Unknown {
                name: name.to_string(),
                known: skills.iter().map(|skill| skill.name.clone()).collect(),
            })
    }

    /// The skill's body and the list of its other files.
    pub fn read(&self, name: &str) -> Result<SkillDocument, SkillError> {
        let skill = self.find(name)?;
        let path = skill.directory.join(SKILL_FILE);
        let text = read_capped(&path, MAX_SKILL_BYTES)?;
        let (_, _, body) = parse(&text).map_err(|message| SkillError::Invalid {
            path: path.clone(),
            message,
        })?;
        let mut files = Vec::new();
        list_files(&skill.directory, Path::new(""), 0, &mut files);
        files.retain(|file| file != SKILL_FILE);
        files.sort();
        Ok(SkillDocument { skill, body, files })
    }

    /// A file of the skill, by its path relative to the skill's folder. Links are refused,
    /// so a skill cannot point a reader at files elsewhere.
    pub fn read_file(&self, name: &str, relative: &str) -> Result<String, SkillError> {
        let skill = self.find(name)?;
        let outside = || SkillError::OutsidePath(relative.to_string());
        let relative_path = Path::new(relative);
        if relative.is_empty()
            || relative_path
                .components()
                .any(|component| !matches!(component, Component::Normal(_)))
        {
            return Err(outside());
        }
        let mut path = skill.directory.clone();
        for component in relative_path.components() {
            path.push(component);
            let metadata = std::fs::symlink_metadata(&path).map_err(|source| SkillError::Io {
                path: PathBuf::from(relative),
                source,
            })?;
            if metadata.file_type().is_symlink() {
                return Err(SkillError::Link(relative.to_string()));
            }
        }
        read_capped(&path, MAX_FILE_BYTES).map_err(|error| match error {
            SkillError::TooLarge { size, .. } => SkillError::TooLarge {
                path: relative.to_string(),
                size,
            },
            other => other,
        })
    }
}

/// Reads a text file of at most `limit` bytes, refusing larger ones.
fn read_capped(path: &Path, limit: u64) -> Result<String, SkillError> {
    let io = |source| SkillError::Io {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if !metadata.is_file() {
        return Err(SkillError::Invalid {
            path: path.to_path_buf(),
            message: "not a regular file".to_string(),
        });
    }
    if metadata.len() > limit {
        return Err(SkillError::TooLarge {
            path: path.display().to_string(),
            size: metadata.len(),
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn stamp(path: &Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok();
    (
        path.to_path_buf(),
        metadata
            .as_ref()
            .and_then(|metadata| metadata.modified().ok()),
        metadata.map_or(0, |metadata| metadata.len()),
    )
}

fn stamps(roots: &[(PathBuf, Scope)]) -> Vec<Stamp> {
    let mut stamps = Vec::new();
    for (root, _) in roots {
        stamps.push(stamp(root));
        for directory in skill_directories(root) {
            stamps.push(stamp(&directory));
            stamps.push(stamp(&directory.join(SKILL_FILE)));
        }
    }
    stamps
}

/// The folders directly under `root`, sorted, hidden ones left out.
fn skill_directories(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut directories: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.path())
        .take(MAX_SKILLS_PER_ROOT)
        .collect();
    directories.sort();
    directories
}

/// Every valid skill under the roots, by name; a later root's skill replaces an earlier
/// one's of the same name.
pub fn scan(roots: &[(PathBuf, Scope)]) -> Scan {
    let mut result = Scan::default();
    for (root, scope) in roots {
        for directory in skill_directories(root) {
            match load(&directory, *scope) {
                Ok(skill) => {
                    result.skills.retain(|known| known.name != skill.name);
                    result.skills.push(skill);
                }
                Err(error) => result.problems.push(error.to_string()),
            }
        }
    }
    result.skills.sort_by(|a, b| a.name.cmp(&b.name));
    result
}

/// The skill in `directory`, from its `SKILL.md`.
pub fn load(directory: &Path, scope: Scope) -> Result<Skill, SkillError> {
    let path = directory.join(SKILL_FILE);
    let text = read_capped(&path, MAX_SKILL_BYTES)?;
    let (name, description, _) = parse(&text).map_err(|message| SkillError::Invalid {
        path: path.clone(),
        message,
    })?;
    Ok(Skill {
        name,
        description,
        directory: directory.to_path_buf(),
        scope,
    })
}

/// A skill's name: lowercase letters, digits, `-` and `_`, at most 64 characters.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Reads a `SKILL.md`: front matter between `---` lines with `name:` and `description:`
/// (a value may be quoted, or a `>`/`|` block of indented lines), then the body.
pub fn parse(text: &str) -> Result<(String, String, String), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines();
    if lines.next().map(str::trim_end) != Some("---") {
        return Err("SKILL.md must start with a `---` front matter line".to_string());
    }
    let mut front: Vec<&str> = Vec::new();
    let mut closed = false;
    for line in lines.by_ref() {
        if line.trim_end() == "---" {
            closed = true;
            break;
        }
        front.push(line);
    }
    if !closed {
        return Err("the front matter has no closing `---` line".to_string());
    }
    let body = lines.collect::<Vec<_>>().join("\n").trim().to_string();
    let field = |key: &str| -> Option<String> {
        let start = front.iter().position(|line| {
            line.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })?;
        let value = front[start]
            .split_once(':')
            .map_or("", |(_, value)| value)
            .trim();
        if value.is_empty() || matches!(value, ">" | "|" | ">-" | "|-") {
            let block: Vec<&str> = front[start + 1..]
                .iter()
                .take_while(|line| line.starts_with([' ', '\t']) || line.trim().is_empty())
                .map(|line| line.trim())
                .collect();
            let separator = if value.starts_with('|') { "\n" } else { " " };
            return Some(block.join(separator).trim().to_string());
        }
        let unquoted = value
            .strip_prefix('"')
            .and_then(|inner| inner.strip_suffix('"'))
            .or_else(|| {
                value
                    .strip_prefix('\'')
                    .and_then(|inner| inner.strip_suffix('\''))
            })
            .unwrap_or(value);
        Some(unquoted.replace("\\\"", "\"").to_string())
    };
    let name = field("name").ok_or("the front matter has no `name:`")?;
    if !valid_name(&name) {
        return Err(format!(
            "the name `{name}` must be lowercase letters, digits, `-` or `_` (at most 64)"
        ));
    }
    let description = field("description")
        .filter(|description| !description.is_empty())
        .ok_or("the front matter has no `description:`")?;
    let description: String = description.chars().take(MAX_DESCRIPTION_CHARS).collect();
    if body.is_empty() {
        return Err("the skill has no body after the front matter".to_string());
    }
    Ok((name, description, body))
}

fn list_files(root: &Path, relative: &Path, depth: usize, files: &mut Vec<String>) {
    if depth > MAX_LIST_DEPTH || files.len() >= MAX_FILES_LISTED {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root.join(relative)) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        if files.len() >= MAX_FILES_LISTED {
            return;
        }
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = relative.join(&name);
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => list_files(root, &path, depth + 1, files),
            Ok(kind) if kind.is_file() => files.push(path.to_string_lossy().into_owned()),
            _ => {}
        }
    }
}

/// Copies the skill folder `source` into `root` under its name, after checking its
/// `SKILL.md`; links and special files are not copied.
pub fn install(source: &Path, root: &Path) -> Result<Skill, SkillError> {
    let skill = load(source, Scope::Shared)?;
    let destination = root.join(&skill.name);
    if destination.exists() {
        return Err(SkillError::Exists(skill.name));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SkillError::Io { path, source }
    };
    crate::filesystem::private_directory(root).map_err(io(root))?;
    // Copied into a hidden folder first, so a half-copied skill is never offered.
    let staging = root.join(format!(".installing-{}", skill.name));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    copy_tree(source, &staging, 0)?;
    std::fs::rename(&staging, &destination).map_err(io(&destination))?;
    Ok(Skill {
        directory: destination,
        ..skill
    })
}

fn copy_tree(source: &Path, destination: &Path, depth: usize) -> Result<(), SkillError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SkillError::Io { path, source }
    };
    if depth > MAX_LIST_DEPTH {
        return Ok(());
    }
    std::fs::create_dir_all(destination).map_err(io(destination))?;
    for entry in std::fs::read_dir(source).map_err(io(source))? {
        let entry = entry.map_err(io(source))?;
        let from = entry.path();
        let to = destination.join(entry.file_name());
        let kind = entry.file_type().map_err(io(&from))?;
        if kind.is_dir() {
            copy_tree(&from, &to, depth + 1)?;
        } else if kind.is_file() {
            std::fs::copy(&from, &to).map_err(io(&from))?;
        }
    }
    Ok(())
}

/// Deletes the skill `name` from `root`.
pub fn remove(root: &Path, name: &str) -> Result<PathBuf, SkillError> {
    let known = || {
        scan(&[(root.to_path_buf(), Scope::Shared)])
            .skills
            .into_iter()
            .map(|skill| skill.name)
            .collect()
    };
    if !valid_name(name) {
        return Err(SkillError::Unknown {
            name: name.to_string(),
            known: known(),
        });
    }
    // The folder is found by the name in its SKILL.md, not by its folder name.
    let skill = scan(&[(root.to_path_buf(), Scope::Shared)])
        .skills
        .into_iter()
        .find(|skill| skill.name == name)
        .ok_or_else(|| SkillError::Unknown {
            name: name.to_string(),
            known: known(),
        })?;
    std::fs::remove_dir_all(&skill.directory).map_err(|source| SkillError::Io {
        path: skill.directory.clone(),
        source,
    })?;
    Ok(skill.directory)
}

#[cfg(test)]
mod tests;
