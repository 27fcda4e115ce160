//! The `spacebot` command line: its verbs and flags, as clap declares them.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "spacebot", version, about = "A self-hosted agent harness")]
pub struct Cli {
    /// Base URL of a running daemon's API (default: from the config, else http://127.0.0.1:19898).
    #[arg(long, global = true, env = "SPACEBOT_URL")]
    pub url: Option<String>,
    /// Bearer token for the API (default: `api.token` from the config).
    #[arg(
        long,
        global = true,
        env = "SPACEBOT_API_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// How the log is written to stderr: text for people, json (one object a line) for a
    /// log collector.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "SPACEBOT_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Skills: folders with a SKILL.md, in $SPACEBOT_HOME/skills (every agent's) or an agent's
    /// own skills/ (with --agent). The running daemon sees changes on the next turn.
    Skills {
        /// An agent's own skills instead of the shared ones.
        #[arg(long, global = true)]
        agent: Option<String>,
        #[command(subcommand)]
        command: SkillsCommand,
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
pub struct InitArguments {
    /// Where to write the config (default: $SPACEBOT_HOME/config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Replace an existing config.
    #[arg(long)]
    pub force: bool,
    /// Ask nothing: everything comes from the flags (for scripts).
    #[arg(long)]
    pub non_interactive: bool,
    /// Write the config without calling any service to check the credentials.
    #[arg(long)]
    pub skip_checks: bool,
    /// openai (or any OpenAI-compatible service with a key), anthropic, or local (an
    /// OpenAI-compatible server without a key: Ollama, llama.cpp, vLLM).
    #[arg(long, value_parser = ["openai", "anthropic", "local"])]
    pub provider: Option<String>,
    /// The provider's API key (a literal, or env:VARIABLE).
    #[arg(long, env = "SPACEBOT_INIT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The provider's base URL (required for local, e.g. http://127.0.0.1:11434/v1).
    #[arg(long)]
    pub base_url: Option<String>,
    /// The channel model, as the provider names it (default: the provider's usual one, or
    /// the first a local server lists).
    #[arg(long)]
    pub model: Option<String>,
    /// A Telegram bot token (from @BotFather).
    #[arg(long, hide_env_values = true, env = "SPACEBOT_INIT_TELEGRAM_TOKEN")]
    pub telegram_token: Option<String>,
    /// Instead of https://api.telegram.org.
    #[arg(long)]
    pub telegram_api_url: Option<String>,
    /// A Discord bot token.
    #[arg(long, hide_env_values = true, env = "SPACEBOT_INIT_DISCORD_TOKEN")]
    pub discord_token: Option<String>,
    /// Instead of https://discord.com.
    #[arg(long)]
    pub discord_api_base: Option<String>,
    /// A Slack bot token (xoxb-...).
    #[arg(long, hide_env_values = true, env = "SPACEBOT_INIT_SLACK_BOT_TOKEN")]
    pub slack_bot_token: Option<String>,
    /// A Slack app-level token (xapp-...) with connections:write, for Socket Mode.
    #[arg(long, hide_env_values = true, env = "SPACEBOT_INIT_SLACK_APP_TOKEN")]
    pub slack_app_token: Option<String>,
    /// Instead of https://slack.com/api.
    #[arg(long)]
    pub slack_api_url: Option<String>,
    /// An owner's platform id (telegram:123456789, discord:8035..., slack:U024BE7LH);
    /// repeat for more.
    #[arg(long = "owner")]
    pub owners: Vec<String>,
    /// The API's bearer token, needed to serve beyond 127.0.0.1 (a literal, or
    /// env:VARIABLE as in a container).
    #[arg(long)]
    pub api_token: Option<String>,
}

#[derive(Subcommand)]
pub enum AccessCommand {
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
pub enum CronCommand {
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
pub enum MemoryCommand {
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
pub enum SkillsCommand {
    /// The skills the agents see (with --agent: that agent's, its own and the shared ones).
    List,
    /// Install the skill in a folder (its SKILL.md is checked; it is copied under its name).
    Add { path: PathBuf },
    /// Delete an installed skill.
    Remove { name: String },
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file (default: $SPACEBOT_HOME/config.toml); exits non-zero on error.
    /// The file is given as `--config PATH`, as for `serve`, or as a plain argument.
    Check {
        #[arg(conflicts_with = "config")]
        path: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}
