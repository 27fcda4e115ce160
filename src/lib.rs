//! Spacebot: a self-hosted agent harness. One daemon runs agents whose channels, branches and
//! workers are concurrent tokio tasks sharing SQLite-backed state.

pub mod agent;
pub mod api;
pub mod client;
pub mod config;
pub mod conversation;
pub mod cron;
pub mod daemon;
pub mod database;
pub mod event;
pub mod llm;
pub mod memory;
pub mod messaging;
pub mod prompts;
pub mod sandbox;
pub mod tools;

/// Installs the process-wide rustls crypto provider (ring). Every TLS client in the tree
/// needs it; call it first thing in `main` and in tests that make HTTPS clients.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
