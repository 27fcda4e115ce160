//! The cortex: one supervised task per agent that watches the agent's event bus and process
//! registry. It stops branches and workers that pass their wall-clock limit or make no
//! progress for too long (they end as timed out, and their channel hears once), keeps circuit
//! breakers for tools that fail again and again, and runs periodic maintenance only when
//! something changed. It never calls an LLM, so an idle agent costs nothing.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tracing::Instrument;

use super::Agent;
use super::processes::{ProcessRegistry, StopReason};
use crate::config::CortexConfig;
use crate::database::now_millis;
use crate::event::{ProcessEvent, ProcessId, ProcessType};
use crate::schedule::format_duration;
use crate::supervision::{RestartPolicy, TaskError, supervise};

/// Actions kept for the API.
const ACTIONS_KEPT: usize = 100;
/// The first restart delay of a failed cortex task.
const RESTART_BACKOFF: Duration = Duration::from_secs(1);

/// Periodic upkeep the cortex runs when something changed since its last run (memory
/// maintenance, for one). The text it returns is recorded as the cortex's action.
pub type MaintenanceTask =
    Arc<dyn Fn() -> BoxFuture<'static, Result<String, TaskError>> + Send + Sync>;

/// A registered upkeep task and how often it may run.
#[derive(Clone)]
struct Upkeep {
    name: String,
    interval: Duration,
    task: MaintenanceTask,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// A branch ran past its wall-clock limit and was stopped.
    TimedOut,
    /// A branch or worker made no progress for too long and was stopped.
    Stalled,
    BreakerTripped,
    BreakerRecovered,
    Maintenance,
    MaintenanceFailed,
}

/// Something the cortex did.
#[derive(Debug, Clone, Serialize)]
pub struct CortexAction {
    /// Unix milliseconds.
    pub at: i64,
    pub kind: ActionKind,
    pub process_id: Option<ProcessId>,
    pub conversation_id: Option<String>,
    pub detail: String,
}

/// A tool whose recent calls failed in a row.
#[derive(Debug, Clone, Serialize)]
pub struct ToolBreaker {
    pub tool: String,
    pub consecutive_failures: u32,
    /// Unix milliseconds when it tripped; `None` while under the threshold.
    pub tripped_at: Option<i64>,
}

/// A running branch or worker as the cortex sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Watched {
    pub process_id: ProcessId,
    pub conversation_id: String,
    pub age_secs: u64,
    /// Seconds since its last sign of progress (a tool started or printed, a status).
    pub idle_secs: u64,
}

/// What the API shows.
#[derive(Debug, Clone, Serialize)]
pub struct CortexSnapshot {
    pub actions: Vec<CortexAction>,
    pub tool_breakers: Vec<ToolBreaker>,
    pub watching: Vec<Watched>,
    pub maintenance: MaintenanceStatus,
    pub stall_secs: u64,
    pub branch_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceStatus {
    pub tasks: Vec<String>,
    pub interval_secs: u64,
    /// Something changed since the last run.
    pub pending: bool,
    pub last_run_at: Option<i64>,
}

struct Progress {
    conversation_id: String,
    kind: ProcessType,
    started: Instant,
    last_progress: Instant,
    /// Stopped already: stop it only once.
    stopped: bool,
}

struct ToolCounter {
    consecutive_failures: u32,
    tripped: Option<(Instant, i64)>,
}

#[derive(Default)]
struct Observed {
    actions: VecDeque<CortexAction>,
    tools: BTreeMap<String, ToolCounter>,
    processes: HashMap<ProcessId, Progress>,
    changed: bool,
    last_maintenance: Option<i64>,
}

/// The cortex's shared state: written by its task, read by channels (the status block) and
/// the API.
pub struct CortexState {
    config: CortexConfig,
    observed: Mutex<Observed>,
    maintenance: Mutex<Vec<Upkeep>>,
    maintaining: AtomicBool,
}

impl CortexState {
    pub fn new(config: CortexConfig) -> Self {
        Self {
            config,
            observed: Mutex::new(Observed::default()),
            maintenance: Mutex::new(Vec::new()),
            maintaining: AtomicBool::new(false),
        }
    }

