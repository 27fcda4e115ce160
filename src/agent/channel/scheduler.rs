//! When a channel's next turn starts: user messages first (direct ones at once, group bursts
//! after they go quiet or wait too long), then results of branches and workers, batched and
//! allowed to re-trigger the channel only a few times per user message. Pure timing logic,
//! driven by the instants it is given.

use std::time::Duration;

use tokio::time::Instant;

use super::inbox::ProcessReport;
use crate::config::CoalesceConfig;
use crate::conversation::StoredMessage;

/// The timing settings of one channel.
#[derive(Debug, Clone)]
pub struct Timing {
    pub coalesce: CoalesceConfig,
    /// Results arriving within this window re-trigger the channel as one turn.
    pub retrigger_batch: Duration,
    /// Re-triggers allowed per user message.
    pub max_retriggers: usize,
}

/// What starts a turn.
#[derive(Debug)]
pub enum Trigger {
    Messages(Vec<StoredMessage>),
    Results(Vec<ProcessReport>),
}

/// Messages and results waiting for a turn.
#[derive(Debug)]
pub struct TurnScheduler {
    timing: Timing,
    pending: Vec<StoredMessage>,
    pending_direct: bool,
    first_pending_at: Option<Instant>,
    last_pending_at: Option<Instant>,
    results: Vec<ProcessReport>,
    first_result_at: Option<Instant>,
    retriggers_since_user: usize,
}

impl TurnScheduler {
    pub fn new(timing: Timing) -> Self {
        Self {
            timing,
            pending: Vec::new(),
            pending_direct: false,
            first_pending_at: None,
            last_pending_at: None,
            results: Vec::new(),
            first_result_at: None,
            retriggers_since_user: 0,
        }
    }

    pub fn queue_message(&mut self, message: StoredMessage, direct: bool, now: Instant) {
        self.first_pending_at.get_or_insert(now);
        self.last_pending_at = Some(now);
        self.pending_direct |= direct;
        self.pending.push(message);
    }

    /// Messages owed from before a restart (or a copy of a queued one marked direct) may
    /// start a turn at once.
    pub fn hurry(&mut self) {
        self.pending_direct |= !self.pending.is_empty();
    }

    /// Marks the queued messages as ones that must not wait (a direct copy arrived).
    pub fn mark_direct(&mut self, direct: bool) {
        self.pending_direct |= direct;
    }

    pub fn is_pending(&self, id: &str) -> bool {
        self.pending.iter().any(|message| message.id == id)
    }

    pub fn queue_result(&mut self, result: ProcessReport, now: Instant) {
        self.first_result_at.get_or_insert(now);
        self.results.push(result);
    }

    /// Something waits for a turn.
    pub fn has_work(&self) -> bool {
        !self.pending.is_empty() || !self.results.is_empty()
    }

