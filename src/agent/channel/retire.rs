//! Idle retirement: a channel with nothing queued or running stops after
//! `channel_idle_secs` to free its memory, without losing an input sent to it meanwhile; the
//! next message starts a successor from the store.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Channel;
use crate::agent::capture::CaptureReason;

impl Channel {
    /// When this channel, with nothing queued or running, may stop to free its memory.
    pub(super) fn idle_deadline(&self) -> Option<Instant> {
        let idle = self.agent.config.limits.channel_idle_secs;
        let busy = self.scheduler.has_work() || self.summary_running || self.awaiting_settlement;
        (idle > 0 && !busy).then(|| self.last_activity + Duration::from_secs(idle))
    }

    /// Stops an idle channel. Under the directory's lock the channel leaves it (so the next
    /// message starts a successor) and closes its inbox; it then drains what was sent before
    /// the close. Those inputs are stored messages or reloads, which a successor reads from
    /// the store; if none has started, this channel takes its place again and handles them.
    /// Returns whether it stopped.
    pub(super) async fn retire(&mut self) -> bool {
        if self.agent.processes.count_in(self.conversation.as_str()) > 0
            || self.stale.load(std::sync::atomic::Ordering::Acquire)
        {
            self.last_activity = Instant::now();
            return false;
        }
        {
            let Ok(mut channels) = self.directory.lock() else {
                return false;
            };
            if channels
                .get(&self.conversation)
                .is_some_and(|handle| handle.is(&self.results))
            {
                channels.remove(&self.conversation);
            }
            self.inbox.close();
        }
        let mut leftovers = Vec::new();
        while let Some(input) = self.inbox.recv().await {
            leftovers.push(input);
        }
        if leftovers.is_empty() {
            tracing::debug!("idle; the channel stops");
            if self.uncaptured != Some(0) {
                self.capture(CaptureReason::Idle);
            }
            return true;
        }
        let (sender, inbox) = mpsc::channel(self.agent.config.channel_inbox);
        {
            let Ok(mut channels) = self.directory.lock() else {
                return true;
            };
            if channels.contains_key(&self.conversation) {
                return true;
            }
            channels.insert(
                self.conversation.clone(),
                super::ChannelHandle::new(sender.clone(), self.stale.clone()),
            );
        }
        self.inbox = inbox;
        self.results = sender;
        for input in leftovers {
            self.accept(input).await;
        }
        false
    }
}
