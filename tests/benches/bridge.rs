//! The bus bridge under load, on a real redis-server (standalone and a one-node cluster):
//! - events heard and queued per second by one bridge, SQS on a keep-alive stand-in that
//!   keeps every event id it is sent: a steady offered rate for a while, then a burst;
//! - PUBLISH-to-Slack-message latency through the runner (bridge, in-memory queue,
//!   dispatcher, a vm.created notify route, a stand-in slack.com).
//!
//! Run: `scripts/bench` (or `cargo bench -p aetherium-tests --bench bridge`).
//! BENCH_BRIDGE_RATE (2000 events/s), BENCH_BRIDGE_SECONDS (60), BENCH_BRIDGE_BURST (20000).
#![allow(clippy::print_stdout)]

use aetherium::App;
use aetherium::backends::queue::SqsQueue;
use aetherium::backends::redis_conn::RedisHandle;
use aetherium::engine::app::Needs;
use aetherium_tests::app::FACTORIES;
use aetherium_tests::redis_server::Shape;
use aetherium_tests::{RedisServer, Running, TestApp};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The distinct event ids a stand-in was sent, and how many requests carried them.
#[derive(Default)]
struct Received {
    ids: Mutex<HashSet<String>>,
    sends: Mutex<u64>,
}

impl Received {
    fn count(&self) -> usize {
        self.ids.lock().expect("lock").len()
    }
}

/// A keep-alive stand-in for SQS's JSON protocol on its own thread (the real one is another
/// machine): `SendMessage` and `SendMessageBatch` answered as SQS does, each record's id kept.
fn sqs_stand_in(received: Arc<Received>) -> String {
    serve_on_thread(move || {
        axum::Router::new().fallback(move |body: axum::body::Bytes| {
                let received = received.clone();
                async move {
                    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let bodies: Vec<&str> = match doc["Entries"].as_array() {
                        Some(entries) => entries.iter().filter_map(|e| e["MessageBody"].as_str()).collect(),
                        None => doc["MessageBody"].as_str().into_iter().collect(),
                    };
                    for text in &bodies {
                        let record: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
                        if let Some(id) = record["id"].as_str() {
                            received.ids.lock().expect("lock").insert(id.to_owned());
                        }
                    }
                    *received.sends.lock().expect("lock") += 1;
                    let answer = match doc["Entries"].as_array() {
                        Some(entries) => {
                            let ok: Vec<_> = entries
                                .iter()
                                .map(|e| serde_json::json!({"Id": e["Id"], "MessageId": uuid::Uuid::new_v4().to_string(), "MD5OfMessageBody": "00000000000000000000000000000000"}))
                                .collect();
                            serde_json::json!({"Successful": ok, "Failed": []})
                        }
                        None => serde_json::json!({"MessageId": uuid::Uuid::new_v4().to_string(), "MD5OfMessageBody": "00000000000000000000000000000000"}),
                    };
                    ([("content-type", "application/x-amz-json-1.0")], answer.to_string())
                }
        })
    })
}

/// `app` served on loopback from a thread and runtime of its own, as a real service is another
/// process: its base URL.
fn serve_on_thread(app: impl FnOnce() -> axum::Router + Send + 'static) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            let _ = axum::serve(listener, app()).await;
        });
    });
    format!("http://{}", rx.recv().expect("stand-in started"))
}

