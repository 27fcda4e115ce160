//! The portal: conversations held through the daemon's own HTTP API and web chat. Callers that
//! wait for an answer register a waiter keyed by the inbound message id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{OutboundContent, OutboundResponse};

/// The answer to one portal message: text, or `None` when the agent skipped.
#[derive(Debug, Clone)]
pub struct PortalReply {
    pub content: Option<String>,
}

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<PortalReply>>>>;

#[derive(Default)]
pub struct Portal {
    waiters: Waiters,
}

impl Portal {
    /// Registers interest in the answer to `message_id`. Register before routing the message,
    /// so a fast answer cannot be missed.
    pub fn wait_for(&self, message_id: &str) -> PortalWaiter {
        let (sender, receiver) = oneshot::channel();
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.insert(message_id.to_string(), sender);
        }
        PortalWaiter {
            receiver,
            message_id: message_id.to_string(),
            waiters: self.waiters.clone(),
        }
    }

    /// Releases every waiter without an answer (at shutdown).
    pub fn close(&self) {
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.clear();
        }
    }

    /// Hands the answer to the callers waiting for the messages it answers.
    pub(super) fn release(&self, response: &OutboundResponse) {
        let reply = PortalReply {
            content: match &response.content {
                OutboundContent::Text(text) => Some(text.clone()),
                OutboundContent::Skip => None,
            },
        };
        let Ok(mut waiters) = self.waiters.lock() else {
            return;
        };
        for id in &response.in_reply_to {
            if let Some(waiter) = waiters.remove(id) {
                // The caller may have gone away; its answer is still stored.
                let _ = waiter.send(reply.clone());
            }
        }
    }
}

/// A pending answer. Dropping it unregisters the waiter.
pub struct PortalWaiter {
    receiver: oneshot::Receiver<PortalReply>,
    message_id: String,
    waiters: Waiters,
}

impl PortalWaiter {
    /// Waits for the answer; `None` if the daemon dropped the turn (it is shutting down).
    pub async fn reply(&mut self) -> Option<PortalReply> {
        (&mut self.receiver).await.ok()
    }
}

impl Drop for PortalWaiter {
    fn drop(&mut self) {
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.remove(&self.message_id);
        }
    }
}