    /// Registers periodic upkeep, run at most every `interval` and only when something
    /// changed since the last run. (All tasks run together, at the shortest interval.)
    pub fn add_maintenance(&self, name: &str, interval: Duration, task: MaintenanceTask) {
        if let Ok(mut maintenance) = self.maintenance.lock() {
            maintenance.push(Upkeep {
                name: name.to_string(),
                interval: interval.max(Duration::from_secs(1)),
                task,
            });
        }
    }

    /// How often maintenance runs: the shortest interval of the registered tasks.
    fn maintenance_interval(&self) -> Duration {
        self.maintenance
            .lock()
            .ok()
            .and_then(|maintenance| maintenance.iter().map(|upkeep| upkeep.interval).min())
            .unwrap_or(Duration::from_secs(
                self.config.maintenance_interval_secs.max(1),
            ))
    }

    pub fn snapshot(&self) -> CortexSnapshot {
        let now = Instant::now();
        let tasks = self.maintenance.lock().map_or_else(
            |_| Vec::new(),
            |maintenance| {
                maintenance
                    .iter()
                    .map(|upkeep| upkeep.name.clone())
                    .collect()
            },
        );
        let interval_secs = self.maintenance_interval().as_secs();
        let Ok(observed) = self.observed.lock() else {
            return CortexSnapshot {
                actions: Vec::new(),
                tool_breakers: Vec::new(),
                watching: Vec::new(),
                maintenance: MaintenanceStatus {
                    tasks,
                    interval_secs,
                    pending: false,
                    last_run_at: None,
                },
                stall_secs: self.config.stall_secs,
                branch_timeout_secs: self.config.branch_timeout_secs,
            };
        };
        let mut watching: Vec<Watched> = observed
            .processes
            .iter()
            .map(|(process_id, progress)| Watched {
                process_id: process_id.clone(),
                conversation_id: progress.conversation_id.clone(),
                age_secs: now.duration_since(progress.started).as_secs(),
                idle_secs: now.duration_since(progress.last_progress).as_secs(),
            })
            .collect();
        watching.sort_by_key(|watched| std::cmp::Reverse(watched.age_secs));
        CortexSnapshot {
            actions: observed.actions.iter().cloned().collect(),
            tool_breakers: observed
                .tools
                .iter()
                .filter(|(_, counter)| counter.consecutive_failures > 0)
                .map(|(tool, counter)| ToolBreaker {
                    tool: tool.clone(),
                    consecutive_failures: counter.consecutive_failures,
                    tripped_at: counter.tripped.map(|(_, at)| at),
                })
                .collect(),
            watching,
            maintenance: MaintenanceStatus {
                tasks,
                interval_secs,
                pending: observed.changed,
                last_run_at: observed.last_maintenance,
            },
            stall_secs: self.config.stall_secs,
            branch_timeout_secs: self.config.branch_timeout_secs,
        }
    }

    /// Tools tripped within the cool-down, one line each for the status block.
    pub fn tool_warnings(&self) -> Vec<String> {
        let cooldown = Duration::from_secs(self.config.breaker_cooldown_secs);
        let Ok(observed) = self.observed.lock() else {
            return Vec::new();
        };
        observed
            .tools
            .iter()
            .filter_map(|(tool, counter)| {
                let (tripped, _) = counter.tripped?;
                (tripped.elapsed() < cooldown).then(|| {
                    format!(
                        "tool `{tool}` failed {} times in a row",
                        counter.consecutive_failures
                    )
                })
            })
            .collect()
    }

    fn record(&self, observed: &mut Observed, action: CortexAction) {
        match action.kind {
            ActionKind::TimedOut | ActionKind::Stalled | ActionKind::BreakerTripped => {
                tracing::warn!(kind = ?action.kind, process_id = ?action.process_id, conversation_id = ?action.conversation_id, detail = %action.detail, "cortex")
            }
            ActionKind::BreakerRecovered | ActionKind::Maintenance => {
                tracing::info!(kind = ?action.kind, detail = %action.detail, "cortex")
            }
            ActionKind::MaintenanceFailed => {
                tracing::error!(detail = %action.detail, "cortex maintenance failed")
            }
        }
        observed.actions.push_back(action);
        while observed.actions.len() > ACTIONS_KEPT {
            observed.actions.pop_front();
        }
    }

