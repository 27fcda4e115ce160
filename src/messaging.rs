//! Messages between the platforms and the daemon, knowing no agent: each platform's adapter
//! (Discord, Telegram, Slack, and the portal for the HTTP API), the `Inbound` handle through
//! which they hand messages to whatever handles them (the router), and the outbox through
//! which answers go back out, split and retried.

mod adapter;
mod discord;
mod inbound;
mod manager;
mod outbound;
mod portal;
mod slack;
mod split;
mod telegram;

pub use adapter::{Adapter, AdapterError, AdapterState, AdapterStatus};
pub use inbound::{Inbound, InboundError, InboundHandler, Receipt};
pub use manager::{MessagingManager, configured_adapters};
pub use portal::{Portal, PortalReply, PortalWaiter};
pub use split::split_message;

#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error("cannot set up the {platform} adapter: {message}")]
    Setup {
        platform: &'static str,
        message: String,
    },
}
