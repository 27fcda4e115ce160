//! End-to-end tests: the real daemon, in-process, against fake remote ends on 127.0.0.1.
//! One test binary for all of them, so the whole stack links once.

mod browser;
mod daemon_process;
#[path = "../support/fake_discord.rs"]
mod fake_discord;
#[path = "../support/fake_llm.rs"]
mod fake_llm;
#[path = "../support/fake_slack.rs"]
mod fake_slack;
#[path = "../support/fake_telegram.rs"]
mod fake_telegram;
mod harness;
#[path = "../support/real_llm.rs"]
mod real_llm;

mod agent_messages;
mod cli;
mod cortex;
mod cron;
mod dashboard;
mod dashboard_browser;
mod delegation;
mod discord;
mod foundation;
mod mcp;
mod media;
mod media_platforms;
mod media_slack;
mod memory;
mod metrics;
mod onboarding;
mod openai_api;
mod packaging;
mod providers;
mod real_model;
mod reliability;
mod reload;
mod restart;
mod security;
mod skills;
mod slack;
mod streaming;
mod telegram;
mod tools;
mod usage;
mod weak_models;
mod web;