    /// When the next queued thing becomes ready, if anything waits.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        if !self.pending.is_empty() {
            return Some(self.pending_ready_at(now));
        }
        self.first_result_at
            .map(|first| first + self.timing.retrigger_batch)
    }

    /// When the queued messages may start a turn: `now` for direct messages, else when the
    /// burst has been quiet for the debounce time or has waited the maximum.
    fn pending_ready_at(&self, now: Instant) -> Instant {
        let coalesce = &self.timing.coalesce;
        if self.pending_direct || !coalesce.enabled {
            return now;
        }
        let last = self.last_pending_at.unwrap_or(now);
        let first = self.first_pending_at.unwrap_or(now);
        (last + Duration::from_millis(coalesce.debounce_ms))
            .min(first + Duration::from_millis(coalesce.max_wait_ms))
    }

    /// The turn to run now, if any, and the results that will not get a turn of their own
    /// (they go into the status block instead).
    pub fn ready(&mut self, now: Instant) -> (Option<Trigger>, Vec<ProcessReport>) {
        if !self.pending.is_empty() {
            if self.pending_ready_at(now) > now {
                return (None, Vec::new());
            }
            self.first_pending_at = None;
            self.last_pending_at = None;
            self.pending_direct = false;
            self.retriggers_since_user = 0;
            self.first_result_at = None;
            let passed_over = std::mem::take(&mut self.results);
            return (
                Some(Trigger::Messages(std::mem::take(&mut self.pending))),
                passed_over,
            );
        }
        let Some(first) = self.first_result_at else {
            return (None, Vec::new());
        };
        if first + self.timing.retrigger_batch > now {
            return (None, Vec::new());
        }
        self.first_result_at = None;
        if self.retriggers_since_user >= self.timing.max_retriggers {
            tracing::debug!("re-trigger cap reached; results wait for the next user turn");
            return (None, std::mem::take(&mut self.results));
        }
        self.retriggers_since_user += 1;
        (
            Some(Trigger::Results(std::mem::take(&mut self.results))),
            Vec::new(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::channel::inbox::ProcessResult;
    use crate::conversation::{MessageStatus, Role};
    use crate::event::{ProcessId, WorkerState};
    use crate::message::{Authority, Standing};

    fn timing() -> Timing {
        Timing {
            coalesce: CoalesceConfig {
                enabled: true,
                debounce_ms: 1500,
                max_wait_ms: 5000,
            },
            retrigger_batch: Duration::from_millis(500),
            max_retriggers: 2,
        }
    }

    fn message(id: &str) -> StoredMessage {
        StoredMessage {
            id: id.into(),
            conversation_id: "portal:test".into(),
            role: Role::User,
            sender: "ana".into(),
            content: "hi".into(),
            platform_message_id: None,
            status: MessageStatus::Pending,
            created_at: 0,
            sender_id: None,
            authority: Authority::Owner,
            direct: true,
        }
    }

    fn result() -> ProcessReport {
        ProcessReport {
            standing: Standing::OWNER,
            result: ProcessResult::WorkerFinished {
                process_id: ProcessId::Worker(uuid::Uuid::nil()),
                task: "t".into(),
                state: WorkerState::Succeeded,
                result: "r".into(),
            },
        }
    }

    fn ms(milliseconds: u64) -> Duration {
        Duration::from_millis(milliseconds)
    }

    #[test]
    fn a_direct_message_starts_a_turn_at_once() {
        let start = Instant::now();
        let mut scheduler = TurnScheduler::new(timing());
        scheduler.queue_message(message("a"), true, start);
        assert_eq!(scheduler.next_deadline(start), Some(start));
        assert!(matches!(
            scheduler.ready(start),
            (Some(Trigger::Messages(batch)), _) if batch.len() == 1
        ));
        assert!(!scheduler.has_work());
    }

    #[test]
    fn a_group_burst_waits_until_quiet_or_until_the_longest_wait() {
        let start = Instant::now();
        let mut scheduler = TurnScheduler::new(timing());
        scheduler.queue_message(message("a"), false, start);
        assert!(scheduler.ready(start + ms(1000)).0.is_none());
        scheduler.queue_message(message("b"), false, start + ms(1000));
        assert_eq!(
            scheduler.next_deadline(start + ms(1000)),
            Some(start + ms(2500))
        );
        // Messages every second keep it waiting, up to the 5 s cap from the first.
        for second in 2..5 {
            scheduler.queue_message(message("c"), false, start + ms(second * 1000));
        }
        assert_eq!(
            scheduler.next_deadline(start + ms(4000)),
            Some(start + ms(5000))
        );
        assert!(scheduler.ready(start + ms(4999)).0.is_none());
        assert!(matches!(
            scheduler.ready(start + ms(5000)),
            (Some(Trigger::Messages(batch)), _) if batch.len() == 5
        ));
    }

    #[test]
    fn results_are_batched_and_retrigger_only_a_few_times_per_user_message() {
        let start = Instant::now();
        let mut scheduler = TurnScheduler::new(timing());
        scheduler.queue_result(result(), start);
        scheduler.queue_result(result(), start + ms(100));
        assert!(scheduler.ready(start + ms(499)).0.is_none());
        assert!(matches!(
            scheduler.ready(start + ms(500)),
            (Some(Trigger::Results(results)), _) if results.len() == 2
        ));
        scheduler.queue_result(result(), start + ms(600));
        assert!(scheduler.ready(start + ms(1100)).0.is_some());
        // The cap (2) is reached: the third batch waits for the next user turn.
        scheduler.queue_result(result(), start + ms(1200));
        let (trigger, passed_over) = scheduler.ready(start + ms(1700));
        assert!(trigger.is_none());
        assert_eq!(passed_over.len(), 1);
        // A user message resets the cap, and takes waiting results along.
        scheduler.queue_result(result(), start + ms(1800));
        scheduler.queue_message(message("m"), true, start + ms(1900));
        let (trigger, passed_over) = scheduler.ready(start + ms(1900));
        assert!(matches!(trigger, Some(Trigger::Messages(_))));
        assert_eq!(passed_over.len(), 1);
        scheduler.queue_result(result(), start + ms(2000));
        assert!(matches!(
            scheduler.ready(start + ms(2500)),
            (Some(Trigger::Results(_)), _)
        ));
    }
}
