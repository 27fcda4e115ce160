//! Provider response shapes from the providers' documentation, replayed by the fake LLM and
//! read by the real rig-core clients (OpenAI chat completions and Anthropic messages, both
//! streamed): parallel tool calls, output cut at the limit, refusals, reasoning and thinking,
//! tool use without input, overload and rate limits with their headers, and context
//! overflow, which compacts and tries once more.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{TestDaemon, anthropic_config_for, config_for, replies};

fn reply(content: &str) -> Scripted {
    Scripted::tool_call("reply", json!({"content": content}))
}

async fn start(llm: &FakeLlm, anthropic: bool) -> (TestDaemon, tempfile::TempDir) {
    let home = tempfile::tempdir().expect("tempdir");
    let config = if anthropic {
        anthropic_config_for(llm)
    } else {
        config_for(llm)
    };
    (TestDaemon::start(home.path(), &config).await, home)
}

async fn parallel_tool_calls_all_run(anthropic: bool) {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::ToolCalls(vec![
        ("cancel".into(), json!({"process_id": "nothing-runs"})),
        ("reply".into(), json!({"content": "both ran"})),
    ]));
    llm.push(reply("next"));
    let (daemon, _home) = start(&llm, anthropic).await;
    assert_eq!(
        daemon.send("parallel", "do two things").await["reply"],
        "both ran"
    );
    assert_eq!(daemon.send("parallel", "and now?").await["reply"], "next");
    let results = FakeLlm::tool_results(&llm.requests()[1]);
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[0].starts_with("error:"), "{results:?}");
    assert_eq!(results[1], "delivered");
    daemon.shutdown().await;
}

#[tokio::test]
async fn parallel_openai_tool_calls_all_run() {
    parallel_tool_calls_all_run(false).await;
}

#[tokio::test]
async fn parallel_anthropic_tool_uses_all_run() {
    parallel_tool_calls_all_run(true).await;
}

async fn an_answer_cut_at_the_output_limit_says_so(anthropic: bool) {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::Length("The three reasons are: first".into()));
    let (daemon, _home) = start(&llm, anthropic).await;
    let answer = daemon.send("cut", "why?").await;
    let text = answer["reply"].as_str().expect("reply");
    assert!(text.starts_with("The three reasons are: first"), "{text}");
    assert!(text.contains("cut off"), "{text}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn an_openai_answer_with_finish_reason_length_says_it_was_cut() {
    an_answer_cut_at_the_output_limit_says_so(false).await;
}

#[tokio::test]
async fn an_anthropic_answer_stopped_at_max_tokens_says_it_was_cut() {
    an_answer_cut_at_the_output_limit_says_so(true).await;
}

