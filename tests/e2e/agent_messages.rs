//! Agents that talk to each other: a linked agent's question lands in the other's
//! `agent:{from}` conversation, its answer re-triggers the asker, both transcripts show the
//! exchange, and a message sent back while answering is refused past `max_depth`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{TestDaemon, config_for, replies, reply, requests_with};

const QUESTION: &str = "What is the capital of France?";

fn linked_config(llm: &FakeLlm) -> String {
    config_for(llm).replace(
        "[[agents]]\nid = \"main\"\ndefault = true\n",
        "[[agents]]\nid = \"main\"\ndefault = true\nlinks = [\"research\"]\n\n\
         [[agents]]\nid = \"research\"\nlinks = [\"main\"]\n\n\
         [agent_messages]\nmax_depth = 1\n",
    )
}

#[tokio::test]
async fn two_linked_agents_exchange_one_question_and_answer_with_no_loop() {
    let llm = FakeLlm::start().await;
    llm.push_when(
        "ask research",
        Scripted::ToolCalls(vec![
            (
                "send_agent_message".into(),
                json!({"to": "research", "message": QUESTION}),
            ),
            ("reply".into(), json!({"content": "I asked research."})),
        ]),
    );
    // Research tries to ask back while answering: one level deeper than allowed.
    llm.push_when(
        QUESTION,
        Scripted::ToolCalls(vec![
            (
                "send_agent_message".into(),
                json!({"to": "main", "message": "Why do you want to know?"}),
            ),
            ("reply".into(), json!({"content": "Paris."})),
        ]),
    );
    llm.push_when("answered your message", reply("Research says: Paris."));
    llm.set_fallback(|_| reply("Noted."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &linked_config(&llm)).await;

    daemon.send("geo", "please ask research about France").await;
    let transcript = daemon
        .wait_for_messages("geo", |messages| replies(messages).len() == 2)
        .await;
    assert_eq!(
        replies(&transcript),
        vec!["I asked research.", "Research says: Paris."]
    );
    let relayed: Vec<&Value> = transcript
        .iter()
        .filter(|message| message["sender"] == "research (agent)")
        .collect();
    assert_eq!(relayed.len(), 1, "{transcript:#?}");
    assert!(
        relayed[0]["content"]
            .as_str()
            .is_some_and(|content| content.contains(QUESTION) && content.contains("Paris.")),
        "{relayed:?}"
    );

    let theirs = daemon.transcript("research", "agent:main").await;
    let lines: Vec<(String, String)> = theirs
        .iter()
        .map(|message| {
            (
                message["role"].as_str().unwrap_or_default().to_string(),
                message["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            ("user".to_string(), QUESTION.to_string()),
            ("assistant".to_string(), "Paris.".to_string())
        ]
    );
    assert_eq!(theirs[0]["sender"], "main");

    // Nothing more happens: the message back was refused, no turn runs again.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        daemon.transcript("main", "agent:research").await.is_empty(),
        "research's message back was delivered"
    );
    let requests = llm.requests();
    assert_eq!(requests.len(), 3, "main, research, main again: no loop");
    let first = &requests_with(&llm, "ask research")[0];
    assert!(FakeLlm::tool_names(first).contains(&"send_agent_message".to_string()));
    daemon.shutdown().await;
}

#[tokio::test]
async fn messages_beyond_the_rate_are_refused_and_the_model_is_told() {
    let llm = FakeLlm::start().await;
    llm.push_when(
        "ask twice",
        Scripted::ToolCalls(vec![
            (
                "send_agent_message".into(),
                json!({"to": "research", "message": "First question?"}),
            ),
            (
                "send_agent_message".into(),
                json!({"to": "research", "message": "Second question?"}),
            ),
            ("reply".into(), json!({"content": "Asked."})),
        ]),
    );
    llm.push_when("First question?", reply("First answer."));
    llm.push_when("answered your message", reply("Research answered."));
    llm.set_fallback(|_| reply("Noted."));
    let config = linked_config(&llm).replace("max_depth = 1\n", "max_depth = 1\nper_minute = 1\n");
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config).await;

    daemon.send("rate", "ask twice").await;
    daemon
        .wait_for_messages("rate", |messages| replies(messages).len() == 2)
        .await;
    let retrigger = &requests_with(&llm, "answered your message")[0];
    let results = FakeLlm::tool_results(retrigger);
    assert!(
        results
            .iter()
            .any(|result| result.starts_with("sent to `research`")),
        "{results:?}"
    );
    assert!(
        results.iter().any(|result| result.starts_with("error:")
            && result.contains("1 messages in the last minute")),
        "{results:?}"
    );
    let theirs = daemon.transcript("research", "agent:main").await;
    let questions: Vec<&str> = theirs
        .iter()
        .filter(|message| message["role"] == "user")
        .filter_map(|message| message["content"].as_str())
        .collect();
    assert_eq!(questions, vec!["First question?"]);
    daemon.shutdown().await;
}
