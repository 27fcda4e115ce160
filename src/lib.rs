//! Spacebot: a self-hosted agent harness. One daemon runs agents whose channels, branches and
//! workers are concurrent tokio tasks sharing SQLite-backed state. The layers, from the bottom,
//! and what each may import are in ARCHITECTURE.md.

// Leaves: import nothing of the crate but other leaves.
pub mod conversation_id;
pub mod database;
pub mod event;
pub mod filesystem;
pub mod message;
pub mod metrics;
pub mod schedule;
pub mod supervision;
// Configuration: imports only leaves.
pub mod config;
// Services.
pub mod access;
pub mod conversation;
pub mod llm;
pub mod mcp;
pub mod media;
pub mod memory;
pub mod prompts;
pub mod sandbox;
pub mod skills;
pub mod tools;
pub mod web;
// The agent.
pub mod agent;
// Edges: scheduled jobs, routing, the platforms.
pub mod cron;
pub mod messaging;
pub mod router;
// The composition root, and what talks to it.
pub mod api;
pub mod client;
pub mod daemon;
pub mod onboarding;

/// Installs the process-wide rustls crypto provider (ring). Every TLS client in the tree
/// needs it; call it first thing in `main` and in tests that make HTTPS clients.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