#[tokio::test]
async fn an_openai_refusal_is_the_reply() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::Refusal("I can't help with that.".into()));
    let (daemon, _home) = start(&llm, false).await;
    assert_eq!(
        daemon.send("refuse", "do something bad").await["reply"],
        "I can't help with that."
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn an_anthropic_refusal_without_text_says_the_model_declined() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::Refusal("ignored by the anthropic shape".into()));
    let (daemon, _home) = start(&llm, true).await;
    let answer = daemon.send("refuse", "do something bad").await;
    assert_eq!(
        answer["reply"],
        "The model declined to answer this request."
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn reasoning_content_is_never_shown_nor_sent_back() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::text("The visible answer.").after_reasoning("my secret chain of thought"));
    llm.push(reply("second"));
    let (daemon, _home) = start(&llm, false).await;
    assert_eq!(
        daemon.send("think", "question").await["reply"],
        "The visible answer."
    );
    daemon.send("think", "another").await;
    let later = llm.requests()[1].to_string();
    assert!(
        !later.contains("secret chain"),
        "DeepSeek refuses reasoning sent back: {later}"
    );
    let transcript = daemon.messages("think").await;
    assert!(
        replies(&transcript)
            .iter()
            .all(|reply| !reply.contains("secret")),
        "{transcript:?}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn anthropic_thinking_is_sent_back_within_the_tool_loop_and_never_shown() {
    let llm = FakeLlm::start().await;
    llm.push(
        Scripted::tool_call("cancel", json!({"process_id": "none"})).after_reasoning("weighing it"),
    );
    llm.push(reply("thought it through"));
    let (daemon, _home) = start(&llm, true).await;
    assert_eq!(
        daemon.send("thinking", "hard question").await["reply"],
        "thought it through"
    );
    let second = &llm.requests()[1];
    let thinking: Vec<&Value> = second["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|message| message["role"] == "assistant")
        .flat_map(|message| message["content"].as_array().into_iter().flatten())
        .filter(|part| part["type"] == "thinking")
        .collect();
    assert_eq!(thinking.len(), 1, "{second}");
    assert_eq!(thinking[0]["signature"], "sig-fake");
    assert_eq!(thinking[0]["thinking"], "weighing it");
    let transcript = daemon.messages("thinking").await;
    assert!(
        replies(&transcript)
            .iter()
            .all(|reply| !reply.contains("weighing"))
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn an_anthropic_tool_use_with_empty_input_runs() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::tool_call("skip", json!({})));
    let (daemon, _home) = start(&llm, true).await;
    let answer = daemon.send("empty", "nothing to say").await;
    assert_eq!(answer["reply"], Value::Null, "skipped: {answer}");
    assert_eq!(llm.request_count(), 1);
    daemon.shutdown().await;
}

#[tokio::test]
async fn an_anthropic_overload_and_a_rate_limit_are_retried_after_their_wait() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::StatusWithHeaders(
        529,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        vec![("retry-after".into(), "0".into())],
    ));
    llm.push(Scripted::StatusWithHeaders(
        429,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
        vec![
            ("retry-after".into(), "0".into()),
            ("anthropic-ratelimit-requests-remaining".into(), "0".into()),
        ],
    ));
    llm.push(reply("got through"));
    let (daemon, _home) = start(&llm, true).await;
    assert_eq!(daemon.send("busy", "hello").await["reply"], "got through");
    assert_eq!(llm.request_count(), 3);
    daemon.shutdown().await;
}

#[tokio::test]
async fn an_anthropic_overload_inside_the_stream_is_retried() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::StreamError(
        "overloaded_error".into(),
        "Overloaded".into(),
    ));
    llm.push(reply("second try"));
    let (daemon, _home) = start(&llm, true).await;
    assert_eq!(
        daemon.send("midstream", "hello").await["reply"],
        "second try"
    );
    daemon.shutdown().await;
}

async fn context_overflow_compacts_and_retries_once(anthropic: bool, error: Scripted) {
    let llm = FakeLlm::start().await;
    llm.push(reply("first answer"));
    llm.push(error);
    llm.push(reply("fits again"));
    let (daemon, _home) = start(&llm, anthropic).await;
    daemon
        .send("overflow", "an early message worth dropping")
        .await;
    assert_eq!(
        daemon.send("overflow", "the newest message").await["reply"],
        "fits again"
    );
    let requests = llm.requests();
    assert_eq!(requests.len(), 3);
    assert!(
        requests[1]
            .to_string()
            .contains("an early message worth dropping")
    );
    let retried = requests[2].to_string();
    assert!(
        !retried.contains("an early message worth dropping"),
        "{retried}"
    );
    assert!(retried.contains("the newest message"));
    daemon.shutdown().await;
}