    /// Counts a tool call: failures in a row trip the tool's breaker, a success resets it.
    fn note_tool(&self, observed: &mut Observed, tool: &str, is_error: bool) {
        let threshold = self.config.breaker_threshold;
        let cooldown = Duration::from_secs(self.config.breaker_cooldown_secs);
        let counter = observed
            .tools
            .entry(tool.to_string())
            .or_insert(ToolCounter {
                consecutive_failures: 0,
                tripped: None,
            });
        if !is_error {
            let was_tripped = counter.tripped.is_some();
            observed.tools.remove(tool);
            if was_tripped {
                let action = action(
                    ActionKind::BreakerRecovered,
                    None,
                    None,
                    format!("tool `{tool}` works again"),
                );
                self.record(observed, action);
            }
            return;
        }
        counter.consecutive_failures += 1;
        if counter.consecutive_failures < threshold {
            return;
        }
        let newly = counter
            .tripped
            .is_none_or(|(tripped, _)| tripped.elapsed() >= cooldown);
        counter.tripped = Some((Instant::now(), now_millis()));
        let failures = counter.consecutive_failures;
        if newly {
            let action = action(
                ActionKind::BreakerTripped,
                None,
                None,
                format!("tool `{tool}` failed {failures} times in a row"),
            );
            self.record(observed, action);
        }
    }

    /// Takes in one event.
    fn observe(&self, event: &ProcessEvent) {
        let Ok(mut observed) = self.observed.lock() else {
            return;
        };
        let now = Instant::now();
        match event {
            ProcessEvent::BranchStarted {
                conversation_id,
                process_id,
                ..
            }
            | ProcessEvent::WorkerStarted {
                conversation_id,
                process_id,
                ..
            } => {
                observed.processes.insert(
                    process_id.clone(),
                    Progress {
                        conversation_id: conversation_id.clone(),
                        kind: process_id.process_type(),
                        started: now,
                        last_progress: now,
                        stopped: false,
                    },
                );
            }
            ProcessEvent::ToolStarted { process_id, .. }
            | ProcessEvent::ToolOutput { process_id, .. }
            | ProcessEvent::WorkerStatus { process_id, .. } => {
                if let Some(progress) = observed.processes.get_mut(process_id) {
                    progress.last_progress = now;
                }
            }
            ProcessEvent::ToolCompleted {
                process_id,
                tool,
                is_error,
                ..
            } => {
                if let Some(progress) = observed.processes.get_mut(process_id) {
                    progress.last_progress = now;
                }
                self.note_tool(&mut observed, tool, *is_error);
            }
            ProcessEvent::BranchResult { process_id, .. }
            | ProcessEvent::WorkerComplete { process_id, .. } => {
                observed.processes.remove(process_id);
                observed.changed = true;
            }
            // New memories are what the memory maintenance waits for.
            ProcessEvent::MemorySaved { .. } => observed.changed = true,
            ProcessEvent::MessageReceived { .. }
            | ProcessEvent::MessageSent { .. }
            | ProcessEvent::TurnCompleted { .. }
            | ProcessEvent::CompactionCompleted { .. } => observed.changed = true,
            ProcessEvent::TurnFailed { .. }
            | ProcessEvent::CompactionStarted { .. }
            | ProcessEvent::ReplyStreaming { .. } => {}
        }
    }

    /// After missed events: trust the registry for what runs, and give every process the
    /// benefit of the doubt about its progress.
    fn lost_track(&self, processes: &ProcessRegistry) {
        if let Ok(mut observed) = self.observed.lock() {
            let now = Instant::now();
            for progress in observed.processes.values_mut() {
                progress.last_progress = now;
            }
            observed.changed = true;
        }
        self.reconcile(processes);
    }

