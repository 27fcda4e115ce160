//! The identity files of an agent (SOUL.md, IDENTITY.md, ROLE.md): seeded from templates on
//! first run, then the user's to edit.

use std::path::Path;

use crate::prompts::Prompts;

const FILES: [(&str, &str); 3] = [
    ("SOUL.md", "identity/soul"),
    ("IDENTITY.md", "identity/identity"),
    ("ROLE.md", "identity/role"),
];

#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub soul: String,
    pub identity: String,
    pub role: String,
}

/// Writes each identity file that does not exist yet; never overwrites the user's edits.
pub async fn seed(home: &Path, agent_name: &str, prompts: &Prompts) -> std::io::Result<()> {
    for (file, template) in FILES {
        let path = home.join(file);
        if tokio::fs::try_exists(&path).await? {
            continue;
        }
        let text = prompts
            .render(template, minijinja::context! { agent_name })
            .map_err(std::io::Error::other)?;
        tokio::fs::write(&path, format!("{text}\n")).await?;
    }
    Ok(())
}

/// Reads the identity files; a missing or unreadable one is logged and left empty.
pub async fn load(home: &Path) -> Identity {
    let mut texts = Vec::with_capacity(FILES.len());
    for (file, _) in FILES {
        let path = home.join(file);
        match tokio::fs::read_to_string(&path).await {
            Ok(text) => texts.push(text.trim().to_string()),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot read identity file");
                texts.push(String::new());
            }
        }
    }
    let mut texts = texts.into_iter();
    Identity {
        soul: texts.next().unwrap_or_default(),
        identity: texts.next().unwrap_or_default(),
        role: texts.next().unwrap_or_default(),
    }
}
