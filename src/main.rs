//! The `spacebot` command: `serve` runs the daemon; every other verb is a client of its API.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::Value;
use spacebot::client::ApiClient;
use spacebot::config::Config;
use spacebot::daemon::{Daemon, DaemonOptions, default_home, process_environment};
use tokio::io::AsyncBufReadExt;

#[derive(Parser)]
#[command(name = "spacebot", version, about = "A self-hosted agent harness")]
struct Cli {
    /// Base URL of a running daemon's API (default: from the config, else http://127.0.0.1:19898).
    #[arg(long, global = true, env = "SPACEBOT_URL")]
    url: Option<String>,
    /// Bearer token for the API (default: `api.token` from the config).
    #[arg(
        long,
        global = true,
        env = "SPACEBOT_API_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// How the log is written to stderr: text for people, json (one object a line) for a
    /// log collector.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "SPACEBOT_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground (creates $SPACEBOT_HOME, default ~/.spacebot).
    Serve {
        /// Config file (default: $SPACEBOT_HOME/config.toml, written on first run).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address the HTTP API binds to.
        #[arg(long)]
        bind: Option<IpAddr>,
        /// Port of the HTTP API.
        #[arg(long)]
        port: Option<u16>,
    },
    /// Chat with an agent in the terminal, through the running daemon.
    Chat {
        #[arg(long)]
        agent: Option<String>,
        /// Portal conversation name; the conversation and its history persist.
        #[arg(long, default_value = "cli")]
        conversation: String,
    },
    /// Send one message and print the answer.
    Send {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long, default_value = "cli")]
        conversation: String,
        text: String,
    },
    /// Show the daemon's status.
    Status,
    /// Tokens and cost by agent, model, process kind and day, and the daily budgets.
    Usage {
        /// Days back, today included.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Only this agent (default: all).
        #[arg(long)]
        agent: Option<String>,
    },
    /// Who may talk to the agents: approve a pairing code, list, revoke.
    Access {
        #[command(subcommand)]
        command: AccessCommand,
    },
    /// Scheduled jobs of an agent.
    Cron {
        /// The agent (default: the daemon's default agent).
        #[arg(long, global = true)]
        agent: Option<String>,
        #[command(subcommand)]
        command: CronCommand,
    },
    /// An agent's long-term memory.
    Memory {
        #[arg(long, global = true)]
        agent: Option<String>,
        #[command(subcommand)]
        command: MemoryCommand,
    },
    /// Work with the config file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Set up a first config: the LLM provider, the chat platforms and the owners, each
    /// credential checked with one call. Asks for what the flags do not give (unless
    /// --non-interactive).
    Init(InitArguments),
    /// Print a shell completion script, e.g. `spacebot completions bash >
    /// /etc/bash_completion.d/spacebot`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(clap::Args)]
struct InitArguments {
    /// Where to write the config (default: $SPACEBOT_HOME/config.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Replace an existing config.
    #[arg(long)]
    force: bool,
    /// Ask nothing: everything comes from the flags (for scripts).
    #[arg(long)]
    non_interactive: bool,
    /// Write the config without calling any service to check the credentials.
    #[arg(long)]
    skip_checks: bool,
    /// openai (or any OpenAI-compatible service with a key), anthropic, or local (an
    /// OpenAI-compatible server without a key: Ollama, llama.cpp, vLLM).
    #[arg(long, value_parser = ["openai", "anthropic", "local"])]
    provider: Option<String>,
    /// The provider's API key (a literal, or env:VARIABLE).
    #[arg(long, env = "SPACEBOT_INIT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The provider's base URL (required for local, e.g. http://127.0.0.1:11434/v1).
    #[arg(long)]
    base_url: Option<String>,
    /// The channel model, as the provider names it (default: the provider's usual one, or
    /// the first a local server lists).
    #[arg(long)]
    model: Option<String>,
    /// A Telegram bot token (from @BotFather).
    #[arg(long, hide_env_values = true, env = "SPACEBOT_INIT_TELEGRAM_TOKEN")]
    telegram_token: Option<String>,
    /// Instead of https://api.telegram.org.
    #[arg(long)]
    telegram_api_url: Option<String>,
    /// A Discord bot token.
    #[arg(long, hide_env_values = true, env = "SPACEBOT_INIT_DISCORD_TOKEN")]
    discord_token: Option<String>,
    /// Instead of https://discord.com.
    #[arg(long)]
    discord_api_base: Option<String>,
    /// A Slack bot token (xoxb-...).
    #[arg(long, hide_env_values = true, env = "SPACEBOT_INIT_SLACK_BOT_TOKEN")]
    slack_bot_token: Option<String>,
    /// A Slack app-level token (xapp-...) with connections:write, for Socket Mode.
    #[arg(long, hide_env_values = true, env = "SPACEBOT_INIT_SLACK_APP_TOKEN")]
    slack_app_token: Option<String>,
    /// Instead of https://slack.com/api.
    #[arg(long)]
    slack_api_url: Option<String>,
    /// An owner's platform id (telegram:123456789, discord:8035..., slack:U024BE7LH);
    /// repeat for more.
    #[arg(long = "owner")]
    owners: Vec<String>,
    /// The API's bearer token, needed to serve beyond 127.0.0.1 (a literal, or
    /// env:VARIABLE as in a container).
    #[arg(long)]
    api_token: Option<String>,
}

