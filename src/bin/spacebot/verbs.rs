//! The verbs that need more than one call or print more than one line: `cron`, `memory`,
//! `access` and `chat` (clients of the daemon's API), and `skills` (which works on the folders).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;
use spacebot::client::{ApiClient, describe_job, describe_memory};
use tokio::io::AsyncBufReadExt;

use crate::arguments::{AccessCommand, CronCommand, MemoryCommand, SkillsCommand};

pub async fn cron(client: &ApiClient, agent: &str, command: CronCommand) -> anyhow::Result<()> {
    match command {
        CronCommand::List => {
            let answer = client.cron_jobs(agent).await?;
            let jobs = answer["jobs"].as_array().cloned().unwrap_or_default();
            if jobs.is_empty() {
                println!("{agent} has no cron jobs");
            }
            for job in &jobs {
                println!("{}", describe_job(job));
            }
        }
        CronCommand::Add {
            prompt,
            id,
            cron,
            every,
            timezone,
            target,
            active_hours,
            timeout,
            run_once,
        } => {
            let draft = serde_json::json!({
                "id": id, "prompt": prompt, "cron": cron, "every": every,
                "timezone": timezone, "delivery_target": target,
                "active_hours": active_hours, "timeout": timeout, "run_once": run_once,
            });
            let answer = client.cron_add(agent, &draft).await?;
            println!("added {}", describe_job(&answer["job"]));
        }
        CronCommand::Remove { id } => {
            client.cron_remove(agent, &id).await?;
            println!("removed {id}");
        }
        CronCommand::Run { id } => {
            let answer = client.cron_action(agent, &id, "run").await?;
            println!(
                "running {id} in {}",
                answer["execution"]["conversation_id"]
                    .as_str()
                    .unwrap_or("?")
            );
        }
        CronCommand::Enable { id } => {
            let answer = client.cron_action(agent, &id, "enable").await?;
            println!("enabled {}", describe_job(&answer["job"]));
        }
        CronCommand::Disable { id } => {
            client.cron_action(agent, &id, "disable").await?;
            println!("disabled {id}");
        }
    }
    Ok(())
}

pub async fn memory(client: &ApiClient, agent: &str, command: MemoryCommand) -> anyhow::Result<()> {
    match command {
        MemoryCommand::List {
            memory_type,
            important,
            limit,
        } => {
            let order = if important { "important" } else { "recent" };
            let answer = client
                .memories(agent, memory_type.as_deref(), order, limit)
                .await?;
            let memories = answer["memories"].as_array().cloned().unwrap_or_default();
            for memory in &memories {
                println!("{}", describe_memory(memory));
            }
            println!("({} of {} memories)", memories.len(), answer["total"]);
        }
        MemoryCommand::Search {
            query,
            memory_type,
            mode,
            limit,
        } => {
            let answer = client
                .search_memories(
                    agent,
                    &query,
                    memory_type.as_deref(),
                    mode.as_deref(),
                    limit,
                )
                .await?;
            let memories = answer["memories"].as_array().cloned().unwrap_or_default();
            for memory in &memories {
                println!("{}", describe_memory(memory));
            }
            if memories.is_empty() {
                println!("(nothing found)");
            }
            if answer["full_text_only"].as_bool() == Some(true) {
                eprintln!("(full-text search only: no embedder available)");
            }
        }
        MemoryCommand::Add {
            content,
            memory_type,
            importance,
        } => {
            let answer = client
                .add_memory(agent, &content, &memory_type, importance)
                .await?;
            let verb = if answer["merged"].as_bool() == Some(true) {
                "updated near-duplicate"
            } else {
                "saved"
            };
            println!("{verb} {}", answer["memory"]["id"].as_str().unwrap_or("?"));
        }
        MemoryCommand::Forget { id } => {
            client.forget_memory(agent, &id).await?;
            println!("forgot {id}");
        }
        MemoryCommand::Export { output } => {
            use tokio::io::AsyncWriteExt;
            let mut response = client.export_memories(agent).await?;
            let mut writer: Box<dyn tokio::io::AsyncWrite + Unpin> = match &output {
                Some(path) => Box::new(
                    tokio::fs::File::create(path)
                        .await
                        .with_context(|| format!("cannot create {}", path.display()))?,
                ),
                None => Box::new(tokio::io::stdout()),
            };
            let mut lines = 0usize;
            while let Some(chunk) = response.chunk().await? {
                lines += chunk.iter().filter(|byte| **byte == b'\n').count();
                writer.write_all(&chunk).await?;
            }
            writer.flush().await?;
            if let Some(path) = output {
                eprintln!(
                    "exported {} memories to {}",
                    lines.saturating_sub(1),
                    path.display()
                );
            }
        }
        MemoryCommand::Import { file } => {
            let lines = tokio::fs::read(&file)
                .await
                .with_context(|| format!("cannot read {}", file.display()))?;
            let report = client.import_memories(agent, lines).await?;
            println!(
                "imported {} memories ({} already present, {} embedded again, {} associations)",
                report["imported"], report["skipped"], report["reembedded"], report["associations"]
            );
        }
    }
    Ok(())
}

