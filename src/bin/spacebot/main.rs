//! The `spacebot` command: `serve` runs the daemon; every other verb is a client of its API.

mod arguments;
mod verbs;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use spacebot::client::ApiClient;
use spacebot::config::Config;
use spacebot::daemon::{Daemon, DaemonOptions, default_home, process_environment};

use arguments::{Cli, Command, ConfigCommand, InitArguments, LogFormat};

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
        Command::Skills { agent, command } => verbs::skills(&home, agent.as_deref(), command),
        Command::Status => {
            let client = client(&cli.url, cli.token, &home)?;
            print!(
                "{}",
                spacebot::client::render_status(&client.status().await?)
            );
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
            verbs::cron(&client, &agent, command).await
        }
        Command::Access { command } => {
            let client = client(&cli.url, cli.token, &home)?;
            verbs::access(&client, command).await
        }
        Command::Memory { agent, command } => {
            let client = client(&cli.url, cli.token, &home)?;
            let agent = resolve_agent(&client, agent).await?;
            verbs::memory(&client, &agent, command).await
        }
        Command::Chat {
            agent,
            conversation,
        } => {
            let client = client(&cli.url, cli.token, &home)?;
            let agent = resolve_agent(&client, agent).await?;
            verbs::chat(client, agent, conversation).await
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