    /// Matches the watched processes with the registry, the truth about what runs.
    fn reconcile(&self, processes: &ProcessRegistry) {
        let running = processes.list(None);
        let Ok(mut observed) = self.observed.lock() else {
            return;
        };
        let now = Instant::now();
        observed.processes.retain(|process_id, _| {
            running
                .iter()
                .any(|summary| summary.process_id == *process_id)
        });
        for summary in running {
            let progress = observed
                .processes
                .entry(summary.process_id.clone())
                .or_insert_with(|| Progress {
                    conversation_id: summary.conversation_id.clone(),
                    kind: summary.kind,
                    started: Instant::from_std(summary.started_at),
                    last_progress: now,
                    stopped: false,
                });
            // Waiting for a follow-up from the user is not a stall.
            if summary.waiting {
                progress.last_progress = now;
            }
        }
    }

    /// Stops what ran too long or stalled. Each process is stopped once.
    fn enforce(&self, processes: &ProcessRegistry) {
        self.reconcile(processes);
        let stall = Duration::from_secs(self.config.stall_secs);
        let branch_limit = Duration::from_secs(self.config.branch_timeout_secs);
        let Ok(mut observed) = self.observed.lock() else {
            return;
        };
        let mut actions = Vec::new();
        for (process_id, progress) in observed.processes.iter_mut() {
            if progress.stopped {
                continue;
            }
            let (kind, why) = if progress.kind == ProcessType::Branch
                && progress.started.elapsed() > branch_limit
            {
                (
                    ActionKind::TimedOut,
                    format!(
                        "stopped by the cortex: ran longer than the branch limit of {}",
                        format_duration(branch_limit)
                    ),
                )
            } else if progress.last_progress.elapsed() > stall {
                (
                    ActionKind::Stalled,
                    format!(
                        "stopped by the cortex: no progress for {}",
                        format_duration(stall)
                    ),
                )
            } else {
                continue;
            };
            if processes.stop(process_id, StopReason::TimedOut(why.clone())) {
                progress.stopped = true;
                actions.push(action(
                    kind,
                    Some(process_id.clone()),
                    Some(progress.conversation_id.clone()),
                    why,
                ));
            }
        }
        for action in actions {
            self.record(&mut observed, action);
        }
    }

    /// Whether anything is watched (the cortex then checks on a short tick).
    fn watching(&self) -> bool {
        self.observed
            .lock()
            .is_ok_and(|observed| !observed.processes.is_empty())
    }