pub async fn access(client: &ApiClient, command: AccessCommand) -> anyhow::Result<()> {
    match command {
        AccessCommand::List => {
            let access = client.access().await?;
            let list = |key: &str| {
                access[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!("owners: {}", list("owners"));
            println!("members (config): {}", list("members"));
            println!("groups: {}", list("groups"));
            for member in access["approved"].as_array().into_iter().flatten() {
                println!(
                    "approved {}: {} ({})",
                    member["authority"].as_str().unwrap_or("member"),
                    member["user_id"].as_str().unwrap_or("?"),
                    member["display_name"].as_str().unwrap_or("?")
                );
            }
            for pairing in access["pending"].as_array().into_iter().flatten() {
                println!(
                    "waiting: {}  {} ({})  approve with: spacebot access approve {}",
                    pairing["code"].as_str().unwrap_or("?"),
                    pairing["user_id"].as_str().unwrap_or("?"),
                    pairing["display_name"].as_str().unwrap_or("?"),
                    pairing["code"].as_str().unwrap_or("?"),
                );
            }
            for warning in access["warnings"].as_array().into_iter().flatten() {
                println!("warning: {}", warning.as_str().unwrap_or("?"));
            }
        }
        AccessCommand::Approve { code, owner } => {
            let answer = client.approve(&code, owner).await?;
            println!(
                "approved {} ({}) as {}; they were told",
                answer["approved"]["user_id"].as_str().unwrap_or("?"),
                answer["approved"]["display_name"].as_str().unwrap_or("?"),
                if owner { "an owner" } else { "a member" }
            );
        }
        AccessCommand::Revoke { user_id } => {
            client.revoke(&user_id).await?;
            println!("revoked {user_id}");
        }
    }
    Ok(())
}

/// Reads lines from the terminal and prints the agent's messages as they arrive on the event
/// stream, so later answers (from background work) show up too.
pub async fn chat(client: ApiClient, agent: String, conversation: String) -> anyhow::Result<()> {
    let client = std::sync::Arc::new(client);
    let conversation_id = format!("portal:{conversation}");
    let follower = {
        let client = client.clone();
        let agent = agent.clone();
        tokio::spawn(async move {
            let result = client
                .follow_events(&agent, &conversation_id, |name, event| match name {
                    "message_sent" => {
                        println!("\n{agent}: {}", event["content"].as_str().unwrap_or(""));
                        print!("> ");
                        let _ = std::io::stdout().flush();
                    }
                    "turn_completed" if event["outcome"] == "skipped" => {
                        println!("\n({agent} chose not to reply)");
                        print!("> ");
                        let _ = std::io::stdout().flush();
                    }
                    _ => {}
                })
                .await;
            if let Err(error) = result {
                eprintln!("\nevent stream ended: {error}");
            }
        })
    };
    println!("Chatting with {agent} in portal:{conversation}. Ctrl-D to leave.");
    print!("> ");
    std::io::stdout().flush()?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim();
        if line.is_empty() {
            print!("> ");
            std::io::stdout().flush()?;
            continue;
        }
        client.post_message(&agent, &conversation, line).await?;
    }
    follower.abort();
    Ok(())
}

/// `spacebot skills`: works on the folders directly; the daemon rescans them itself.
pub fn skills(home: &Path, agent: Option<&str>, command: SkillsCommand) -> anyhow::Result<()> {
    use spacebot::skills;
    let shared = home.join("skills");
    let root = match agent {
        None => shared.clone(),
        Some(agent) => {
            let directory = home.join("agents").join(agent);
            let simple = !agent.is_empty() && !agent.contains(['/', '\\']) && agent != "..";
            if !simple || !directory.is_dir() {
                anyhow::bail!(
                    "there is no agent `{agent}` in {} (it is created when the daemon first runs it)",
                    home.display()
                );
            }
            directory.join("skills")
        }
    };
    match command {
        SkillsCommand::List => {
            let listed = skills::Skills::new(&shared, &root).list();
            if listed.is_empty() {
                println!("no skills in {}", root.display());
            }
            for skill in listed.iter() {
                let scope = match skill.scope {
                    skills::Scope::Shared if agent.is_some() => " (shared)",
                    _ => "",
                };
                println!("{}{scope}: {}", skill.name, skill.description);
            }
        }
        SkillsCommand::Add { path } => {
            let skill = skills::install(&path, &root)?;
            println!(
                "installed `{}` in {}",
                skill.name,
                skill.directory.display()
            );
        }
        SkillsCommand::Remove { name } => {
            let directory = skills::remove(&root, &name)?;
            println!("removed `{name}` ({})", directory.display());
        }
    }
    Ok(())
}
