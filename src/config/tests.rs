//! Unit tests for configuration parsing, resolution and validation.

use std::collections::HashMap;

use super::{Config, ConfigError, DEFAULT_CONFIG, ModelId, ProviderKind};
use crate::conversation_id::Platform;
use crate::schedule::ScheduleSpec;

mod access;
mod services;

const EXAMPLE_CONFIG: &str = include_str!("../../config/example.toml");

fn parse_with(text: &str, variables: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let variables: HashMap<String, String> = variables
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    Config::parse(text, "test.toml", &|name| variables.get(name).cloned())
}

fn parse(text: &str) -> Config {
    parse_with(text, &[]).expect("config should parse")
}

/// The (line, column, key, message) of an expected `Invalid` error.
fn invalid_with(text: &str, variables: &[(&str, &str)]) -> (usize, usize, String, String) {
    match parse_with(text, variables) {
        Err(ConfigError::Invalid {
            file,
            line,
            column,
            key,
            message,
        }) => {
            assert_eq!(file, "test.toml");
            (line, column, key, message)
        }
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

fn invalid(text: &str) -> (usize, usize, String, String) {
    invalid_with(text, &[])
}

fn model(text: &str) -> ModelId {
    text.parse().expect("valid model id")
}

#[test]
fn default_config_parses_with_empty_environment() {
    let config = parse(DEFAULT_CONFIG);
    assert_eq!(config.default_agent().id, "main");
    assert_eq!(config.agents.len(), 1);
    assert!(config.llm.providers.is_empty());
    assert_eq!(config.defaults.routing.channel, model("openai/gpt-4o-mini"));
    assert_eq!(config.api.port, 19898);
}

#[test]
fn example_config_parses_with_empty_environment() {
    let config = parse_with(
        EXAMPLE_CONFIG,
        &[
            ("DISCORD_BOT_TOKEN", "discord-token"),
            ("TELEGRAM_BOT_TOKEN", "telegram-token"),
            ("SLACK_BOT_TOKEN", "xoxb-1"),
            ("SLACK_APP_TOKEN", "xapp-1"),
        ],
    )
    .expect("example parses");
    let discord = config.messaging.discord.as_ref().expect("discord");
    assert_eq!(discord.token, "discord-token");
    assert!(discord.enabled && !discord.allow_bot_messages && discord.api_base.is_none());
    assert_eq!(config.access.owners, vec!["telegram:123456789"]);
    assert_eq!(config.access.groups.len(), 2);
    assert_eq!(config.sandbox, crate::config::SandboxConfig::default());
    let slack = config.messaging.slack.as_ref().expect("slack");
    assert_eq!(
        (slack.bot_token.as_str(), slack.app_token.as_str()),
        ("xoxb-1", "xapp-1")
    );
    assert_eq!(config.llm.providers.len(), 3);
    assert_eq!(
        config.llm.providers["anthropic"].kind,
        ProviderKind::Anthropic
    );
    assert_eq!(config.llm.providers["local"].kind, ProviderKind::OpenAi);
    assert_eq!(config.agents.len(), 2);
    assert_eq!(config.default_agent().display_name, "Spacebot");
    assert_eq!(
        config.agent("support").map(|agent| agent.max_turns),
        Some(5)
    );
    assert_eq!(config.bindings.len(), 3);
    let main = &config.default_agent().routing;
    assert_eq!(main.worker, model("local/llama3.1"));
    assert_eq!(main.fallbacks.len(), 3);
    assert_eq!(config.secrets().len(), 7);
    let main = config.default_agent();
    assert_eq!(main.timezone.name(), "America/New_York");
    assert_eq!(
        config.agent("support").map(|agent| agent.timezone.name()),
        Some("Europe/Berlin".to_string())
    );
    assert_eq!(main.cron.len(), 2);
    let digest = &main.cron[0];
    assert_eq!(digest.id, "morning-digest");
    assert_eq!(digest.schedule, ScheduleSpec::Cron("30 7 * * 1-5".into()));
    assert_eq!(digest.timezone.as_deref(), Some("Europe/London"));
    assert_eq!(
        digest.delivery_target.as_deref(),
        Some("telegram:123456789")
    );
    assert_eq!(digest.active_hours.as_deref(), Some("06:00-10:00"));
    assert_eq!(digest.timeout_secs, 300);
    assert_eq!(main.cron[1].schedule, ScheduleSpec::Every(7200));
    assert_eq!(main.cron[1].timeout_secs, 600);
    assert_eq!(main.cortex.stall_secs, 300);
    assert_eq!(main.cron_settings.grace.as_secs(), 300);
}

#[test]
fn cron_jobs_are_checked_where_they_are_written() {
    let agent = "[[agents]]\nid = \"main\"\n[[agents.cron]]\nid = \"a\"\nprompt = \"p\"\n";
    let config = parse(&format!("{agent}every = \"30s\"\n"));
    let job = &config.default_agent().cron[0];
    assert_eq!(job.schedule, ScheduleSpec::Every(30));
    assert!(job.enabled && !job.run_once && job.delivery_target.is_none());
    let cases = [
        (
            "cron = \"61 * * * *\"\n",
            6,
            "agents[0].cron[0].cron",
            "not a valid cron",
        ),
        (
            "cron = \"* * *\"\n",
            6,
            "agents[0].cron[0].cron",
            "3 fields",
        ),
        (
            "cron = \"* * * * *\"\nevery = \"1m\"\n",
            7,
            "agents[0].cron[0].every",
            "not both",
        ),
        ("", 4, "agents[0].cron[0]", "give a schedule"),
        (
            "every = \"soon\"\n",
            6,
            "agents[0].cron[0].every",
            "not a duration",
        ),
        (
            "every = \"1m\"\ntimezone = \"Mars/Olympus\"\n",
            7,
            "agents[0].cron[0].timezone",
            "not a time zone",
        ),
        (
            "every = \"1m\"\ndelivery_target = \"telegram:42\"\n",
            7,
            "agents[0].cron[0].delivery_target",
            "[messaging.telegram]",
        ),
        (
            "every = \"1m\"\ndelivery_target = \"irc:#x\"\n",
            7,
            "agents[0].cron[0].delivery_target",
            "not a conversation",
        ),
        (
            "every = \"1m\"\nactive_hours = \"9-5\"\n",
            7,
            "agents[0].cron[0].active_hours",
            "HH:MM-HH:MM",
        ),
        (
            "cron = \"0 3 * * *\"\nactive_hours = \"09:00-17:00\"\n",
            7,
            "agents[0].cron[0].active_hours",
            "never falls inside",
        ),
        (
            "every = \"1m\"\n[[agents.cron]]\nid = \"a\"\nprompt = \"q\"\nevery = \"1m\"\n",
            8,
            "agents[0].cron[1].id",
            "duplicate cron job id",
        ),
    ];
    for (rest, expected_line, expected_key, expected_message) in cases {
        let (line, _, key, message) = invalid(&format!("{agent}{rest}"));
        assert_eq!(
            (line, key.as_str()),
            (expected_line, expected_key),
            "{rest:?}: {message}"
        );
        assert!(message.contains(expected_message), "{rest:?}: {message}");
    }
    let (line, _, key, _) = invalid("[defaults]\ntimezone = \"Nowhere\"\n");
    assert_eq!((line, key.as_str()), (2, "defaults.timezone"));
    let (line, _, key, _) = invalid("[defaults.cron]\ngrace = \"0s\"\n");
    assert_eq!((line, key.as_str()), (2, "defaults.cron.grace"));
    let (line, _, key, _) = invalid("[defaults.cortex]\nstall_secs = 0\n");
    assert_eq!((line, key.as_str()), (2, "defaults.cortex.stall_secs"));
    let with_telegram = format!(
        "{agent}every = \"1m\"\ndelivery_target = \"telegram:42\"\n[messaging.telegram]\ntoken = \"t\"\n"
    );
    assert_eq!(
        parse(&with_telegram).default_agent().cron[0]
            .delivery_target
            .as_deref(),
        Some("telegram:42")
    );
}

#[test]
fn messaging_tables_resolve_tokens_and_report_located_errors() {
    let config = parse("");
    assert!(config.messaging.discord.is_none() && config.messaging.slack.is_none());
    let text = "[messaging.telegram]\ntoken = \"env:TG\"\napi_url = \"http://127.0.0.1:9/\"\n";
    let config = parse_with(text, &[("TG", "123:abc")]).expect("parses");
    let telegram = config.messaging.telegram.expect("telegram");
    assert_eq!(telegram.token, "123:abc");
    assert_eq!(telegram.api_url.as_deref(), Some("http://127.0.0.1:9"));
    assert!(telegram.enabled);

    let (line, _, key, message) = invalid(text);
    assert_eq!((line, key.as_str()), (2, "messaging.telegram.token"));
    assert!(message.contains("TG"), "{message}");
    let (line, _, key, _) = invalid("[messaging.discord]\ntoken = \"t\"\nguild = \"1\"\n");
    assert_eq!((line, key.as_str()), (3, "messaging.discord.guild"));
    let (line, _, key, _) = invalid("[messaging.slack]\nbot_token = \"xoxb\"\n");
    assert_eq!((line, key.as_str()), (1, "messaging.slack"));
    let (line, _, key, _) =
        invalid("[messaging.discord]\ntoken = \"t\"\napi_base = \"discord.test\"\n");
    assert_eq!((line, key.as_str()), (3, "messaging.discord.api_base"));
    let disabled =
        parse("[messaging.slack]\nenabled = false\nbot_token = \"a\"\napp_token = \"b\"\n");
    assert!(!disabled.messaging.slack.expect("slack").enabled);
}

#[test]
fn unknown_key_reports_file_line_column_and_key() {
    let text = "[defaults]\nmax_turns = 3\n\ncolour = \"blue\"\n";
    let (line, column, key, message) = invalid(text);
    assert_eq!((line, column), (4, 1));
    assert_eq!(key, "defaults.colour");
    assert!(message.contains("unknown field `colour`"), "{message}");
    let nested =
        "[[agents]]\nid = \"a\"\n[[agents]]\nid = \"b\"\n[agents.routing]\nchanel = \"x/y\"\n";
    let (line, _, key, _) = invalid(nested);
    assert_eq!((line, key.as_str()), (6, "agents[1].routing.chanel"));
}

#[test]
fn error_display_has_the_documented_format() {
    let error = parse_with("[api]\nport = \"abc\"\n", &[]).expect_err("type error");
    let display = error.to_string();
    assert!(
        display.starts_with("test.toml:2:8: api.port: "),
        "{display}"
    );
}

#[test]
fn wrong_type_and_bad_enum_and_syntax_errors_are_located() {
    let (line, column, key, _) = invalid("[api]\nport = \"abc\"\n");
    assert_eq!((line, column, key.as_str()), (2, 8, "api.port"));
    let (line, _, key, message) = invalid("[llm.providers.x]\nkind = \"gemini\"\n");
    assert_eq!((line, key.as_str()), (2, "llm.providers.x.kind"));
    assert!(message.contains("gemini"), "{message}");
    let (line, _, key, _) = invalid("[api]\nbind = \"localhost\"\n");
    assert_eq!((line, key.as_str()), (2, "api.bind"));
    let (line, _, key, _) = invalid("[api]\nport = 1\nport = 2\n");
    assert_eq!((line, key.as_str()), (3, "(syntax)"));
}

#[test]
fn secrets_resolve_literals_and_environment_variables() {
    let text = "[llm.providers.openai]\napi_key = \"env:MY_KEY\"\n[api]\ntoken = \"letmein\"\n";
    let config = parse_with(text, &[("MY_KEY", "sk-123")]).expect("parses");
    assert_eq!(
        config.llm.providers["openai"].api_key.as_deref(),
        Some("sk-123")
    );
    assert_eq!(
        config.secrets(),
        vec!["sk-123".to_string(), "letmein".to_string()]
    );
}

#[test]
fn missing_secret_variable_names_key_and_variable() {
    let text = "[llm.providers.openai]\nbase_url = \"https://x.test\"\napi_key = \"env:MY_KEY\"\n";
    let (line, column, key, message) = invalid_with(text, &[("MY_KEY", "")]);
    assert_eq!((line, column), (3, 11));
    assert_eq!(key, "llm.providers.openai.api_key");
    assert!(message.contains("MY_KEY"), "{message}");
    let (line, _, key, _) = invalid("[api]\ntoken = \"env:API_TOKEN\"\n");
    assert_eq!((line, key.as_str()), (2, "api.token"));
}

#[test]
fn model_ids_parse_at_the_first_slash() {
    let parsed = model("openrouter/anthropic/claude-3");
    assert_eq!(parsed.provider, "openrouter");
    assert_eq!(parsed.model, "anthropic/claude-3");
    assert_eq!(parsed.to_string(), "openrouter/anthropic/claude-3");
    for bad in ["gpt4", "/gpt-4o", "openai/", "openai/gpt 4o", ""] {
        assert!(
            bad.parse::<ModelId>().is_err(),
            "{bad:?} should be rejected"
        );
    }
}

#[test]
fn bad_model_ids_and_unknown_providers_are_located() {
    let (line, column, key, message) = invalid("\n[defaults.routing]\nchannel = \"gpt4\"\n");
    assert_eq!(
        (line, column, key.as_str()),
        (3, 11, "defaults.routing.channel")
    );
    assert!(message.contains("gpt4"), "{message}");
    let text = "[llm.providers.b]\n[llm.providers.a]\n[defaults.routing]\nchannel = \"a/m\"\nfallbacks = { \"a/m\" = [\"x/m\"] }\n";
    let (line, _, key, message) = invalid(text);
    assert_eq!(
        (line, key.as_str()),
        (5, "defaults.routing.fallbacks.\"a/m\"[0]")
    );
    assert_eq!(message, "unknown provider `x`; configured providers: a, b");
}

#[test]
fn environment_fallbacks_apply_only_without_configured_providers() {
    let local = [("OPENAI_BASE_URL", "http://localhost:8080/v1/")];
    let config = parse_with("", &local).expect("parses");
    let openai = &config.llm.providers["openai"];
    assert_eq!(openai.base_url.as_deref(), Some("http://localhost:8080/v1"));
    assert_eq!(
        (openai.kind, openai.api_key.as_ref()),
        (ProviderKind::OpenAi, None)
    );
    assert_eq!(config.defaults.routing.channel, model("openai/gpt-4o-mini"));

    let anthropic = [("ANTHROPIC_API_KEY", "sk-ant"), ("OPENAI_API_KEY", "")];
    let config = parse_with("", &anthropic).expect("parses");
    assert_eq!(
        config.llm.providers.keys().collect::<Vec<_>>(),
        ["anthropic"]
    );
    assert_eq!(
        config.llm.providers["anthropic"].kind,
        ProviderKind::Anthropic
    );
    assert_eq!(
        config.defaults.routing.cortex,
        model("anthropic/claude-sonnet-4-5")
    );

    let configured = "[llm.providers.local]\nbase_url = \"http://localhost:1234\"\n[defaults.routing]\nchannel = \"local/m\"\n";
    let config = parse_with(configured, &anthropic).expect("parses");
    assert_eq!(config.llm.providers.keys().collect::<Vec<_>>(), ["local"]);

    let (line, column, key, _) = invalid_with("", &[("OPENAI_BASE_URL", "localhost:8080")]);
    assert_eq!((line, column, key.as_str()), (0, 0, "OPENAI_BASE_URL"));
}

#[test]
fn spacebot_model_sets_the_default_channel_model() {
    let config = parse_with("", &[("SPACEBOT_MODEL", "openrouter/meta/llama")]).expect("parses");
    assert_eq!(
        config.defaults.routing.channel,
        model("openrouter/meta/llama")
    );
    assert_eq!(
        config.default_agent().routing.worker,
        model("openrouter/meta/llama")
    );
    let (line, column, key, _) = invalid_with("", &[("SPACEBOT_MODEL", "gpt4")]);
    assert_eq!((line, column, key.as_str()), (0, 0, "SPACEBOT_MODEL"));
    let explicit = "[defaults.routing]\nchannel = \"a/b\"\n";
    let config = parse_with(explicit, &[("SPACEBOT_MODEL", "c/d")]).expect("parses");
    assert_eq!(config.defaults.routing.branch, model("a/b"));
}

#[test]
fn unusable_builtin_default_model_is_an_error() {
    let (_, _, key, message) = invalid("[llm.providers.local]\n");
    assert_eq!(key, "defaults.routing.channel");
    assert!(message.contains("unknown provider `openai`"), "{message}");
}

#[test]
fn duplicate_agent_ids_point_at_the_second() {
    let text = "[[agents]]\nid = \"main\"\n[[agents]]\nid = \"main\"\n";
    let (line, column, key, message) = invalid(text);
    assert_eq!((line, column, key.as_str()), (4, 6, "agents[1].id"));
    assert!(message.contains("duplicate agent id `main`"), "{message}");
    let (_, _, key, _) = invalid("[[agents]]\nid = \"Main\"\n");
    assert_eq!(key, "agents[0].id");
}

#[test]
fn default_agent_rules() {
    let two_defaults =
        "[[agents]]\nid = \"a\"\ndefault = true\n[[agents]]\nid = \"b\"\ndefault = true\n";
    let (line, _, key, _) = invalid(two_defaults);
    assert_eq!((line, key.as_str()), (6, "agents[1].default"));
    let config = parse("[[agents]]\nid = \"a\"\n[[agents]]\nid = \"b\"\n");
    assert_eq!(config.default_agent().id, "a");
    assert!(!config.agents[1].default);
    let config = parse("");
    assert_eq!(
        (config.agents.len(), config.default_agent().id.as_str()),
        (1, "main")
    );
    assert!(config.agent("missing").is_none());
}

#[test]
fn agent_routing_merges_over_defaults() {
    let text = "[defaults]\nmax_turns = 7\n[defaults.routing]\nchannel = \"p/big\"\nfallbacks = { \"p/big\" = [\"p/mid\"], \"p/small\" = [\"p/tiny\"] }\n[[agents]]\nid = \"a\"\nhistory_messages = 9\n[agents.routing]\nworker = \"p/small\"\nfallbacks = { \"p/small\" = [\"q/other\"] }\n";
    let config = parse(text);
    let agent = config.default_agent();
    assert_eq!((agent.max_turns, agent.history_messages), (7, 9));
    assert_eq!(agent.routing.channel, model("p/big"));
    assert_eq!(agent.routing.compactor, model("p/big"));
    assert_eq!(agent.routing.worker, model("p/small"));
    assert_eq!(
        agent.routing.fallbacks_for(&model("p/big")),
        [model("p/mid")]
    );
    assert_eq!(
        agent.routing.fallbacks_for(&model("p/small")),
        [model("q/other")]
    );
    assert!(agent.routing.fallbacks_for(&model("p/none")).is_empty());
    let defaults = &config.defaults.routing;
    assert_eq!(defaults.fallbacks_for(&model("p/small")), [model("p/tiny")]);
}

#[test]
fn bindings_need_a_known_agent_and_platform() {
    let config = parse("[[bindings]]\nagent = \"main\"\nplatform = \"telegram\"\n");
    assert_eq!(config.bindings[0].platform, Platform::Telegram);
    for platform in ["portal", "webhook", "cron"] {
        let (line, _, key, message) = invalid(&format!(
            "[[bindings]]\nagent = \"main\"\nplatform = \"{platform}\"\n"
        ));
        assert_eq!(
            (line, key.as_str()),
            (3, "bindings[0].platform"),
            "{message}"
        );
    }
    assert_eq!(config.bindings[0].require_mention, None);
    let (line, _, key, message) =
        invalid("[[bindings]]\nagent = \"ghost\"\nplatform = \"slack\"\n");
    assert_eq!((line, key.as_str()), (2, "bindings[0].agent"));
    assert_eq!(message, "unknown agent `ghost`; configured agents: main");
    let (line, _, key, _) = invalid("[[bindings]]\nagent = \"main\"\nplatform = \"irc\"\n");
    assert_eq!((line, key.as_str()), (3, "bindings[0].platform"));
}

#[test]
fn base_url_needs_an_http_scheme() {
    let (line, _, key, _) = invalid("[llm.providers.o]\nbase_url = \"ftp://x\"\n");
    assert_eq!((line, key.as_str()), (2, "llm.providers.o.base_url"));
    let config = parse("[llm.providers.openai]\nbase_url = \"https://x.test/v1//\"\n");
    assert_eq!(
        config.llm.providers["openai"].base_url.as_deref(),
        Some("https://x.test/v1")
    );
    assert_eq!(config.llm.providers["openai"].timeout_secs, 120);
}

#[test]
fn out_of_range_values_are_located() {
    let (line, _, key, _) = invalid("[defaults]\n\nchannel_inbox = 0\n");
    assert_eq!((line, key.as_str()), (3, "defaults.channel_inbox"));
    let (line, _, key, _) = invalid("[[agents]]\nid = \"a\"\nmax_turns = 0\n");
    assert_eq!((line, key.as_str()), (3, "agents[0].max_turns"));
    let (line, _, key, _) = invalid("[defaults.retry]\ninitial_backoff_ms = 9000\n");
    assert_eq!(
        (line, key.as_str()),
        (2, "defaults.retry.initial_backoff_ms")
    );
    let (line, _, key, _) = invalid("[defaults]\nmax_turns = -1\n");
    assert_eq!((line, key.as_str()), (2, "defaults.max_turns"));
}

#[test]
fn load_reads_files_and_reports_read_errors() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("spacebot.toml");
    std::fs::write(&path, "[api]\nenabled = false\nbogus = 1\n").expect("write");
    match Config::load(&path, &|_| None) {
        Err(ConfigError::Invalid { file, line, .. }) => {
            assert_eq!((file, line), (path.display().to_string(), 3));
        }
        other => panic!("expected an Invalid error, got {other:?}"),
    }
    std::fs::write(&path, "[api]\nenabled = false\n").expect("write");
    let config = Config::load(&path, &|_| None).expect("loads");
    assert_eq!(config.path.as_deref(), Some(path.as_path()));
    assert!(!config.api.enabled);
    let missing = directory.path().join("missing.toml");
    let error = Config::load(&missing, &|_| None).expect_err("missing file");
    assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
}

#[test]
fn key_paths_quote_non_bare_keys() {
    let text = "[defaults.routing]\nfallbacks = { \"a/b\" = [3] }\n";
    let (line, _, key, _) = invalid(text);
    assert_eq!(
        (line, key.as_str()),
        (2, "defaults.routing.fallbacks.\"a/b\"[0]")
    );
    let (_, _, key, _) = invalid("[llm.providers.\"my.host\"]\nbase_url = \"x\"\n");
    assert_eq!(key, "llm.providers.\"my.host\".base_url");
    let (line, _, key, _) = invalid("\nfoo = 1\n");
    assert_eq!((line, key.as_str()), (2, "foo"));
}

#[test]
fn bad_fallback_keys_point_at_their_line() {
    let text = "[defaults.routing.fallbacks]\n\"a/b\" = [\"c/d\"]\n\"nope\" = [\"c/d\"]\n";
    let (line, _, key, _) = invalid(text);
    assert_eq!((line, key.as_str()), (3, "defaults.routing.fallbacks.nope"));
}

#[test]
fn memory_selects_the_embedder() {
    use super::{EmbedderConfig, MemoryConfig};
    assert_eq!(parse(DEFAULT_CONFIG).memory, MemoryConfig::default());
    let local = parse(
        "[memory]\nembedding_model_dir = \"/models/minilm\"\nmaintenance_interval_secs = 60\n",
    );
    assert_eq!(
        local.memory.embedder,
        EmbedderConfig::Local {
            model_dir: Some("/models/minilm".into()),
            download: true,
            download_url: super::DEFAULT_MODEL_DOWNLOAD_URL.to_string(),
        }
    );
    assert_eq!(local.memory.maintenance_interval_secs, Some(60));
    assert_eq!(local.agents[0].memory_maintenance_secs, 60);
    assert_eq!(
        parse("[memory]\nembedder = \"none\"\n").memory.embedder,
        EmbedderConfig::None
    );
    let provider = parse(
        "[llm.providers.local]\nbase_url = \"http://localhost:11434/v1\"\n\n[defaults.routing]\nchannel = \"local/llama3.1\"\n\n[memory]\nembedder = \"local/nomic-embed-text\"\n",
    );
    assert_eq!(
        provider.memory.embedder,
        EmbedderConfig::Provider {
            model: model("local/nomic-embed-text")
        }
    );
}

#[test]
fn bad_memory_settings_are_located() {
    let (line, _, key, message) = invalid(
        "[llm.providers.openai]\napi_key = \"k\"\n\n[memory]\nembedder = \"nowhere/model\"\n",
    );
    assert_eq!((line, key.as_str()), (5, "memory.embedder"));
    assert!(message.contains("unknown provider `nowhere`"), "{message}");
    let (line, _, key, message) = invalid(
        "[llm.providers.anthropic]\napi_key = \"k\"\n\n[memory]\nembedder = \"anthropic/claude\"\n",
    );
    assert_eq!((line, key.as_str()), (5, "memory.embedder"));
    assert!(message.contains("no embeddings endpoint"), "{message}");
    let (line, _, key, _) = invalid("[memory]\nmaintenance_interval_secs = 0\n");
    assert_eq!(
        (line, key.as_str()),
        (2, "memory.maintenance_interval_secs")
    );
    let (line, _, key, _) = invalid("[memory]\nmodel_download_url = \"ftp://x\"\n");
    assert_eq!((line, key.as_str()), (2, "memory.model_download_url"));
    let (_, _, key, _) = invalid("[memory]\nembeder = \"none\"\n");
    assert!(key.contains("embeder"), "{key}");
}

#[test]
fn model_settings_prices_budgets_and_streaming_are_read() {
    let config = parse(
        r#"
[llm.providers.local]
base_url = "http://localhost:1/v1"

[llm.models."local/tiny"]
context_window = 4096
max_output_tokens = 64
temperature = 0.5
reasoning_effort = "low"

[llm.pricing."tiny"]
input = 1.0
output = 2.0

[defaults]
daily_token_budget = 1000

[defaults.routing]
channel = "local/tiny"

[[agents]]
id = "a"

[[agents]]
id = "b"
daily_token_budget = 5

[messaging.telegram]
token = "t"
stream = false
"#,
    );
    let settings = &config.llm.models["local/tiny"];
    assert_eq!(settings.context_window, Some(4096));
    assert_eq!(settings.max_output_tokens, Some(64));
    assert_eq!(settings.reasoning_effort.as_deref(), Some("low"));
    let price = config.llm.pricing["tiny"];
    assert_eq!(
        (price.input, price.output, price.cache_read),
        (1.0, 2.0, 1.0)
    );
    assert_eq!(config.agents[0].daily_token_budget, Some(1000));
    assert_eq!(config.agents[1].daily_token_budget, Some(5));
    assert!(!config.messaging.telegram.as_ref().expect("telegram").stream);
    let (line, _, key, message) = invalid("[llm.models.\"x\"]\nreasoning_effort = \"extreme\"\n");
    assert_eq!(line, 2);
    assert_eq!(key, "llm.models.x.reasoning_effort");
    assert!(message.contains("low"), "{message}");
}

#[test]
fn transcription_is_routed_like_other_models_and_inherited_by_agents() {
    let config = parse(
        "[llm.providers.openai]\nkind = \"openai\"\napi_key = \"k\"\n\n[defaults.routing]\nchannel = \"openai/gpt-4o\"\ntranscription = \"openai/whisper-1\"\n\n[[agents]]\nid = \"main\"\n",
    );
    assert_eq!(
        config.defaults.routing.transcription,
        Some(model("openai/whisper-1"))
    );
    assert_eq!(
        config.agents[0].routing.transcription,
        Some(model("openai/whisper-1"))
    );
    assert!(parse("").defaults.routing.transcription.is_none());
}
