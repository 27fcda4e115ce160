//! Memory benchmark: fills a store with 10k and 100k memories (generated text, random unit
//! vectors), then prints recall latency p50/p99 with and without query embedding, save
//! latency, the index load time and the memory the vector index holds.
//!
//! `cargo bench --bench memory` (set SPACEBOT_TEST_EMBEDDING_MODEL_DIR, as scripts/test does,
//! to include the real model's query embedding). Under `cargo test` it runs a small smoke
//! pass instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use spacebot::event::EventBus;
use spacebot::memory::embedder::LOCAL_MODEL_ID;
use spacebot::memory::index::{VectorIndex, normalize, to_blob};
use spacebot::memory::{Embedder, MemoryStore, MemoryType, NewMemory, RecallQuery};

const DIMENSIONS: usize = 384;
const VOCABULARY: usize = 5000;
/// Memories per topic.
const TOPIC_SIZE: usize = 500;

/// xorshift64*: a small deterministic generator, so every run benchmarks the same data.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn vector(&mut self) -> Vec<f32> {
        let mut vector: Vec<f32> = (0..DIMENSIONS).map(|_| self.unit() as f32 - 0.5).collect();
        normalize(&mut vector);
        vector
    }
}

/// Embeddings in topics, like real memories: each vector is a topic centre plus noise, so
/// two of one topic have cosine ≈ 0.4 and a query about a topic finds many of them above the
/// recall floor (as real queries do), while no two are near-duplicates.
struct Topics {
    centres: Vec<Vec<f32>>,
}

impl Topics {
    fn new(random: &mut Random, memories: usize) -> Self {
        let count = (memories / TOPIC_SIZE).max(2);
        Self {
            centres: (0..count).map(|_| random.vector()).collect(),
        }
    }

    fn vector(&self, random: &mut Random) -> Vec<f32> {
        let centre = &self.centres[(random.next() % self.centres.len() as u64) as usize];
        let noise = random.vector();
        let mut vector: Vec<f32> = centre
            .iter()
            .zip(&noise)
            .map(|(centre, noise)| centre + 1.2 * noise)
            .collect();
        normalize(&mut vector);
        vector
    }
}

/// Pseudo-words with a Zipf (s = 1) frequency, like the content words of real notes.
struct Words {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Words {
    fn new(random: &mut Random) -> Self {
        let syllables = [
            "ka", "lo", "mi", "ren", "to", "sa", "vel", "quo", "dar", "ni", "pe", "stra", "ul",
            "zen", "bo", "fi", "gra", "hu", "jo", "wex",
        ];
        let words = (0..VOCABULARY)
            .map(|_| {
                let count = 2 + (random.next() % 3) as usize;
                (0..count)
                    .map(|_| syllables[(random.next() % syllables.len() as u64) as usize])
                    .collect::<String>()
            })
            .collect();
        let mut total = 0.0;
        let cumulative = (1..=VOCABULARY)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Self { words, cumulative }
    }

    fn pick(&self, random: &mut Random) -> &str {
        let total = self.cumulative[VOCABULARY - 1];
        let target = random.unit() * total;
        let rank = self.cumulative.partition_point(|value| *value < target);
        &self.words[rank.min(VOCABULARY - 1)]
    }

