//! The harness benchmark: the real `spacebot serve` process against the scripted LLM at a fixed
//! latency, driven by many concurrent conversations through the HTTP API (or a fake Telegram).
//! Prints throughput, harness overhead, memory and CPU figures, and fails if any message is lost
//! or answered twice.
//!
//! `cargo bench --bench harness -- [--conversations 1000] [--messages 10] [--latency-ms 200]
//!  [--idle-channels 2000] [--concurrency 1000] [--channel-idle-secs 600] [--mode api|telegram]`
//!
//! `--channel-idle-secs 2` lets finished conversations' channels stop during the run, so the
//! RSS after 10,000 turns holds only live conversations: the leak check.
//!
//! `SPACEBOT_BENCH_BINARY=path` benchmarks another build of the daemon, for example one with
//! symbols to profile with `perf record -p`.

#[path = "../tests/support/fake_llm.rs"]
mod fake_llm;
#[path = "../tests/support/fake_telegram.rs"]
mod fake_telegram;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fake_llm::{FakeLlm, Scripted};
use serde_json::{Value, json};

struct Options {
    conversations: usize,
    messages: usize,
    latency_ms: u64,
    idle_channels: usize,
    /// Conversations in flight at once; the rest wait for a slot.
    concurrency: usize,
    /// The daemon's `channel_idle_secs`.
    channel_idle_secs: usize,
    telegram: bool,
}

impl Options {
    fn parse() -> Self {
        let mut options = Options {
            conversations: 1000,
            messages: 10,
            latency_ms: 200,
            idle_channels: 2000,
            concurrency: 1000,
            channel_idle_secs: 600,
            telegram: false,
        };
        let arguments: Vec<String> = std::env::args().skip(1).collect();
        let mut index = 0;
        while index < arguments.len() {
            let value = arguments.get(index + 1).cloned().unwrap_or_default();
            let number = || value.parse::<usize>().expect("a number");
            match arguments[index].as_str() {
                "--conversations" => options.conversations = number(),
                "--messages" => options.messages = number(),
                "--latency-ms" => options.latency_ms = number() as u64,
                "--idle-channels" => options.idle_channels = number(),
                "--concurrency" => options.concurrency = number(),
                "--channel-idle-secs" => options.channel_idle_secs = number(),
                "--mode" => options.telegram = value == "telegram",
                _ => {
                    index += 1;
                    continue;
                }
            }
            index += 2;
        }
        options
    }
}

/// The daemon process and what `/proc` says about it.
struct Daemon {
    child: Child,
    base_url: String,
}

impl Daemon {
    fn rss_kib(&self) -> u64 {
        proc_status_kib(self.child.id(), "VmRSS:")
    }

    /// RSS without file-backed pages (the database mapped for reading).
    fn anonymous_rss_kib(&self) -> u64 {
        proc_status_kib(self.child.id(), "RssAnon:")
    }

    fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.child.id(), "VmHWM:")
    }

    /// User + system CPU seconds so far.
    fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(&self.child.id().to_string())
    }

    fn stop(&mut self) -> Duration {
        let started = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        started.elapsed()
    }
}