    fn take_changed(&self) -> bool {
        self.observed
            .lock()
            .is_ok_and(|mut observed| std::mem::take(&mut observed.changed))
    }
}

fn action(
    kind: ActionKind,
    process_id: Option<ProcessId>,
    conversation_id: Option<String>,
    detail: String,
) -> CortexAction {
    CortexAction {
        at: now_millis(),
        kind,
        process_id,
        conversation_id,
        detail,
    }
}

/// Starts the agent's cortex under a supervisor that restarts it if it fails.
pub fn start(agent: &Arc<Agent>) {
    let span = tracing::info_span!("cortex", agent_id = %agent.config.id);
    let task_agent = agent.clone();
    supervise(
        &agent.lifecycle.tasks,
        "cortex",
        agent.lifecycle.closing.clone(),
        RestartPolicy::from(RESTART_BACKOFF),
        move || run(task_agent.clone()).instrument(span.clone()),
    );
}

async fn run(agent: Arc<Agent>) -> Result<(), TaskError> {
    let state = agent.cortex.clone();
    let processes = &agent.processes;
    let closing = &agent.lifecycle.closing;
    let mut events = agent.tool_loop.events.subscribe();
    let check_every = check_interval(&state.config);
    let maintenance_every = state.maintenance_interval();
    let mut next_maintenance = Instant::now() + maintenance_every;
    // Processes started before this (re)start are found in the registry.
    state.reconcile(processes);
    loop {
        let next_check = state.watching().then(|| Instant::now() + check_every);
        tokio::select! {
            biased;
            () = closing.cancelled() => return Ok(()),
            received = events.recv() => match received {
                Ok(event) => state.observe(&event),
                Err(RecvError::Lagged(skipped)) => {
                    tracing::warn!(skipped, "the cortex fell behind the event bus");
                    state.lost_track(processes);
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            () = sleep_until(next_check), if next_check.is_some() => state.enforce(processes),
            () = tokio::time::sleep_until(next_maintenance) => {
                next_maintenance = Instant::now() + maintenance_every;
                if state.take_changed() {
                    maintain(&agent, &state);
                }
            }
        }
    }
}

/// How often running processes are checked: a quarter of the shortest limit, between
/// 100 ms and 5 s.
fn check_interval(config: &CortexConfig) -> Duration {
    let shortest = config.stall_secs.min(config.branch_timeout_secs).max(1);
    (Duration::from_secs(shortest) / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Runs every maintenance task in the background, one run at a time.
fn maintain(agent: &Agent, state: &Arc<CortexState>) {
    let tasks: Vec<Upkeep> = state
        .maintenance
        .lock()
        .map_or_else(|_| Vec::new(), |maintenance| maintenance.clone());
    if tasks.is_empty() || state.maintaining.swap(true, Ordering::AcqRel) {
        return;
    }
    let state = state.clone();
    agent.lifecycle.tasks.spawn(
        async move {
            for Upkeep { name, task, .. } in tasks {
                let result = task().await;
                if let Ok(mut observed) = state.observed.lock() {
                    let (kind, detail) = match result {
                        Ok(report) => (ActionKind::Maintenance, format!("{name}: {report}")),
                        Err(error) => (ActionKind::MaintenanceFailed, format!("{name}: {error}")),
                    };
                    state.record(&mut observed, action(kind, None, None, detail));
                    observed.last_maintenance = Some(now_millis());
                }
            }
            state.maintaining.store(false, Ordering::Release);
        }
        .in_current_span(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CortexConfig {
        CortexConfig {
            stall_secs: 60,
            branch_timeout_secs: 60,
            breaker_threshold: 3,
            breaker_cooldown_secs: 300,
            maintenance_interval_secs: 1,
        }
    }

    fn tool_completed(tool: &str, is_error: bool) -> ProcessEvent {
        ProcessEvent::ToolCompleted {
            agent_id: "main".into(),
            conversation_id: "portal:x".into(),
            process_id: ProcessId::Worker(uuid::Uuid::nil()),
            tool: tool.into(),
            is_error,
        }
    }

    #[test]
    fn a_tool_breaker_trips_after_three_failures_in_a_row_and_recovers_on_success() {
        let state = CortexState::new(config());
        state.observe(&tool_completed("shell", true));
        state.observe(&tool_completed("shell", true));
        assert!(state.tool_warnings().is_empty());
        state.observe(&tool_completed("file_read", false));
        state.observe(&tool_completed("shell", true));
        assert_eq!(
            state.tool_warnings(),
            vec!["tool `shell` failed 3 times in a row"]
        );
        state.observe(&tool_completed("shell", true));
        let snapshot = state.snapshot();
        let tripped: Vec<_> = snapshot
            .actions
            .iter()
            .filter(|action| action.kind == ActionKind::BreakerTripped)
            .collect();
        assert_eq!(tripped.len(), 1, "reported once while it stays tripped");
        state.observe(&tool_completed("shell", false));
        assert!(state.tool_warnings().is_empty());
        assert_eq!(
            state.snapshot().actions.last().map(|action| action.kind),
            Some(ActionKind::BreakerRecovered)
        );
    }

    #[test]
    fn maintenance_is_due_only_after_a_change() {
        let state = CortexState::new(config());
        assert!(!state.take_changed());
        state.observe(&tool_completed("shell", false));
        assert!(
            !state.take_changed(),
            "a tool call alone changes nothing kept"
        );
        state.observe(&ProcessEvent::MessageSent {
            agent_id: "main".into(),
            conversation_id: "portal:x".into(),
            message_id: "m".into(),
            in_reply_to: Vec::new(),
            content: "hi".into(),
        });
        assert!(state.take_changed());
        assert!(!state.take_changed(), "taken once");
    }

    #[test]
    fn the_check_interval_follows_the_shortest_limit() {
        let mut limits = config();
        limits.stall_secs = 1;
        assert_eq!(check_interval(&limits), Duration::from_millis(250));
        limits.stall_secs = 3600;
        limits.branch_timeout_secs = 3600;
        assert_eq!(check_interval(&limits), Duration::from_secs(5));
    }
}
