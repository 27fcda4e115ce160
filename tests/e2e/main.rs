//! End-to-end tests: the real daemon, in-process, against fake remote ends on 127.0.0.1.
//! One test binary for all of them, so the whole stack links once.

#[path = "../support/fake_llm.rs"]
mod fake_llm;
mod harness;

mod cli;
mod foundation;
mod memory;
mod openai_api;
mod restart;
