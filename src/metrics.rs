//! What the daemon counts, and its rendering as Prometheus text for `GET /metrics`. Events are
//! counted where they happen (a turn ends, an LLM call returns, a scheduled run ends, the
//! config is reloaded) into the `Metrics` of one daemon; what is a state rather than an event
//! (running processes, inbox depths, adapter states, memory counts, database sizes) is read at
//! scrape time into a `Snapshot` by the daemon, which alone sees every part. Each daemon has
//! its own families, never a process-wide recorder, so daemons in one process (the tests) do
//! not mix their counts.

use std::fmt;
use std::time::Duration;

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Label pairs of one series.
type Labels = Vec<(&'static str, String)>;

/// Upper bounds of the turn latency histogram, in seconds: a turn is one LLM call at best and
/// many tool rounds at worst.
const TURN_BUCKETS: [f64; 12] = [
    0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0, 300.0,
];
/// Upper bounds of the LLM call latency histogram, in seconds.
const CALL_BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0];

/// Makes the histograms of a family with fixed buckets.
#[derive(Clone, Copy)]
struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// The event counters of one daemon. Cheap to share: every family is reference-counted.
#[derive(Clone)]
pub struct Metrics {
    turns: Family<Labels, Counter>,
    turn_seconds: Family<Labels, Histogram, Buckets>,
    llm_calls: Family<Labels, Counter>,
    llm_call_seconds: Family<Labels, Histogram, Buckets>,
    llm_tokens: Family<Labels, Counter>,
    llm_errors: Family<Labels, Counter>,
    cron_runs: Family<Labels, Counter>,
    reloads: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            turns: Family::default(),
            turn_seconds: Family::new_with_constructor(Buckets(&TURN_BUCKETS)),
            llm_calls: Family::default(),
            llm_call_seconds: Family::new_with_constructor(Buckets(&CALL_BUCKETS)),
            llm_tokens: Family::default(),
            llm_errors: Family::default(),
            cron_runs: Family::default(),
            reloads: Family::default(),
        }
    }
}