#[derive(Subcommand)]
enum AccessCommand {
    /// Owners, members, and the pairing codes waiting for approval.
    List,
    /// Let the person behind a pairing code in, as a member (or, with --owner, as an owner:
    /// how you become the owner on a platform without looking up your user id).
    Approve {
        code: String,
        #[arg(long)]
        owner: bool,
    },
    /// Remove an approved person (a platform id such as telegram:123456789).
    Revoke { user_id: String },
}

#[derive(Subcommand)]
enum CronCommand {
    /// List the jobs with their schedule, next run and last outcome.
    List,
    /// Add a job: a prompt and either --cron or --every.
    Add {
        /// What to do each time the job fires.
        prompt: String,
        /// Job id, [a-z0-9_-] (default: generated).
        #[arg(long)]
        id: Option<String>,
        /// A cron expression: "minute hour day month weekday", e.g. "0 9 * * 1-5".
        #[arg(long)]
        cron: Option<String>,
        /// An interval instead: 30s, 15m, 2h, 1d.
        #[arg(long)]
        every: Option<String>,
        /// IANA time zone of the schedule (default: the agent's).
        #[arg(long)]
        timezone: Option<String>,
        /// Conversation that receives the outcome, e.g. telegram:12345.
        #[arg(long)]
        target: Option<String>,
        /// Only fire within HH:MM-HH:MM (may wrap past midnight).
        #[arg(long)]
        active_hours: Option<String>,
        /// Longest a run may take, e.g. 5m.
        #[arg(long)]
        timeout: Option<String>,
        /// Fire once, then disable the job.
        #[arg(long)]
        run_once: bool,
    },
    /// Delete a job; it stops at once.
    Remove { id: String },
    /// Run a job now, beside its schedule.
    Run { id: String },
    /// Enable a job (clears its failure count).
    Enable { id: String },
    /// Disable a job.
    Disable { id: String },
}

