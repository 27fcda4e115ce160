//! Keeping long-lived work alive: the one exponential `Backoff` every retry loop uses, the
//! `supervise` loop that restarts a failed task with it, and the `Lifecycle` (task tracker
//! and stop switches) that owns an agent's tasks.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why a supervised task stopped running.
pub type TaskError = Box<dyn std::error::Error + Send + Sync>;

/// Exponential backoff: the first wait is `initial`, each further one doubles, up to
/// `maximum`. With jitter, each wait is a random point between half of it and all of it, so
/// that many clients failing together do not retry together.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    maximum: Duration,
    next: Duration,
    jitter: bool,
}

impl Backoff {
    pub fn new(initial: Duration, maximum: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Self {
            initial,
            maximum: maximum.max(initial),
            next: initial,
            jitter: false,
        }
    }

    pub fn with_jitter(mut self) -> Self {
        self.jitter = true;
        self
    }

    /// The wait before the next attempt; the one after is twice as long (up to the maximum).
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.maximum);
        if self.jitter {
            let half = wait / 2;
            half + half.mul_f64(fastrand::f64())
        } else {
            wait
        }
    }

    /// Starts again from the initial wait (after a success).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// How a supervised task is restarted: with backoff from `initial` to `maximum`, starting
/// again from `initial` once a run stayed up for `healthy_after`.
#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    pub initial: Duration,
    pub maximum: Duration,
    pub healthy_after: Duration,
}

impl RestartPolicy {
    /// Restarts from `initial`, doubling up to a minute; a minute of good health resets it.
    pub fn from(initial: Duration) -> Self {
        Self {
            initial,
            maximum: Duration::from_secs(60),
            healthy_after: Duration::from_secs(60),
        }
    }
}

/// Runs a long-lived task, restarting it with backoff when it fails, panics or ends before
/// `stop` is cancelled. Each failure is logged under `name`; `factory` makes a fresh run.
pub fn supervise<Factory, Run>(
    tasks: &TaskTracker,
    name: &'static str,
    stop: CancellationToken,
    policy: RestartPolicy,
    mut factory: Factory,
) where
    Factory: FnMut() -> Run + Send + 'static,
    Run: Future<Output = Result<(), TaskError>> + Send + 'static,
{
    tasks.spawn(async move {
        let mut backoff = Backoff::new(policy.initial, policy.maximum);
        loop {
            let started = Instant::now();
            let outcome = AssertUnwindSafe(factory()).catch_unwind().await;
            if stop.is_cancelled() {
                return;
            }
            match outcome {
                Ok(Ok(())) => tracing::warn!(task = name, "task ended unexpectedly; restarting"),
                Ok(Err(error)) => tracing::error!(task = name, %error, "task failed; restarting"),
                Err(_) => tracing::error!(task = name, "task panicked; restarting"),
            }
            if started.elapsed() > policy.healthy_after {
                backoff.reset();
            }
            tokio::select! {
                () = tokio::time::sleep(backoff.next_wait()) => {}
                () = stop.cancelled() => return,
            }
        }
    });
}

/// The tasks of one owner (an agent) and its two stop switches: `closing` asks everything to
/// finish up and stop, `abort` cuts off what is still running at the shutdown deadline.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    /// Every task of the owner, to wait on at shutdown.
    pub tasks: TaskTracker,
    /// Cancelled at shutdown: loops finish their current step and stop.
    pub closing: CancellationToken,
    /// Cancelled at the shutdown deadline: work still running is cut off.
    pub abort: CancellationToken,
}

impl Lifecycle {
    /// Stops everything: asks the tasks to finish, waits up to `grace`, then cuts off the
    /// rest and waits for them. Returns false when the deadline was reached.
    pub async fn shut_down(&self, grace: Duration) -> bool {
        self.closing.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait()).await.is_ok() {
            return true;
        }
        self.abort.cancel();
        self.tasks.wait().await;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn backoff_doubles_up_to_its_maximum_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let waits: Vec<u128> = (0..4).map(|_| backoff.next_wait().as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), Duration::from_millis(100));
    }

    #[test]
    fn jittered_waits_stay_between_half_and_all_of_the_step() {
        for _ in 0..100 {
            let mut backoff =
                Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).with_jitter();
            let first = backoff.next_wait().as_millis();
            let second = backoff.next_wait().as_millis();
            assert!((50..=100).contains(&first), "{first}");
            assert!((100..=200).contains(&second), "{second}");
        }
    }

    #[tokio::test]
    async fn a_failing_task_is_restarted_until_it_runs() {
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let inner_stop = stop.clone();
        supervise(
            &tasks,
            "flaky",
            stop.clone(),
            RestartPolicy::from(Duration::from_millis(5)),
            move || {
                let counter = counter.clone();
                let stop = inner_stop.clone();
                async move {
                    match counter.fetch_add(1, Ordering::SeqCst) {
                        0 => Err("first run fails".into()),
                        1 => panic!("second run panics"),
                        _ => {
                            stop.cancelled().await;
                            Ok(())
                        }
                    }
                }
            },
        );
        tokio::time::timeout(Duration::from_secs(5), async {
            while runs.load(Ordering::SeqCst) < 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the task was restarted twice");
        stop.cancel();
        tasks.close();
        tokio::time::timeout(Duration::from_secs(5), tasks.wait())
            .await
            .expect("the supervisor stops when asked");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
