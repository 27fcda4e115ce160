//! Messages between the platforms and the daemon, knowing no agent: each platform's adapter
//! (Discord, Telegram, Slack, and the portal for the HTTP API), the `Inbound` handle through
//! which they hand messages to whatever handles them (the router), and the outbox through
//! which answers go back out, split and retried, shown as they are written where the
//! platform can edit messages (`streaming`).

mod adapter;
mod discord;
mod files;
mod inbound;
mod manager;
mod outbound;
mod portal;
mod slack;
mod split;
mod streaming;
mod telegram;

pub use adapter::{Adapter, AdapterError, AdapterState, AdapterStatus};
pub use inbound::{Inbound, InboundError, InboundHandler, Receipt};
pub use manager::{MessagingManager, configured_adapters};
pub use portal::{Portal, PortalReply, PortalWaiter, Progress};
pub use split::split_message;

#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error("cannot set up the {platform} adapter: {message}")]
    Setup {
        platform: &'static str,
        message: String,
    },
}
