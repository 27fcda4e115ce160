//! When a channel starts automatic memory capture (`agent::capture`): every
//! `capture_every` user messages, before the compactor folds history away, and when the
//! channel goes idle with messages no pass has read. The channel only counts and starts it.

use super::Channel;
use crate::agent::capture::{self, CaptureReason};

impl Channel {
    /// Counts `said` more user messages; starts a pass once `capture_every` have come since
    /// the last one. The count starts from the store the first time.
    pub(super) async fn count_for_capture(&mut self, said: usize) {
        let every = self.agent.config.capture_every;
        if every == 0 || said == 0 {
            return;
        }
        let waiting = match self.uncaptured {
            Some(waiting) => waiting + said as u64,
            None => match self
                .agent
                .stores
                .conversations
                .uncaptured_user_messages(self.conversation.as_str())
                .await
            {
                Ok(waiting) => waiting,
                Err(error) => {
                    tracing::warn!(%error, "cannot count the messages memory capture has not read");
                    return;
                }
            },
        };
        tracing::debug!(waiting, "user messages since the last memory capture");
        if waiting >= every as u64 {
            self.capture(CaptureReason::Interval);
        } else {
            self.uncaptured = Some(waiting);
        }
    }

    /// Starts a pass over whatever no pass has read yet.
    pub(super) fn capture(&mut self, reason: CaptureReason) {
        self.uncaptured = Some(0);
        capture::spawn(&self.agent, &self.conversation, reason);
    }
}
