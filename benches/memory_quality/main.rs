//! Recall-quality benchmark: how often recall puts the memories that answer a question in its
//! top results. A seeded generator (`generator.rs`) writes long multi-session conversations,
//! one memory per message, with a few hundred questions whose answering memories are marked.
//! Each conversation is one agent's store, embedded with the real all-MiniLM-L6-v2; every
//! question is asked three ways (full text only, vectors only, hybrid recall), and the
//! benchmark prints Recall@5/10/25 and nDCG@10 per question kind.
//!
//! Embeddings are kept in Cargo's scratch directory (`target/tmp`) between runs, keyed by a
//! hash of the texts, so a rerun after a change to recall measures in seconds.
//!
//! `SPACEBOT_TEST_EMBEDDING_MODEL_DIR=$(scripts/fetch-model) cargo bench --bench
//! memory_quality`. Options after `--`: `--seed N`, `--conversations N`, `--dump` (print
//! the first conversation and its questions, no model needed). Under
//! `cargo test` it runs a small smoke pass instead.

mod generator;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use generator::{Conversation, Kind};
use spacebot::event::EventBus;
use spacebot::memory::embedder::LOCAL_MODEL_ID;
use spacebot::memory::index::{VectorIndex, from_blob, to_blob};
use spacebot::memory::{Embedder, MemoryStore, MemoryType, RecallQuery};

const DEPTH: usize = 25;
const CUTOFFS: [usize; 3] = [5, 10, 25];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Method {
    FullText,
    Vectors,
    Hybrid,
}

impl Method {
    const ALL: [Method; 3] = [Method::FullText, Method::Vectors, Method::Hybrid];

    fn label(self) -> &'static str {
        match self {
            Method::FullText => "full text only",
            Method::Vectors => "vectors only",
            Method::Hybrid => "hybrid",
        }
    }
}

/// Sums of per-question scores: Recall@5/10/25 and nDCG@10.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    questions: usize,
    recall: [f64; 3],
    ndcg: f64,
}

impl Totals {
    fn add(&mut self, ranked: &[String], evidence: &HashSet<String>) {
        self.questions += 1;
        for (slot, cutoff) in CUTOFFS.iter().enumerate() {
            let found = ranked
                .iter()
                .take(*cutoff)
                .filter(|id| evidence.contains(*id))
                .count();
            self.recall[slot] += found as f64 / evidence.len() as f64;
        }
        let gain: f64 = ranked
            .iter()
            .take(10)
            .enumerate()
            .filter(|(_, id)| evidence.contains(*id))
            .map(|(position, _)| 1.0 / (position as f64 + 2.0).log2())
            .sum();
        let ideal: f64 = (0..evidence.len().min(10))
            .map(|position| 1.0 / (position as f64 + 2.0).log2())
            .sum();
        self.ndcg += gain / ideal;
    }

    fn merge(&mut self, other: &Totals) {
        self.questions += other.questions;
        for slot in 0..3 {
            self.recall[slot] += other.recall[slot];
        }
        self.ndcg += other.ndcg;
    }

    fn cells(&self) -> String {
        let count = self.questions.max(1) as f64;
        let percent = |value: f64| format!("{:.1}", 100.0 * value / count);
        format!(
            "{} | {} | {} | {}",
            percent(self.recall[0]),
            percent(self.recall[1]),
            percent(self.recall[2]),
            percent(self.ndcg)
        )
    }
}

fn memory_id(index: usize) -> String {
    format!("m{index:05}")
}

async fn evaluate(
    conversation: &Conversation,
    embedder: &Arc<Embedder>,
    totals: &mut BTreeMap<(Kind, Method), Totals>,
) -> Result<(), Box<dyn std::error::Error>> {
    let directory = tempfile::tempdir()?;
    let pool = spacebot::database::open(&directory.path().join("quality.db")).await?;
    let texts: Vec<String> = conversation
        .messages
        .iter()
        .map(|message| message.content.clone())
        .collect();
    let vectors = embed_cached(embedder, texts).await?;
    let mut index = VectorIndex::new();
    let mut transaction = pool.begin().await?;
    for (number, (message, vector)) in conversation.messages.iter().zip(&vectors).enumerate() {
        let id = memory_id(number);
        index.upsert(&id, 0, vector)?;
        // Written directly, like an import: each message keeps the time it was said.
        sqlx::query(
            "INSERT INTO memories (id, content, memory_type, importance, created_at, updated_at,
                 last_accessed_at, access_count, source, channel_id, forgotten, embedding,
                 embedding_model)
             VALUES (?, ?, ?, ?, ?, ?, ?, 0, 'benchmark', NULL, 0, ?, ?)",
        )
        .bind(&id)
        .bind(&message.content)
        .bind(MemoryType::Event)
        .bind(MemoryType::Event.default_importance())
        .bind(message.at)
        .bind(message.at)
        .bind(message.at)
        .bind(to_blob(vector))
        .bind(LOCAL_MODEL_ID)
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await?;
    let store =
        MemoryStore::open("quality", pool.clone(), embedder.clone(), EventBus::new(16)).await?;

    let questions: Vec<String> = conversation
        .questions
        .iter()
        .map(|question| question.text.clone())
        .collect();
    let query_vectors = embed_cached(embedder, questions).await?;
    for (question, query_vector) in conversation.questions.iter().zip(query_vectors) {
        let evidence: HashSet<String> = question.evidence.iter().copied().map(memory_id).collect();
        let query = RecallQuery::new(&question.text, DEPTH);
        for method in Method::ALL {
            let ranked: Vec<String> = match method {
                Method::FullText => ids(store.recall_embedded(&query, None).await?),
                Method::Vectors => index
                    .search(&query_vector, DEPTH, None)
                    .into_iter()
                    .map(|hit| hit.id.to_string())
                    .collect(),
                Method::Hybrid => ids(store
                    .recall_embedded(&query, Some(query_vector.clone()))
                    .await?),
            };
            totals
                .entry((question.kind, method))
                .or_default()
                .add(&ranked, &evidence);
        }
    }
    drop(store);
    pool.close().await;
    Ok(())
}

