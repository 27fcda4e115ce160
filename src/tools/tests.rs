//! Unit tests of the registry: definitions, dispatch and argument errors.

use serde_json::json;

use super::*;

fn channel_tools() -> ToolSet<ChannelEffect> {
    let prompts = Prompts::new().expect("prompts");
    ToolSet::new(
        &prompts,
        vec![
            Box::new(reply::Reply),
            Box::new(skip::Skip),
            Box::new(branch::Branch),
            Box::new(spawn_worker::SpawnWorker),
        ],
    )
    .expect("tool set")
}

#[tokio::test]
async fn unknown_tools_and_bad_arguments_are_readable_errors() {
    let tools = channel_tools();
    let conversation = ConversationId::portal("test").expect("id");
    let process_id = ProcessId::Channel(conversation.to_string());
    let call = ToolCall {
        agent_id: "main",
        conversation: &conversation,
        process_id: &process_id,
        standing: Standing::OWNER,
    };
    let unknown = tools.call(&call, "launch_rockets", json!({})).await;
    assert!(unknown.is_error);
    assert!(
        unknown.content.contains("reply, skip, branch"),
        "{}",
        unknown.content
    );
    let bad = tools.call(&call, "reply", json!({"text": 3})).await;
    assert!(bad.is_error);
    assert!(bad.content.contains("content"), "{}", bad.content);
    let encoded = tools
        .call(&call, "reply", json!("{\"content\": \"hi\"}"))
        .await;
    assert_eq!(
        encoded.effect,
        Some(ChannelEffect::Reply {
            content: "hi".into()
        })
    );
    let worker = tools
        .call(&call, "spawn_worker", json!({"task": " count files "}))
        .await;
    assert_eq!(
        worker.effect,
        Some(ChannelEffect::SpawnWorker(WorkerRequest {
            task: "count files".into(),
            interactive: false,
        }))
    );
}

#[test]
fn every_definition_has_its_rendered_description() {
    let tools = channel_tools();
    for definition in tools.definitions(Authority::Owner).iter() {
        assert!(!definition.description.is_empty(), "{}", definition.name);
        assert!(
            !definition.description.contains("{{"),
            "{}",
            definition.name
        );
        check_parameters(&definition.parameters).expect(&definition.name);
    }
}

#[test]
fn a_tool_registered_twice_is_refused() {
    let prompts = Prompts::new().expect("prompts");
    let twice: Result<ToolSet<ChannelEffect>, _> =
        ToolSet::new(&prompts, vec![Box::new(skip::Skip), Box::new(skip::Skip)]);
    assert!(matches!(twice, Err(ToolSetError::Duplicate("skip"))));
}

#[tokio::test]
async fn tools_that_act_are_neither_offered_nor_run_for_a_turn_that_may_not_act() {
    let tools = channel_tools();
    let names = |authority| {
        tools
            .definitions(authority)
            .iter()
            .map(|definition| definition.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(Authority::Owner),
        vec!["reply", "skip", "branch", "spawn_worker"]
    );
    assert_eq!(names(Authority::Member), vec!["reply", "skip", "branch"]);
    assert_eq!(names(Authority::Guest), vec!["reply", "skip", "branch"]);
    let conversation = ConversationId::telegram(-100);
    let process_id = ProcessId::Channel(conversation.to_string());
    let member = ToolCall {
        agent_id: "main",
        conversation: &conversation,
        process_id: &process_id,
        standing: Standing {
            authority: Authority::Member,
            private: false,
        },
    };
    // Called anyway (a model that ignores the list): refused, with no effect.
    let refused = tools
        .call(
            &member,
            "spawn_worker",
            json!({"task": "cat ../../config.toml"}),
        )
        .await;
    assert!(refused.is_error && refused.effect.is_none(), "{refused:?}");
    assert!(
        refused.content.contains("only the owner"),
        "{}",
        refused.content
    );
    let chat = tools.call(&member, "reply", json!({"content": "hi"})).await;
    assert!(chat.effect.is_some());
}