#[derive(Subcommand)]
enum MemoryCommand {
    /// List memories, newest (or with --important, most important) first.
    List {
        #[arg(long = "type")]
        memory_type: Option<String>,
        #[arg(long)]
        important: bool,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Search memories (full text, meaning and associations).
    Search {
        query: String,
        #[arg(long = "type")]
        memory_type: Option<String>,
        /// hybrid (default), recent or important.
        #[arg(long)]
        mode: Option<String>,
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Save a memory.
    Add {
        content: String,
        /// fact, preference, decision, identity, event, observation, goal or todo.
        #[arg(long = "type", default_value = "fact")]
        memory_type: String,
        /// 0 to 1; default: the type's default.
        #[arg(long)]
        importance: Option<f64>,
    },
    /// Forget a memory (it is never recalled again).
    Forget { id: String },
    /// Write every memory, with its associations, origin and embedding, as JSON Lines.
    Export {
        /// The file to write (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Read memories from an export (ids already present are skipped; embeddings of another
    /// model are made again).
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config file (default: $SPACEBOT_HOME/config.toml); exits non-zero on error.
    /// The file is given as `--config PATH`, as for `serve`, or as a plain argument.
    Check {
        #[arg(conflicts_with = "config")]
        path: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    spacebot::install_crypto_provider();
    let cli = Cli::parse();
    let filter = match cli.command {
        Command::Serve { .. } => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        // One JSON object a line, with the span fields (agent, conversation, process).
        LogFormat::Json => log
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
        LogFormat::Text => log
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let environment = process_environment();
    let home = default_home(&environment);
    match cli.command {
        Command::Serve { config, bind, port } => {
            let daemon = Daemon::start(DaemonOptions {
                home,
                config_path: config,
                bind,
                port,
                environment,
                api: Some(spacebot::api::router),
            })
            .await?;
            serve_until_stopped(&daemon).await?;
            daemon.shutdown().await;
            Ok(())
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "spacebot", &mut std::io::stdout());
            Ok(())
        }
        Command::Init(arguments) => init(arguments, &home, &environment).await,
        Command::Config {
            command: ConfigCommand::Check { path, config },
        } => {
            let path = path.or(config).unwrap_or_else(|| home.join("config.toml"));
            let config = Config::load(&path, &*environment)?;
            for notice in &config.notices {
                println!("note: {notice}");
            }
            println!(
                "{}: ok ({} agent{}, {} provider{})",
                path.display(),
                config.agents.len(),
                if config.agents.len() == 1 { "" } else { "s" },
                config.llm.providers.len(),
                if config.llm.providers.len() == 1 {
                    ""
                } else {
                    "s"
                },
            );
            Ok(())
        }
        Command::Status => {
            let client = client(&cli.url, cli.token, &home)?;
            print_status(&client.status().await?);
            Ok(())
        }
        Command::Usage { days, agent } => {
            let client = client(&cli.url, cli.token, &home)?;
            let report = client.usage(days, agent.as_deref()).await?;
            print!("{}", spacebot::client::render_usage(&report));
            Ok(())
        }
        Command::Send {
            agent,
            conversation,
            text,
        } => {
            let client = client(&cli.url, cli.token, &home)?;
            let agent = resolve_agent(&client, agent).await?;
            match client.send_message(&agent, &conversation, &text).await? {
                Some(reply) => println!("{reply}"),
                None => eprintln!("({agent} chose not to reply)"),
            }
            Ok(())
        }
        Command::Cron { agent, command } => {
            let client = client(&cli.url, cli.token, &home)?;
            let agent = resolve_agent(&client, agent).await?;
            cron(&client, &agent, command).await
        }
        Command::Access { command } => {
            let client = client(&cli.url, cli.token, &home)?;
            access(&client, command).await
        }
        Command::Memory { agent, command } => {
            let client = client(&cli.url, cli.token, &home)?;
            let agent = resolve_agent(&client, agent).await?;
            memory(&client, &agent, command).await
        }
        Command::Chat {
            agent,
            conversation,
        } => {
            let client = client(&cli.url, cli.token, &home)?;
            let agent = resolve_agent(&client, agent).await?;
            chat(client, agent, conversation).await
        }
    }
}

/// `spacebot init`: the flags, and the terminal for what they leave out.
async fn init(
    arguments: InitArguments,
    home: &std::path::Path,
    environment: &spacebot::daemon::Environment,
) -> anyhow::Result<()> {
    let interactive =
        !arguments.non_interactive && std::io::IsTerminal::is_terminal(&std::io::stdin());
    let path = arguments
        .config
        .clone()
        .unwrap_or_else(|| home.join("config.toml"));
    let questions = spacebot::onboarding::Questions {
        provider: arguments.provider,
        api_key: arguments.api_key,
        base_url: arguments.base_url,
        model: arguments.model,
        telegram_token: arguments.telegram_token,
        telegram_api_url: arguments.telegram_api_url,
        discord_token: arguments.discord_token,
        discord_api_base: arguments.discord_api_base,
        slack_bot_token: arguments.slack_bot_token,
        slack_app_token: arguments.slack_app_token,
        slack_api_url: arguments.slack_api_url,
        owners: arguments.owners,
        api_token: arguments.api_token,
    };
    let mut terminal = |question: &str| -> std::io::Result<String> {
        print!("{question} ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line.trim().to_string())
    };
    let asker: spacebot::onboarding::Ask<'_> = if interactive {
        Some(&mut terminal)
    } else {
        None
    };
    let setup = spacebot::onboarding::Setup {
        path: &path,
        force: arguments.force,
        check: !arguments.skip_checks,
        environment: &**environment,
    };
    let report =
        spacebot::onboarding::run(questions, asker, &setup, &mut |line| println!("{line}")).await?;
    println!("wrote {} (readable by you alone)", report.display());
    println!("start the daemon with: spacebot serve");
    Ok(())
}

async fn cron(client: &ApiClient, agent: &str, command: CronCommand) -> anyhow::Result<()> {
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

async fn memory(client: &ApiClient, agent: &str, command: MemoryCommand) -> anyhow::Result<()> {
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
                print_memory(memory);
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
                print_memory(memory);
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

/// One line per job: id, schedule and zone, target, next run or why it is disabled, and how
/// its last run went.
fn describe_job(job: &Value) -> String {
    let text = |key: &str| job[key].as_str().unwrap_or_default().to_string();
    let schedule = match job["cron"].as_str() {
        Some(expression) => format!("cron \"{expression}\""),
        None => format!("every {}s", job["every_secs"]),
    };
    let mut line = format!("{}  {schedule} ({})", text("id"), text("zone"));
    if let Some(hours) = job["active_hours"].as_str() {
        line.push_str(&format!(" {hours}"));
    }
    match job["delivery_target"].as_str() {
        Some(target) => line.push_str(&format!("  -> {target}")),
        None => line.push_str("  (no target)"),
    }
    if job["enabled"].as_bool() == Some(true) {
        line.push_str(&format!(
            "  next {}",
            job["next_run"].as_str().unwrap_or("-")
        ));
    } else {
        match job["disabled_reason"].as_str() {
            Some(reason) => line.push_str(&format!("  DISABLED: {reason}")),
            None => line.push_str("  disabled"),
        }
    }
    let last = &job["last_execution"];
    if let Some(state) = last["state"].as_str() {
        line.push_str(&format!("  last: {state}"));
        if last["delivered"].as_bool() == Some(true) {
            line.push_str(" (delivered)");
        }
        if let Some(error) = last["error"].as_str() {
            line.push_str(&format!(" ({error})"));
        }
    }
    line
}

fn print_memory(memory: &Value) {
    println!(
        "{}  [{} {:.2}]  {}",
        memory["id"].as_str().unwrap_or("?"),
        memory["memory_type"].as_str().unwrap_or("?"),
        memory["importance"].as_f64().unwrap_or(0.0),
        memory["content"].as_str().unwrap_or(""),
    );
}

/// Runs until SIGINT or SIGTERM; SIGHUP reloads the config file.
async fn serve_until_stopped(daemon: &Daemon) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    loop {
        tokio::select! {
            result = tokio::signal::ctrl_c() => {
                result.context("cannot listen for SIGINT")?;
                return Ok(());
            }
            _ = terminate.recv() => return Ok(()),
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the config");
                daemon.reload().await;
            }
        }
    }
}

/// The API client, addressed by flag, else by the config in `$SPACEBOT_HOME`, else the default.
fn client(
    url: &Option<String>,
    token: Option<String>,
    home: &std::path::Path,
) -> anyhow::Result<ApiClient> {
    let config = Config::load(&home.join("config.toml"), &|name| std::env::var(name).ok()).ok();
    let url = url.clone().unwrap_or_else(|| match &config {
        Some(config) => {
            let host = if config.api.bind.is_unspecified() {
                "127.0.0.1".to_string()
            } else if config.api.bind.is_ipv6() {
                format!("[{}]", config.api.bind)
            } else {
                config.api.bind.to_string()
            };
            format!("http://{host}:{}", config.api.port)
        }
        None => "http://127.0.0.1:19898".to_string(),
    });
    let token = token.or_else(|| config.and_then(|config| config.api.token));
    Ok(ApiClient::new(url, token)?)
}

async fn resolve_agent(client: &ApiClient, agent: Option<String>) -> anyhow::Result<String> {
    if let Some(agent) = agent {
        return Ok(agent);
    }
    let status = client.status().await?;
    status["agents"]
        .as_array()
        .and_then(|agents| {
            agents
                .iter()
                .find(|agent| agent["default"].as_bool() == Some(true))
        })
        .and_then(|agent| agent["id"].as_str())
        .map(str::to_string)
        .context("the daemon reports no default agent")
}

async fn access(client: &ApiClient, command: AccessCommand) -> anyhow::Result<()> {
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

fn print_status(status: &Value) {
    println!(
        "spacebot {}  up {}s",
        status["version"].as_str().unwrap_or("?"),
        status["uptime_secs"]
    );
    if let Some(hint) = status["llm"]["hint"].as_str() {
        println!("LLM: not configured. {hint}");
    } else if let Some(providers) = status["llm"]["providers"].as_array() {
        for provider in providers {
            println!(
                "LLM provider {} ({}) {}",
                provider["name"].as_str().unwrap_or("?"),
                provider["kind"].as_str().unwrap_or("?"),
                provider["base_url"].as_str().unwrap_or("default endpoint"),
            );
        }
    }
    for model in status["llm"]["tool_less_models"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!(
            "model {} is in tool-less mode (its server refused tools): its text is the reply",
            model.as_str().unwrap_or("?")
        );
    }
    print_reload(&status["reload"]);
    for warning in status["access"]["warnings"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!("access: {}", warning.as_str().unwrap_or("?"));
    }
    let memory = &status["memory"];
    if memory.is_object() {
        println!(
            "memory: {} recall ({}: {})",
            memory["recall"].as_str().unwrap_or("?").replace('_', " "),
            memory["state"].as_str().unwrap_or("?"),
            memory["detail"].as_str().unwrap_or(""),
        );
    }
    for agent in status["agents"].as_array().into_iter().flatten() {
        let id = agent["id"].as_str().unwrap_or("?");
        println!(
            "agent {id}{}  model {}  active channels {}  cron jobs {}",
            if agent["default"].as_bool() == Some(true) {
                " (default)"
            } else {
                ""
            },
            agent["channel_model"].as_str().unwrap_or("?"),
            agent["active_channels"],
            agent["cron"]["jobs"],
        );
        if let Some(budget) = agent["daily_token_budget"].as_u64() {
            let spent = if agent["budget_spent"].as_bool() == Some(true) {
                " (spent: turns are refused until midnight UTC)"
            } else {
                ""
            };
            println!(
                "  tokens today {} of {budget}{spent}",
                agent["tokens_today"]
            );
        }
        match agent["transcription_model"].as_str() {
            Some(model) => println!("  voice notes transcribed by {model}"),
            None => println!(
                "  voice notes are not heard: set [defaults.routing] transcription = \"provider/model\" \
                 (an OpenAI-compatible /audio/transcriptions, e.g. openai/whisper-1) to transcribe them"
            ),
        }
        for job in agent["cron"]["disabled"].as_array().into_iter().flatten() {
            println!(
                "  cron job {} disabled{}",
                job["id"].as_str().unwrap_or("?"),
                job["reason"]
                    .as_str()
                    .map(|reason| format!(": {reason}"))
                    .unwrap_or_default()
            );
        }
        for warning in agent["degraded"].as_array().into_iter().flatten() {
            println!("  degraded: {}", warning.as_str().unwrap_or("?"));
        }
    }
    print_messaging(status);
}

/// How the last config reload went: a refused edit with its error, and settings waiting for a
/// restart.
fn print_reload(reload: &Value) {
    if !reload.is_object() {
        return;
    }
    let errors: Vec<&str> = reload["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match reload["outcome"].as_str() {
        Some("failed") => println!(
            "config: the last edit was NOT applied (the previous config stays in force): {}",
            errors.join("; ")
        ),
        Some(_) if !errors.is_empty() => {
            println!("config: reloaded with errors: {}", errors.join("; "))
        }
        _ => {}
    }
    let restart: Vec<&str> = reload["restart_needed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !restart.is_empty() {
        println!(
            "config: changed, effective after a restart: {}",
            restart.join(", ")
        );
    }
}

/// One line per chat platform: connected, reconnecting (with the last error) or disabled.
fn print_messaging(status: &Value) {
    for adapter in status["messaging"].as_array().into_iter().flatten() {
        let name = adapter["name"].as_str().unwrap_or("?");
        let state = adapter["state"].as_str().unwrap_or("?");
        match adapter["last_error"].as_str() {
            Some(error) if state == "reconnecting" => {
                println!("{name}: {state} (last error: {error})")
            }
            _ => println!("{name}: {state}"),
        }
    }
}

/// Reads lines from the terminal and prints the agent's messages as they arrive on the event
/// stream, so later answers (from background work) show up too.
async fn chat(client: ApiClient, agent: String, conversation: String) -> anyhow::Result<()> {
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
