//! The prompt's view of memory: the bounded render of the store and the guidance branches get.

use super::*;
use crate::prompts::Prompts;

#[tokio::test]
async fn the_prompt_render_is_bounded_deterministic_and_counts() {
    let fixture = store().await;
    let store = &fixture.store;
    let prompts = Prompts::new().expect("prompts");
    assert_eq!(
        store.prompt_block(&prompts, &Audience::Everything).await,
        ""
    );
    for number in 0..7 {
        let mut fact = new(&format!("Fact number {number}"), MemoryType::Fact);
        fact.importance = Some(0.1 * f64::from(number));
        store.save_embedded(fact, None).await.expect("save");
    }
    save(store, "The user is Ana", MemoryType::Identity, None).await;
    let long = "word ".repeat(200);
    save(store, &long, MemoryType::Observation, None).await;

    let block = store.prompt_block(&prompts, &Audience::Everything).await;
    assert_eq!(
        block,
        store.prompt_block(&prompts, &Audience::Everything).await
    );
    assert!(block.contains("### Identity (1 of 1)"), "{block}");
    assert!(block.contains("### Facts (5 of 7)"), "{block}");
    assert!(block.contains("### Observations (1 of 1)"), "{block}");
    assert!(block.find("### Identity") < block.find("### Facts"));
    assert!(
        block.contains("- Fact number 6\n- Fact number 5"),
        "{block}"
    );
    assert!(!block.contains("Fact number 1\n"), "{block}");
    assert!(block.contains('…'));
    assert!(block.len() < crate::memory::render::MAXIMUM_TOTAL_CHARS + 1000);
    // The cache follows changes.
    let top = store
        .list(Some(MemoryType::Fact), ListOrder::Important, 1, 0)
        .await
        .expect("list")
        .0;
    store.forget(&top[0].id).await.expect("forget");
    let after = store.prompt_block(&prompts, &Audience::Everything).await;
    assert!(after.contains("### Facts (5 of 6)"), "{after}");
    assert!(!after.contains("Fact number 6"), "{after}");
}

#[test]
fn the_memory_guidance_for_branches_renders() {
    let prompts = Prompts::new().expect("prompts");
    let guidance = prompts
        .render("memory_guidance", minijinja::context! {})
        .expect("renders");
    assert!(guidance.contains("memory_save") && guidance.contains("memory_recall"));
}