/// User + system CPU seconds of a process (`self` for this one) so far.
fn process_cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map(|pair| {
            pair.iter()
                .filter_map(|field| field.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0);
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

async fn start_daemon(config: &str, home: &std::path::Path) -> (Daemon, Duration) {
    std::fs::write(home.join("config.toml"), config).expect("config");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let started = Instant::now();
    // SPACEBOT_BENCH_BINARY runs another build, such as one with symbols for `perf`.
    let binary = std::env::var_os("SPACEBOT_BENCH_BINARY")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_spacebot").into());
    let child = Command::new(binary)
        .args(["serve", "--port", &port.to_string()])
        .env("SPACEBOT_HOME", home)
        .env("RUST_LOG", "warn")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start spacebot serve");
    let daemon = Daemon {
        child,
        base_url: format!("http://127.0.0.1:{port}"),
    };
    // A build run under valgrind (see SPACEBOT_BENCH_BINARY) starts far slower.
    let ready_within = Duration::from_secs(
        std::env::var("SPACEBOT_BENCH_READY_SECS")
            .ok()
            .and_then(|seconds| seconds.parse().ok())
            .unwrap_or(30),
    );
    let client = reqwest::Client::new();
    loop {
        let health = client
            .get(format!("{}/api/health", daemon.base_url))
            .send()
            .await;
        if health.is_ok_and(|response| response.status().is_success()) {
            return (daemon, started.elapsed());
        }
        assert!(
            started.elapsed() < ready_within,
            "daemon never became ready"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The daemon's running channels, as its status API reports them.
async fn channels_alive(client: &reqwest::Client, base_url: &str) -> u64 {
    let agents = match client.get(format!("{base_url}/api/agents")).send().await {
        Ok(response) => response.json::<Value>().await.ok(),
        Err(_) => None,
    };
    agents
        .and_then(|agents| agents["agents"][0]["active_channels"].as_u64())
        .unwrap_or(0)
}

/// Opens one conversation per number in `range` with one exchange each, 500 at a time.
async fn open_idle_channels(
    client: &reqwest::Client,
    base_url: &str,
    range: std::ops::Range<usize>,
) {
    let mut idle = tokio::task::JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(500));
    for channel in range {
        let client = client.clone();
        let base_url = base_url.to_string();
        let permits = permits.clone();
        idle.spawn(async move {
            let _permit = permits.acquire().await;
            exchange(&client, &base_url, &format!("idle-{channel}"), "hello").await
        });
    }
    while idle.join_next().await.is_some() {}
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Assistant messages, and user messages not answered, in a benchmark conversation.
async fn answer_counts(
    client: &reqwest::Client,
    base_url: &str,
    conversation: usize,
) -> (usize, usize) {
    let transcript: Value = client
        .get(format!(
            "{base_url}/api/agents/main/conversations/portal:bench-{conversation}/messages?limit=10000"
        ))
        .send()
        .await
        .expect("transcript")
        .json()
        .await
        .expect("json");
    let messages = transcript["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let replies = messages
        .iter()
        .filter(|message| message["role"] == "assistant")
        .count();
    let unanswered = messages
        .iter()
        .filter(|message| message["role"] == "user" && message["status"] != "answered")
        .count();
    (replies, unanswered)
}

/// Sends one message through the API and waits for the answer.
async fn exchange(
    client: &reqwest::Client,
    base_url: &str,
    conversation: &str,
    text: &str,
) -> Option<String> {
    let response = client
        .post(format!("{base_url}/api/agents/main/messages"))
        .json(&json!({"content": text, "conversation": conversation, "wait": true, "timeout_secs": 120}))
        .send()
        .await
        .ok()?;
    let body: Value = response.json().await.ok()?;
    body["reply"].as_str().map(str::to_string)
}

#[tokio::main]
async fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`: only check it builds.
    if !std::env::args().any(|argument| argument == "--bench") {
        println!("harness benchmark: run it with `cargo bench --bench harness`");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = Options::parse();
    let latency = Duration::from_millis(options.latency_ms);
    let llm = FakeLlm::start().await;
    llm.count_requests_only();
    llm.set_fallback(move |request| {
        let text = FakeLlm::last_user_text(request);
        Scripted::tool_call("reply", json!({"content": format!("ok: {text}")})).delayed(latency)
    });
    let telegram = if options.telegram {
        Some(fake_telegram::FakeTelegram::start().await)
    } else {
        None
    };
    let home = tempfile::tempdir().expect("tempdir");
    let mut config = format!(
        "[llm.providers.fake]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"bench\"\n\n\
         [defaults]\nshutdown_grace_secs = 10\nchannel_inbox = 16\nchannel_idle_secs = {}\n\n\
         [defaults.routing]\nchannel = \"fake/fake-model\"\n\n[[agents]]\nid = \"main\"\n",
        llm.openai_base_url(),
        options.channel_idle_secs
    );
    if let Some(telegram) = &telegram {
        config.push_str(&telegram.config(&[]));
        // Every chat's person is a member: strangers would get pairing codes instead.
        let members: Vec<String> = (0..options.conversations)
            .map(|conversation| format!("telegram:{}", telegram_chat(conversation)))
            .collect();
        config.push_str(&format!("\n[access]\nmembers = {members:?}\n"));
    }
    let (mut daemon, startup) = start_daemon(&config, home.path()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_rss = daemon.rss_kib();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.conversations)
        .build()
        .expect("client");

    // Idle channels, before the load so its freed heap does not hide them: open a first half
    // (warming the allocator, the page cache and the HTTP pools), then a second half, and
    // take the RSS the second half added.
    let half = options.idle_channels / 2;
    open_idle_channels(&client, &daemon.base_url, 0..half).await;
    let rss_before_idle = daemon.rss_kib();
    open_idle_channels(&client, &daemon.base_url, half..options.idle_channels).await;
    let rss_after_idle = daemon.rss_kib();
    let idle_measured = options.idle_channels - half;

    let total = options.conversations * options.messages;
    let completed = Arc::new(AtomicUsize::new(0));
    let rss_at_thousand = Arc::new(AtomicUsize::new(0));
    let cpu_before = daemon.cpu_seconds();
    let generator_cpu_before = process_cpu_seconds("self");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let daemon_pid = daemon.child.id();
    let slots = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    for conversation in 0..options.conversations {
        let slots = slots.clone();
        let client = client.clone();
        let base_url = daemon.base_url.clone();
        let completed = completed.clone();
        let rss_at_thousand = rss_at_thousand.clone();
        let messages = options.messages;
        let telegram = telegram.clone();
        tasks.spawn(async move {
            let _slot = slots.acquire().await;
            let mut latencies = Vec::with_capacity(messages);
            let mut wrong = 0usize;
            for index in 0..messages {
                let text = format!("c{conversation} m{index}");
                let sent = Instant::now();
                let answer = match &telegram {
                    None => {
                        exchange(&client, &base_url, &format!("bench-{conversation}"), &text).await
                    }
                    Some(telegram) => telegram_exchange(telegram, conversation, &text).await,
                };
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                if answer.as_deref() != Some(format!("ok: {text}").as_str()) {
                    wrong += 1;
                }
                if completed.fetch_add(1, Ordering::SeqCst) + 1 == 1000 {
                    rss_at_thousand.store(
                        proc_status_kib(daemon_pid, "VmRSS:") as usize,
                        Ordering::SeqCst,
                    );
                }
            }
            (latencies, wrong)
        });
    }
    let mut latencies = Vec::with_capacity(total);
    let mut wrong = 0;
    while let Some(result) = tasks.join_next().await {
        let (mut conversation_latencies, conversation_wrong) = result.expect("conversation task");
        latencies.append(&mut conversation_latencies);
        wrong += conversation_wrong;
    }
    let elapsed = started.elapsed();
    let cpu = daemon.cpu_seconds() - cpu_before;
    let generator_cpu = process_cpu_seconds("self") - generator_cpu_before;
    let rss_after_all = daemon.rss_kib();
    let live_channels = channels_alive(&client, &daemon.base_url).await;
    // With a short idle limit, wait for the finished conversations' channels to stop and see
    // whether their memory comes back.
    let settled = if options.channel_idle_secs < 30 {
        tokio::time::sleep(Duration::from_secs(options.channel_idle_secs as u64 + 2)).await;
        let channels = channels_alive(&client, &daemon.base_url).await;
        Some((daemon.rss_kib(), daemon.anonymous_rss_kib(), channels))
    } else {
        None
    };
    let peak_rss = daemon.peak_rss_kib();

    // Exactly one answer per message, checked in the daemon's own transcript (an API caller
    // hears its answer only once the turn is recorded).
    let mut duplicated_or_missing = 0;
    if telegram.is_none() {
        for conversation in (0..options.conversations).step_by((options.conversations / 50).max(1))
        {
            let (replies, unanswered) =
                answer_counts(&client, &daemon.base_url, conversation).await;
            if replies != options.messages || unanswered != 0 {
                duplicated_or_missing += 1;
            }
        }
    }

    let shutdown = daemon.stop();

    latencies.sort_by(f64::total_cmp);
    let llm_ms = options.latency_ms as f64;
    let overhead: Vec<f64> = latencies
        .iter()
        .map(|latency| (latency - llm_ms).max(0.0))
        .collect();
    let throughput = total as f64 / elapsed.as_secs_f64();
    let ideal = options.conversations.min(options.concurrency) as f64 / (llm_ms / 1000.0);
    let mode = if options.telegram {
        "telegram"
    } else {
        "http api"
    };
    println!();
    println!(
        "spacebot harness benchmark ({mode}): {} conversations x {} messages, LLM latency {} ms",
        options.conversations, options.messages, options.latency_ms
    );
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| startup to ready (process spawn to healthy API) | {:.1} ms |",
        startup.as_secs_f64() * 1000.0
    );
    println!(
        "| idle RSS after start | {:.1} MiB |",
        idle_rss as f64 / 1024.0
    );
    println!("| turns | {total} in {:.2} s |", elapsed.as_secs_f64());
    println!(
        "| throughput | {throughput:.0} msg/s (LLM-bound ideal {ideal:.0} msg/s, {:.0}%) |",
        100.0 * throughput / ideal.min(throughput.max(ideal))
    );
    println!(
        "| harness overhead per turn p50 / p95 / p99 | {:.1} / {:.1} / {:.1} ms |",
        percentile(&overhead, 0.5),
        percentile(&overhead, 0.95),
        percentile(&overhead, 0.99)
    );
    println!(
        "| end-to-end latency p50 / p99 | {:.1} / {:.1} ms |",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    println!(
        "| RSS after 1,000 turns / after all {total} | {:.1} / {:.1} MiB |",
        rss_at_thousand.load(Ordering::SeqCst) as f64 / 1024.0,
        rss_after_all as f64 / 1024.0
    );
    println!("| channels alive at the end of the load | {live_channels} |");
    if let Some((rss, anonymous, channels)) = settled {
        println!(
            "| after idle channels stopped: RSS (of it heap) / channels alive | {:.1} ({:.1}) MiB / {channels} |",
            rss as f64 / 1024.0,
            anonymous as f64 / 1024.0
        );
    }
    println!("| peak RSS | {:.1} MiB |", peak_rss as f64 / 1024.0);
    println!(
        "| CPU seconds per 1,000 turns | {:.2} s |",
        cpu / total as f64 * 1000.0
    );
    // The load generator and the fake LLM run on the same cores, so the machine, not only
    // the daemon, bounds the throughput: cores / (daemon + generator CPU per turn).
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    println!(
        "| load generator + fake LLM CPU seconds per 1,000 turns | {:.2} s (ceiling on {cores} cores: {:.0} msg/s) |",
        generator_cpu / total as f64 * 1000.0,
        cores * total as f64 / (cpu + generator_cpu).max(f64::EPSILON)
    );
    if options.idle_channels > 0 {
        println!(
            "| RSS per idle channel ({} channels) | {:.1} KiB |",
            options.idle_channels,
            (rss_after_idle.saturating_sub(rss_before_idle)) as f64 / idle_measured.max(1) as f64
        );
    }
    println!(
        "| shutdown (SIGTERM to exit) | {:.0} ms |",
        shutdown.as_secs_f64() * 1000.0
    );
    println!("| wrong or missing answers | {wrong} |");
    println!("| sampled conversations with a lost or duplicate answer | {duplicated_or_missing} |");
    if wrong > 0 || duplicated_or_missing > 0 {
        eprintln!("FAILED: messages were lost or answered twice");
        std::process::exit(1);
    }
}

/// The private chat (and user) id of a conversation in telegram mode.
fn telegram_chat(conversation: usize) -> i64 {
    10_000 + conversation as i64
}

/// Sends one Telegram message through the fake Bot API and waits for the bot's answer.
async fn telegram_exchange(
    telegram: &fake_telegram::FakeTelegram,
    conversation: usize,
    text: &str,
) -> Option<String> {
    let chat_id = telegram_chat(conversation);
    telegram.push_message(chat_id, chat_id, text);
    let expected = format!("ok: {text}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if telegram
            .sent()
            .iter()
            .any(|sent| sent["chat_id"] == chat_id && sent["text"] == expected.as_str())
        {
            return Some(expected);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}