/// Embeds `texts`, or reads their embeddings from the last run: a file in Cargo's scratch
/// directory for benchmarks, named by a hash of the texts (so a changed dataset is embedded
/// anew). Embedding thousands of memories takes most of a run; recall is what is measured.
async fn embed_cached(
    embedder: &Embedder,
    texts: Vec<String>,
) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error>> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in LOCAL_MODEL_ID.bytes().chain(
        texts
            .iter()
            .flat_map(|text| text.bytes().chain(std::iter::once(0))),
    ) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("memory_quality-{hash:016x}.f32"));
    if let Ok(bytes) = std::fs::read(&path)
        && let Some(vectors) = decode(&bytes, texts.len())
    {
        return Ok(vectors);
    }
    let vectors = embedder.embed(texts).await?;
    let dimensions = vectors.first().map_or(0, Vec::len);
    let mut bytes = Vec::with_capacity(8 + vectors.len() * dimensions * 4);
    bytes.extend_from_slice(&(vectors.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&(dimensions as u32).to_le_bytes());
    for vector in &vectors {
        bytes.extend_from_slice(&to_blob(vector));
    }
    std::fs::write(&path, bytes)?;
    Ok(vectors)
}

fn decode(bytes: &[u8], count: usize) -> Option<Vec<Vec<f32>>> {
    let stored = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let dimensions = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?) as usize;
    if stored != count || dimensions == 0 || bytes.len() != 8 + count * dimensions * 4 {
        return None;
    }
    bytes[8..]
        .chunks_exact(dimensions * 4)
        .map(from_blob)
        .collect()
}

fn ids(result: spacebot::memory::RecallResult) -> Vec<String> {
    result
        .memories
        .into_iter()
        .map(|recalled| recalled.memory.id)
        .collect()
}

fn print(totals: &BTreeMap<(Kind, Method), Totals>) {
    println!("| question kind | questions | method | Recall@5 | Recall@10 | Recall@25 | nDCG@10 |");
    println!("|---|---|---|---|---|---|---|");
    let mut all: BTreeMap<Method, Totals> = BTreeMap::new();
    for kind in Kind::ALL {
        for method in Method::ALL {
            let Some(row) = totals.get(&(kind, method)) else {
                continue;
            };
            all.entry(method).or_default().merge(row);
            println!(
                "| {} | {} | {} | {} |",
                kind.label(),
                row.questions,
                method.label(),
                row.cells()
            );
        }
    }
    for method in Method::ALL {
        if let Some(row) = all.get(&method) {
            println!(
                "| **all** | {} | {} | {} |",
                row.questions,
                method.label(),
                row.cells()
            );
        }
    }
}

fn option(name: &str) -> Option<u64> {
    let arguments: Vec<String> = std::env::args().collect();
    arguments
        .iter()
        .position(|argument| argument == name)
        .and_then(|position| arguments.get(position + 1))
        .and_then(|value| value.parse().ok())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this as a smoke test.
    let benchmarking = std::env::args().any(|argument| argument == "--bench");
    let seed = option("--seed").unwrap_or(2024);
    if std::env::args().any(|argument| argument == "--dump") {
        // The first conversation as the benchmark sees it, to read what it asks.
        for conversation in generator::generate(seed, 1, 24, 22) {
            for (number, message) in conversation.messages.iter().enumerate() {
                println!("{} {}", memory_id(number), message.content);
            }
            for question in &conversation.questions {
                let evidence: Vec<String> =
                    question.evidence.iter().copied().map(memory_id).collect();
                println!(
                    "Q [{}] {} -> {}",
                    question.kind.label(),
                    question.text,
                    evidence.join(", ")
                );
            }
        }
        return Ok(());
    }
    let Some(model) = std::env::var_os("SPACEBOT_TEST_EMBEDDING_MODEL_DIR") else {
        println!(
            "memory quality benchmark: skipped, SPACEBOT_TEST_EMBEDDING_MODEL_DIR is not set (scripts/test shows how to fetch the model)"
        );
        return Ok(());
    };
    let (count, sessions, turns) = if benchmarking {
        (option("--conversations").unwrap_or(10) as usize, 24, 22)
    } else {
        (1, 4, 6)
    };
    let conversations = generator::generate(seed, count, sessions, turns);
    let memories: usize = conversations
        .iter()
        .map(|conversation| conversation.messages.len())
        .sum();
    let questions: usize = conversations
        .iter()
        .map(|conversation| conversation.questions.len())
        .sum();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let embedder = Arc::new(Embedder::local(Path::new(&model)));
    let started = std::time::Instant::now();
    let mut totals = BTreeMap::new();
    runtime.block_on(async {
        for (number, conversation) in conversations.iter().enumerate() {
            eprintln!(
                "conversation {}/{}: {} memories, {} questions",
                number + 1,
                conversations.len(),
                conversation.messages.len(),
                conversation.questions.len()
            );
            evaluate(conversation, &embedder, &mut totals).await?;
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    println!(
        "memory quality benchmark: seed {seed}, {count} conversations, {memories} memories, {questions} questions, {:.0} s, {}",
        started.elapsed().as_secs_f64(),
        if benchmarking {
            "release"
        } else {
            "smoke run (cargo test)"
        }
    );
    println!();
    print(&totals);
    Ok(())
}