/// How one LLM call (one attempt, before retries and fallbacks) ended.
#[derive(Debug, Clone, Copy)]
pub enum CallOutcome {
    Answered {
        input_tokens: u64,
        output_tokens: u64,
    },
    /// The error's kind, e.g. `rate_limited`, `timeout`, `status_5xx`.
    Failed(&'static str),
}

/// The text format a scraper asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4, what a plain `GET` gets.
    Prometheus,
    /// OpenMetrics 1.0 text, for `Accept: application/openmetrics-text`.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for.
    pub fn negotiate(accept: Option<&str>) -> Self {
        if accept.is_some_and(|accept| accept.contains("application/openmetrics-text")) {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

impl Metrics {
    /// A channel turn ended (`outcome`: replied, skipped, failed) after `elapsed`.
    pub fn turn(&self, agent: &str, outcome: &'static str, elapsed: Duration) {
        self.turns
            .get_or_create(&vec![
                ("agent", agent.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
        self.turn_seconds
            .get_or_create(&vec![("agent", agent.to_string())])
            .observe(elapsed.as_secs_f64());
    }

    /// One call to `model` (`provider/model`) ended.
    pub fn llm_call(&self, model: &str, elapsed: Duration, outcome: CallOutcome) {
        let model_label = || vec![("model", model.to_string())];
        let result = match outcome {
            CallOutcome::Answered {
                input_tokens,
                output_tokens,
            } => {
                for (direction, tokens) in [("input", input_tokens), ("output", output_tokens)] {
                    let mut labels = model_label();
                    labels.push(("direction", direction.to_string()));
                    self.llm_tokens.get_or_create(&labels).inc_by(tokens);
                }
                "ok"
            }
            CallOutcome::Failed(kind) => {
                let mut labels = model_label();
                labels.push(("kind", kind.to_string()));
                self.llm_errors.get_or_create(&labels).inc();
                "error"
            }
        };
        let mut labels = model_label();
        labels.push(("result", result.to_string()));
        self.llm_calls.get_or_create(&labels).inc();
        self.llm_call_seconds
            .get_or_create(&model_label())
            .observe(elapsed.as_secs_f64());
    }

    /// A scheduled run of `agent` ended in `state` (succeeded, failed, timed_out, ...).
    pub fn cron_run(&self, agent: &str, state: &'static str) {
        self.cron_runs
            .get_or_create(&vec![
                ("agent", agent.to_string()),
                ("state", state.to_string()),
            ])
            .inc();
    }

    /// A config reload was applied (`applied`), found nothing to change (`unchanged`) or was
    /// refused (`failed`).
    pub fn reload(&self, outcome: &'static str) {
        self.reloads
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc();
    }

    /// The counters and the snapshot's states, in `format`.
    pub fn render(&self, snapshot: &Snapshot, format: Format) -> Result<String, fmt::Error> {
        let mut registry = Registry::with_prefix("spacebot");
        self.register_events(&mut registry);
        snapshot.register(&mut registry);
        let mut body = String::new();
        match format {
            Format::Prometheus => prometheus_text::encode(&mut body, &registry)?,
            Format::OpenMetrics => text::encode(&mut body, &registry)?,
        }
        Ok(body)
    }

    fn register_events(&self, registry: &mut Registry) {
        registry.register(
            "turns",
            "Channel turns that ended, by agent and outcome (replied, skipped, failed)",
            self.turns.clone(),
        );
        // Histograms carry their unit in the name only: strict OpenMetrics readers refuse a
        // UNIT line on them.
        registry.register(
            "turn_duration_seconds",
            "How long channel turns took, from start to the recorded answer",
            self.turn_seconds.clone(),
        );
        registry.register(
            "llm_calls",
            "LLM calls (each attempt), by model and result (ok, error)",
            self.llm_calls.clone(),
        );
        registry.register(
            "llm_call_duration_seconds",
            "How long LLM calls took, by model",
            self.llm_call_seconds.clone(),
        );
        registry.register(
            "llm_tokens",
            "Tokens of LLM calls, by model and direction (input, output)",
            self.llm_tokens.clone(),
        );
        registry.register(
            "llm_errors",
            "Failed LLM calls, by model and kind (rate_limited, status_4xx, status_5xx, \
             timeout, transport, invalid_response, request, unknown_provider)",
            self.llm_errors.clone(),
        );
        registry.register(
            "cron_runs",
            "Scheduled runs that ended, by agent and state (succeeded, failed, timed_out, \
             cancelled, interrupted)",
            self.cron_runs.clone(),
        );
        registry.register(
            "config_reloads",
            "Config reloads, by outcome (applied, unchanged, failed)",
            self.reloads.clone(),
        );
    }
}

/// The daemon's state at one scrape.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub uptime: Duration,
    pub agents: Vec<AgentSnapshot>,
    pub adapters: Vec<AdapterSnapshot>,
    /// (database name, bytes on disk including its write-ahead log).
    pub databases: Vec<(String, u64)>,
    /// Models whose circuit breaker is open.
    pub open_breakers: u64,
    /// Whether the last config reload failed (the running config is older than the file).
    pub config_error: bool,
}

#[derive(Debug, Clone, Default)]
pub struct AgentSnapshot {
    pub agent: String,
    pub branches: u64,
    pub workers: u64,
    pub channels: u64,
    /// Inputs queued in all of the agent's channel inboxes, and in the fullest one.
    pub inbox_depth: u64,
    pub inbox_depth_max: u64,
    /// Messages stored and not yet answered.
    pub pending_messages: u64,
    /// (memory type, count of memories not forgotten).
    pub memories: Vec<(String, u64)>,
    pub cron_jobs_enabled: u64,
    pub cron_jobs_disabled: u64,
}

#[derive(Debug, Clone)]
pub struct AdapterSnapshot {
    pub adapter: String,
    /// The current state's name; every state in `states` is reported, 1 for this one.
    pub state: &'static str,
    pub states: &'static [&'static str],
    pub reconnects: u64,
}

impl Snapshot {
    fn register(&self, registry: &mut Registry) {
        let uptime = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        uptime.set(self.uptime.as_secs_f64());
        registry.register_with_unit(
            "uptime",
            "Time since the daemon started",
            Unit::Seconds,
            uptime,
        );
        let per_agent =
            |name: &'static str, help: &'static str, value: fn(&AgentSnapshot) -> u64| {
                let family = Family::<Labels, Gauge>::default();
                for agent in &self.agents {
                    family
                        .get_or_create(&vec![("agent", agent.agent.clone())])
                        .set(saturating_i64(value(agent)));
                }
                (name, help, family)
            };
        let gauges = [
            per_agent("branches_running", "Branches running now", |agent| {
                agent.branches
            }),
            per_agent("workers_running", "Workers running now", |agent| {
                agent.workers
            }),
            per_agent(
                "channels_active",
                "Conversations with a running channel",
                |agent| agent.channels,
            ),
            per_agent(
                "inbox_depth",
                "Inputs waiting in the agent's channel inboxes",
                |agent| agent.inbox_depth,
            ),
            per_agent(
                "inbox_depth_max",
                "Inputs waiting in the agent's fullest channel inbox",
                |agent| agent.inbox_depth_max,
            ),
            per_agent(
                "pending_messages",
                "Messages stored and not yet answered",
                |agent| agent.pending_messages,
            ),
        ];
        for (name, help, family) in gauges {
            registry.register(name, help, family);
        }
        let memories = Family::<Labels, Gauge>::default();
        let cron_jobs = Family::<Labels, Gauge>::default();
        for agent in &self.agents {
            for (memory_type, count) in &agent.memories {
                memories
                    .get_or_create(&vec![
                        ("agent", agent.agent.clone()),
                        ("type", memory_type.clone()),
                    ])
                    .set(saturating_i64(*count));
            }
            for (state, count) in [
                ("enabled", agent.cron_jobs_enabled),
                ("disabled", agent.cron_jobs_disabled),
            ] {
                cron_jobs
                    .get_or_create(&vec![
                        ("agent", agent.agent.clone()),
                        ("state", state.to_string()),
                    ])
                    .set(saturating_i64(count));
            }
        }
        registry.register(
            "memories",
            "Memories not forgotten, by agent and type",
            memories,
        );
        registry.register("cron_jobs", "Scheduled jobs, by agent and state", cron_jobs);
        let adapter_state = Family::<Labels, Gauge>::default();
        let reconnects = Family::<Labels, Counter>::default();
        for adapter in &self.adapters {
            for state in adapter.states {
                adapter_state
                    .get_or_create(&vec![
                        ("adapter", adapter.adapter.clone()),
                        ("state", (*state).to_string()),
                    ])
                    .set(i64::from(*state == adapter.state));
            }
            reconnects
                .get_or_create(&vec![("adapter", adapter.adapter.clone())])
                .inc_by(adapter.reconnects);
        }
        registry.register(
            "adapter_state",
            "Each chat platform's connection state: 1 for the state it is in",
            adapter_state,
        );
        registry.register(
            "adapter_reconnects",
            "Times a platform connection was lost and made again",
            reconnects,
        );
        let databases = Family::<Labels, Gauge>::default();
        for (database, bytes) in &self.databases {
            databases
                .get_or_create(&vec![("database", database.clone())])
                .set(saturating_i64(*bytes));
        }
        registry.register_with_unit(
            "database_size",
            "Size of each SQLite database on disk, with its write-ahead log",
            Unit::Bytes,
            databases,
        );
        let breakers = Gauge::<i64>::default();
        breakers.set(saturating_i64(self.open_breakers));
        registry.register(
            "llm_breakers_open",
            "Models passed over because they failed again and again",
            breakers,
        );
        let config_error = Gauge::<i64>::default();
        config_error.set(i64::from(self.config_error));
        registry.register(
            "config_reload_failing",
            "1 when the config file holds an edit that could not be applied",
            config_error,
        );
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_carry_the_counted_events() {
        let metrics = Metrics::default();
        metrics.turn("main", "replied", Duration::from_millis(300));
        metrics.llm_call(
            "fake/model",
            Duration::from_millis(20),
            CallOutcome::Answered {
                input_tokens: 10,
                output_tokens: 4,
            },
        );
        metrics.llm_call(
            "fake/model",
            Duration::from_millis(5),
            CallOutcome::Failed("status_5xx"),
        );
        let snapshot = Snapshot::default();
        let open = metrics
            .render(&snapshot, Format::OpenMetrics)
            .expect("render");
        assert!(open.ends_with("# EOF\n"), "{open}");
        assert!(
            open.contains(r#"spacebot_llm_tokens_total{model="fake/model",direction="input"} 10"#),
            "{open}"
        );
        let classic = metrics
            .render(&snapshot, Format::Prometheus)
            .expect("render");
        assert!(!classic.contains("# EOF"), "{classic}");
        assert!(
            classic.contains(r#"spacebot_turns_total{agent="main",outcome="replied"} 1"#),
            "{classic}"
        );
        assert!(
            classic
                .contains(r#"spacebot_llm_errors_total{model="fake/model",kind="status_5xx"} 1"#),
            "{classic}"
        );
    }
}