#[tokio::test]
async fn openai_context_length_exceeded_compacts_and_retries_once() {
    let error = Scripted::Status(
        400,
        json!({"error": {"message": "This model's maximum context length is 128000 tokens.",
            "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}),
    );
    context_overflow_compacts_and_retries_once(false, error).await;
}

#[tokio::test]
async fn anthropic_prompt_too_long_compacts_and_retries_once() {
    let error = Scripted::Status(
        400,
        json!({"type": "error", "error": {"type": "invalid_request_error",
            "message": "prompt is too long: 208310 tokens > 200000 maximum"}}),
    );
    context_overflow_compacts_and_retries_once(true, error).await;
}

#[tokio::test]
async fn anthropic_requests_mark_the_system_prompt_and_tools_for_caching() {
    let llm = FakeLlm::start().await;
    llm.push(reply("cached"));
    let (daemon, _home) = start(&llm, true).await;
    daemon.send("cache", "hello").await;
    let request = &llm.requests()[0];
    let system = request["system"].as_array().expect("system blocks");
    assert_eq!(
        system.last().expect("a block")["cache_control"]["type"],
        "ephemeral"
    );
    let tools = request["tools"].as_array().expect("tools");
    assert_eq!(
        tools.last().expect("a tool")["cache_control"]["type"],
        "ephemeral"
    );
    assert!(
        tools[..tools.len() - 1]
            .iter()
            .all(|tool| tool.get("cache_control").is_none())
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn per_model_settings_reach_the_request() {
    let llm = FakeLlm::start().await;
    llm.push(reply("tuned"));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm)
        + "\n[llm.models.\"fake/fake-model\"]\nmax_output_tokens = 77\ntemperature = 0.25\nreasoning_effort = \"low\"\n";
    let daemon = TestDaemon::start(home.path(), &config).await;
    daemon.send("settings", "hello").await;
    let request = &llm.requests()[0];
    assert_eq!(request["max_tokens"], 77);
    assert_eq!(request["temperature"], 0.25);
    assert_eq!(request["reasoning_effort"], "low");
    assert_eq!(request["stream"], true);
    // OpenAI sends the usage of a streamed answer only when asked.
    assert_eq!(request["stream_options"]["include_usage"], true);
    daemon.shutdown().await;
}

/// The compactor keeps the context inside the channel model's own window
/// (`[llm.models.*] context_window`), not only the daemon-wide default.
#[tokio::test]
async fn the_models_own_window_decides_when_the_compactor_acts() {
    let llm = FakeLlm::start().await;
    llm.set_fallback(|request| {
        if FakeLlm::system_text(request).contains("Summarise the earlier part") {
            return Scripted::text("SUMMARY: a long talk about gardens.");
        }
        reply("Noted.")
    });
    let home = tempfile::tempdir().expect("tempdir");
    // The default window (128000 tokens) would never fill in this test.
    let config = config_for(&llm) + "\n[llm.models.\"fake/fake-model\"]\ncontext_window = 6000\n";
    let daemon = TestDaemon::start(home.path(), &config).await;
    let long = "The garden has tomatoes, beans, squash and a very old apple tree. ".repeat(6);
    let mut turns = 0;
    while !llm
        .requests()
        .iter()
        .any(|request| FakeLlm::system_text(request).contains("Summarise the earlier part"))
    {
        turns += 1;
        assert!(turns < 40, "the compactor never acted");
        daemon.send("window", &format!("{turns}: {long}")).await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    daemon.shutdown().await;
}

/// The README's lines for Ollama, llama.cpp, vLLM and OpenRouter, run as written but for the
/// server's address: each reaches the fake at its own path with the model id after `openai/`
/// (slashes and all) and gets an answer.
#[tokio::test]
async fn the_readmes_local_and_hosted_server_lines_work_as_written() {
    let readme = include_str!("../../README.md");
    let start = readme.find("# Ollama (").expect("README: the Ollama line");
    let block = &readme[start..start + readme[start..].find("```").expect("end of block")];
    let mut commands: Vec<(String, HashMap<String, String>)> = Vec::new();
    for line in block.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("# ") {
            commands.push((name.to_string(), HashMap::new()));
            continue;
        }
        let (_, variables) = commands.last_mut().expect("a named command first");
        for word in line.split_whitespace() {
            if let Some((name, value)) = word.split_once('=')
                && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            {
                variables.insert(name.to_string(), value.to_string());
            }
        }
    }
    let names: Vec<&str> = commands.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(commands.len(), 4, "{names:?}");
    for (name, mut variables) in commands {
        let llm = FakeLlm::start().await;
        llm.push(reply(&format!("hello from {name}")));
        let written = variables["OPENAI_BASE_URL"].clone();
        let path = url::Url::parse(&written).expect("a URL").path().to_string();
        let local = format!("{}{path}", llm.openai_base_url().trim_end_matches("/v1"));
        variables.insert("OPENAI_BASE_URL".to_string(), local);
        let model = variables["SPACEBOT_MODEL"].clone();
        let home = tempfile::tempdir().expect("tempdir");
        let daemon = TestDaemon::start_with_environment(
            home.path(),
            "[[agents]]\nid = \"main\"\n",
            variables,
        )
        .await;
        let answer = daemon.send("readme", "hello").await;
        assert_eq!(answer["reply"], format!("hello from {name}"), "{name}");
        assert_eq!(
            llm.requests()[0]["model"],
            model.strip_prefix("openai/").expect("openai/ model"),
            "{name}"
        );
        daemon.shutdown().await;
    }
}