/// PUBLISH `n` events in Go's wire form on `vm.created`, `rate` a second (0: as fast as a
/// pipelined connection goes), from a client of our own on its own connection.
async fn publish(url: &str, prefix: &str, n: u64, rate: u64) {
    let client = redis::Client::open(url).expect("url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
    let tick = Duration::from_millis(10);
    let per_tick = if rate == 0 { 500 } else { (rate / 100).max(1) };
    let start = tokio::time::Instant::now();
    let mut sent = 0;
    let mut ticks = 0u32;
    while sent < n {
        let mut pipe = redis::pipe();
        for _ in 0..per_tick.min(n - sent) {
            let event = format!(
                r#"{{"ID":"{prefix}-{sent}","Type":"vm.created","Data":{{"vm_id":"vm-{sent}","vm_name":"bench"}}}}"#
            );
            pipe.cmd("PUBLISH").arg("vm.created").arg(event).ignore();
            sent += 1;
        }
        let () = pipe.query_async(&mut conn).await.expect("publish");
        ticks += 1;
        if rate != 0 {
            tokio::time::sleep_until(start + tick * ticks).await;
        }
    }
}

/// Until `received` holds `want` ids, or it stops growing for 5 s: when the last arrived.
async fn drained(received: &Received, want: usize) -> Instant {
    let (mut last, mut seen) = (Instant::now(), 0);
    loop {
        let now = received.count();
        if now != seen {
            (last, seen) = (Instant::now(), now);
        }
        if now >= want || last.elapsed() > Duration::from_secs(5) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn throughput(shape: Shape, label: &str, rate: u64, seconds: u64, burst: u64) {
    let redis = RedisServer::start_shape(shape).await;
    let received = Arc::new(Received::default());
    let sqs = sqs_stand_in(received.clone());
    let queue_url = format!("{sqs}/123456789012/bench");
    let queue = Arc::new(SqsQueue::with_client(aetherium_tests::sqs::client_at(&sqs), queue_url));
    let url = redis.url();
    let t = TestApp::builder()
        .env(&[("REDIS_URL", &url)])
        .redis(RedisHandle::open(&url).expect("url"))
        .queue(queue)
        .build()
        .await;
    let bridge = t.app.bridge();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        bridge
            .run(async move {
                let _ = stop_rx.await;
            })
            .await
    });
    redis.wait_for_pattern_subscribers(1, 4).await;
    let node = redis.node_urls().pop().expect("a node");

    let steady = rate * seconds;
    let start = Instant::now();
    publish(&node, "steady", steady, rate).await;
    let published_for = start.elapsed();
    let last = drained(&received, steady as usize).await;
    let steady_queued = received.count();
    let lag = last.saturating_duration_since(start + published_for);

    let before = received.count();
    let start = Instant::now();
    publish(&node, "burst", burst, 0).await;
    let last = drained(&received, before + burst as usize).await;
    let burst_queued = received.count() - before;
    let burst_rate = burst_queued as f64 / last.duration_since(start).as_secs_f64();

    let _ = stop_tx.send(());
    let report = running.await.expect("bridge");
    let sends = *received.sends.lock().expect("lock");
    println!(
        "| {label} | {rate} for {:.1} s | {steady} | {steady_queued} | {} | {} ms | {burst} | {burst_queued} | {burst_rate:.0} | {sends} | {:.1} |",
        published_for.as_secs_f64(),
        steady.saturating_sub(steady_queued as u64),
        lag.as_millis(),
        (steady_queued + burst_queued) as f64 / sends.max(1) as f64,
    );
    assert_eq!(report.refused + report.failed, 0, "{report:?}");
}

/// A stand-in slack.com on its own thread: when each VM's message arrived.
fn slack_stand_in(arrived: Arc<Mutex<HashMap<String, Instant>>>) -> String {
    serve_on_thread(move || {
        axum::Router::new().fallback(move |body: axum::body::Bytes| {
            let arrived = arrived.clone();
            async move {
                let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let text = doc["text"].as_str().unwrap_or_default();
                // "latency lat-N": the name is the key.
                if let Some(name) = text.split_whitespace().nth(1) {
                    arrived.lock().expect("lock").entry(name.to_owned()).or_insert_with(Instant::now);
                }
                ([("content-type", "application/json")], r#"{"ok":true,"ts":"1700000000.000100"}"#)
            }
        })
    })
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// Slack allows one message a second per channel, and the Slack client keeps to it: the events
/// are spread over [`LANES`] channels, so the limit is not what is measured.
const LATENCY_ROUTES: &str = r##"
default_routes: false
routes:
  - name: latency
    on: vm.created
    notify:
      integration: slack
      target: "#lane-{{lane}}"
      message: "latency {{vm_name}}"
"##;
const LANES: usize = 200;

async fn latency(shape: Shape, label: &str, n: usize) {
    let redis = RedisServer::start_shape(shape).await;
    let arrived = Arc::new(Mutex::new(HashMap::new()));
    let slack = slack_stand_in(arrived.clone());
    let url = redis.url();
    let config = TestApp::builder()
        .env(&[("REDIS_URL", &url), ("SLACK_API_URL", &slack), ("SLACK_BOT_TOKEN", "xoxb-bench")])
        .yaml(LATENCY_ROUTES)
        .config()
        .expect("config");
    let app = App::from_config(config).expect("app").build(Needs::all(FACTORIES)).await.expect("integrations");
    let running = Running::start(app).await;
    redis.wait_for_pattern_subscribers(1, 4).await;
    let client = redis::Client::open(redis.node_urls().pop().expect("node")).expect("url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
    let mut sent = HashMap::new();
    for i in 0..n {
        let name = format!("lat-{i}");
        let lane = i % LANES;
        let event = format!(
            r#"{{"ID":"lat-{i}","Type":"vm.created","Data":{{"vm_id":"vm-{i}","vm_name":"{name}","lane":"{lane}"}}}}"#
        );
        sent.insert(name, Instant::now());
        let _: i64 = redis::cmd("PUBLISH").arg("vm.created").arg(event).query_async(&mut conn).await.expect("publish");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while arrived.lock().expect("lock").len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let arrived = arrived.lock().expect("lock").clone();
    let mut took: Vec<Duration> =
        sent.iter().filter_map(|(name, at)| arrived.get(name).map(|got| got.duration_since(*at))).collect();
    took.sort();
    assert!(!took.is_empty(), "no Slack message arrived");
    println!(
        "| {label} | {n} | {} | {:.2} | {:.2} | {:.2} |",
        took.len(),
        percentile(&took, 0.50),
        percentile(&took, 0.99),
        took.last().expect("one").as_secs_f64() * 1000.0
    );
    running.stop().await;
}

fn main() {
    let rate = env_or("BENCH_BRIDGE_RATE", 2000);
    let seconds = env_or("BENCH_BRIDGE_SECONDS", 60);
    let burst = env_or("BENCH_BRIDGE_BURST", 20_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        println!("bridge throughput: one bridge, SQS on a keep-alive stand-in (SendMessageBatch of what arrived together)\n");
        println!(
            "| Redis | offered (events/s) | published | queued | lost | last queued after the last PUBLISH | burst published | burst queued | burst queued/s | SQS requests | events a request |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        throughput(Shape::Standalone, "standalone", rate, seconds, burst).await;
        throughput(Shape::OneNodeCluster, "one-node cluster", rate, seconds, burst).await;
        println!();
        println!("bridge latency: PUBLISH vm.created to the stand-in Slack's chat.postMessage, through the runner, 100 a second over {LANES} channels\n");
        println!("| Redis | published | Slack messages | p50 (ms) | p99 (ms) | max (ms) |");
        println!("|---|---|---|---|---|---|");
        latency(Shape::Standalone, "standalone", 1000).await;
        latency(Shape::OneNodeCluster, "one-node cluster", 1000).await;
    });
}