    fn sentence(&self, random: &mut Random, minimum: usize, maximum: usize) -> String {
        let fillers = ["the", "user", "is", "and", "with", "on", "for", "a"];
        let count = minimum + (random.next() % (maximum - minimum + 1) as u64) as usize;
        (0..count)
            .map(|position| {
                if position % 4 == 1 {
                    fillers[(random.next() % fillers.len() as u64) as usize].to_string()
                } else {
                    self.pick(random).to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// CPU time the whole process has used (all threads), from /proc/self/stat.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    // Clock ticks are 1/100 s on Linux.
    Some(Duration::from_millis((user + system) * 10))
}

fn percentile(samples: &mut [Duration], fraction: f64) -> Duration {
    samples.sort();
    let position = ((samples.len() as f64 - 1.0) * fraction).round() as usize;
    samples[position.min(samples.len() - 1)]
}

fn milliseconds(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}

struct Row {
    memories: usize,
    fill: Duration,
    load: Duration,
    index_bytes: usize,
    hybrid: (Duration, Duration),
    hybrid_cpu: Option<Duration>,
    scan: (Duration, Duration),
    full_text: (Duration, Duration),
    embedded: Option<(Duration, Duration)>,
    save: (Duration, Duration),
    embedded_save: Option<(Duration, Duration)>,
}

const TYPES: [MemoryType; 8] = MemoryType::ALL;

async fn fill(
    pool: &sqlx::SqlitePool,
    count: usize,
    words: &Words,
    topics: &Topics,
    random: &mut Random,
    scan_index: &mut VectorIndex,
) -> Result<(), Box<dyn std::error::Error>> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut transaction = pool.begin().await?;
    for number in 0..count {
        let content = words.sentence(random, 8, 20);
        let memory_type = TYPES[number % TYPES.len()];
        let vector = topics.vector(random);
        // The same vectors, in an index of their own, to time the scan alone.
        scan_index.upsert(&number.to_string(), 0, &vector)?;
        sqlx::query(
            "INSERT INTO memories (id, content, memory_type, importance, created_at, updated_at,
                 last_accessed_at, access_count, source, channel_id, forgotten, embedding,
                 embedding_model)
             VALUES (?, ?, ?, ?, ?, ?, ?, 0, 'bench', NULL, 0, ?, ?)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(content)
        .bind(memory_type)
        .bind(memory_type.default_importance())
        .bind(now)
        .bind(now)
        .bind(now)
        .bind(to_blob(&vector))
        .bind(LOCAL_MODEL_ID)
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await?;
    Ok(())
}

async fn measure(
    count: usize,
    queries: usize,
    model: Option<&std::path::Path>,
) -> Result<Row, Box<dyn std::error::Error>> {
    let directory = tempfile::tempdir()?;
    let pool = spacebot::database::open(&directory.path().join("bench.db")).await?;
    let mut random = Random(0x5EED_1234_ABCD_0001 ^ count as u64);
    let words = Words::new(&mut random);
    let topics = Topics::new(&mut random, count);

    let started = Instant::now();
    let mut scan_index = VectorIndex::new();
    fill(&pool, count, &words, &topics, &mut random, &mut scan_index).await?;
    let fill_time = started.elapsed();

    let embedder = Arc::new(match model {
        Some(directory) => Embedder::local(directory),
        // Named but never called: recall gets precomputed query vectors.
        None => Embedder::local(directory.path().join("no-model")),
    });
    let started = Instant::now();
    let store = MemoryStore::open("bench", pool.clone(), embedder, EventBus::new(16)).await?;
    let load = started.elapsed();
    assert_eq!(store.indexed(), count, "every vector is indexed");

    let query_texts: Vec<String> = (0..queries)
        .map(|_| format!("what about {}", words.sentence(&mut random, 2, 4)))
        .collect();
    let query_vectors: Vec<Vec<f32>> = (0..queries).map(|_| topics.vector(&mut random)).collect();
    // Warm up caches (SQLite pages, the scan) before timing.
    for (text, vector) in query_texts.iter().zip(&query_vectors).take(5) {
        store
            .recall_embedded(&RecallQuery::new(text, 10), Some(vector.clone()))
            .await?;
    }
    let mut hybrid = Vec::with_capacity(queries);
    let cpu_before = cpu_time();
    for (text, vector) in query_texts.iter().zip(&query_vectors) {
        let started = Instant::now();
        let result = store
            .recall_embedded(&RecallQuery::new(text, 10), Some(vector.clone()))
            .await?;
        hybrid.push(started.elapsed());
        assert!(!result.memories.is_empty());
    }
    let hybrid_cpu = cpu_before
        .zip(cpu_time())
        .map(|(before, after)| after.saturating_sub(before) / queries as u32);
    let mut scans = Vec::with_capacity(queries);
    for vector in &query_vectors {
        let started = Instant::now();
        std::hint::black_box(scan_index.search(vector, 50, None));
        scans.push(started.elapsed());
    }
    drop(scan_index);
    let mut full_text = Vec::with_capacity(queries);
    for text in &query_texts {
        let started = Instant::now();
        store
            .recall_embedded(&RecallQuery::new(text, 10), None)
            .await?;
        full_text.push(started.elapsed());
    }
    let embedded = match model {
        Some(_) => {
            let mut samples = Vec::new();
            store
                .recall(&RecallQuery::new("warm up the model", 10))
                .await?;
            for text in query_texts.iter().take(queries.min(50)) {
                let started = Instant::now();
                store.recall(&RecallQuery::new(text, 10)).await?;
                samples.push(started.elapsed());
            }
            Some((
                percentile(&mut samples, 0.5),
                percentile(&mut samples, 0.99),
            ))
        }
        None => None,
    };
    let mut saves = Vec::new();
    for number in 0..queries {
        let memory = NewMemory::new(
            words.sentence(&mut random, 8, 20),
            TYPES[number % TYPES.len()],
            "bench",
        );
        let vector = topics.vector(&mut random);
        let started = Instant::now();
        store.save_embedded(memory, Some(vector)).await?;
        saves.push(started.elapsed());
    }
    let embedded_save = match model {
        Some(_) => {
            let mut samples = Vec::new();
            for number in 0..queries.min(50) {
                let memory = NewMemory::new(
                    words.sentence(&mut random, 8, 20),
                    TYPES[number % TYPES.len()],
                    "bench",
                );
                let started = Instant::now();
                store.save(memory).await?;
                samples.push(started.elapsed());
            }
            Some((
                percentile(&mut samples, 0.5),
                percentile(&mut samples, 0.99),
            ))
        }
        None => None,
    };
    let row = Row {
        memories: count,
        fill: fill_time,
        load,
        index_bytes: store.index_bytes(),
        hybrid: (percentile(&mut hybrid, 0.5), percentile(&mut hybrid, 0.99)),
        hybrid_cpu,
        scan: (percentile(&mut scans, 0.5), percentile(&mut scans, 0.99)),
        full_text: (
            percentile(&mut full_text, 0.5),
            percentile(&mut full_text, 0.99),
        ),
        embedded,
        save: (percentile(&mut saves, 0.5), percentile(&mut saves, 0.99)),
        embedded_save,
    };
    pool.close().await;
    Ok(row)
}

fn print(rows: &[Row], model: bool) {
    let pair =
        |(p50, p99): (Duration, Duration)| format!("{} / {}", milliseconds(p50), milliseconds(p99));
    let optional = |value: Option<(Duration, Duration)>| match value {
        Some(value) => pair(value),
        None => "skipped: no model".to_string(),
    };
    println!();
    println!(
        "| memories | hybrid recall p50 / p99 ms (no embedding) | CPU ms per hybrid recall | vector scan alone p50 / p99 ms | full-text-only recall p50 / p99 ms | recall with query embedding p50 / p99 ms | save p50 / p99 ms (no embedding) | save with embedding p50 / p99 ms | vector index MiB | index load ms | fill s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {:.1} |",
            row.memories,
            pair(row.hybrid),
            row.hybrid_cpu.map_or("?".to_string(), milliseconds),
            pair(row.scan),
            pair(row.full_text),
            optional(row.embedded),
            pair(row.save),
            optional(row.embedded_save),
            row.index_bytes as f64 / 1_048_576.0,
            milliseconds(row.load),
            row.fill.as_secs_f64(),
        );
    }
    if !model {
        println!(
            "\n(no SPACEBOT_TEST_EMBEDDING_MODEL_DIR: query embedding not measured; scripts/test shows how to fetch the model)"
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this as a smoke test.
    let benchmarking = std::env::args().any(|argument| argument == "--bench");
    let model = std::env::var_os("SPACEBOT_TEST_EMBEDDING_MODEL_DIR").map(std::path::PathBuf::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sizes: &[(usize, usize)] = if benchmarking {
        &[(10_000, 300), (100_000, 300)]
    } else {
        &[(300, 10)]
    };
    let rows = runtime.block_on(async {
        let mut rows = Vec::new();
        for &(count, queries) in sizes {
            eprintln!("filling a store with {count} memories...");
            rows.push(measure(count, queries, model.as_deref()).await?);
        }
        Ok::<_, Box<dyn std::error::Error>>(rows)
    })?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "memory benchmark: {} cores, load average {}, {}",
        std::thread::available_parallelism().map_or(0, |threads| threads.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        if benchmarking {
            "release"
        } else {
            "smoke run (cargo test)"
        }
    );
    print(&rows, model.is_some());
    Ok(())
}
