//! The dispatcher end to end: queue record → idempotency (Redis) → PUBLISH + stream (Redis)
//! → a notify route through the Slack client to a stand-in Slack API, events per second,
//! beside redis-benchmark's PUBLISH rate on the same Redis (the ceiling).
//! Run: `scripts/bench` (or `cargo bench -p aetherium-tests --bench dispatch`).
#![allow(clippy::print_stdout)]

use aetherium::backends::redis_conn::RedisHandle;
use aetherium::{Event, backends::bus::RedisBus, backends::store::RedisStore};
use aetherium_tests::redis_server::Shape;
use aetherium_tests::{RedisServer, TestApp};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Instant;

const IN_FLIGHT: usize = 64;

/// The stand-in Slack API on its own thread and runtime, as the real one is another process.
fn stand_in_slack() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/api/chat.postMessage",
                axum::routing::post(|| async { ([("content-type", "application/json")], r#"{"ok":true,"ts":"1.2"}"#) }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            let _ = axum::serve(listener, app).await;
        });
    });
    format!("http://{}/api", rx.recv().expect("stand-in Slack started"))
}

/// Events per second through `instances` dispatchers, each on its own thread with its own
/// current-thread runtime and Redis connection, as that many Lambda instances would run.
fn run(instances: usize, n: usize, first: usize, redis_url: &str, slack: &str, routes: &str) -> f64 {
    let barrier = Arc::new(std::sync::Barrier::new(instances + 1));
    let workers: Vec<_> = (0..instances)
        .map(|i| {
            let (barrier, redis_url, slack, routes) =
                (barrier.clone(), redis_url.to_owned(), slack.to_owned(), routes.to_owned());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    let handle = RedisHandle::open(&redis_url).expect("url");
                    // The in-memory queue (the default): records are handed to the dispatcher directly.
                    let t = TestApp::builder()
                        .env(&[
                            ("SLACK_BOT_TOKEN", "xoxb-bench"),
                            ("SLACK_API_URL", &slack),
                            ("AETHERIUM_CONFIG", &routes),
                        ])
                        .bus(Arc::new(RedisBus::new(handle.clone())))
                        .store(Arc::new(RedisStore::new(handle.clone())))
                        .builtin()
                        .try_build()
                        .await
                        .expect("slack");
                    let d = t.app.dispatcher();
                    // Connected and warm before the clock starts.
                    handle.conn().await.expect("redis");
                    // Distinct channels everywhere: the per-channel pacing is not what is measured.
                    let share = n / instances;
                    let records: Vec<String> = (first + i * share..first + (i + 1) * share).map(record).collect();
                    barrier.wait();
                    let ok = futures_util::stream::iter(records.iter().map(|r| d.process(r)))
                        .buffer_unordered(IN_FLIGHT / instances)
                        .filter(|r| std::future::ready(r.is_ok()))
                        .count()
                        .await;
                    assert_eq!(ok, records.len(), "every event dispatched");
                });
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for w in workers {
        w.join().expect("dispatcher thread");
    }
    (n / instances * instances) as f64 / start.elapsed().as_secs_f64()
}

/// chat.postMessage calls to the stand-in and nothing else: the floor the Slack route sits on.
async fn http_floor(slack: &str, n: usize) -> f64 {
    let http = aetherium::backends::http_client::client();
    let url = format!("{slack}/chat.postMessage");
    let start = Instant::now();
    let ok = futures_util::stream::iter(0..n)
        .map(|i| {
            let call = http.post(&url).bearer_auth("xoxb-bench").header("content-type", "application/json").body(
                serde_json::json!({ "channel": format!("#bench-{i}"), "text": format!("event {i}") }).to_string(),
            );
            async move { call.send().await.ok()?.bytes().await.ok() }
        })
        .buffer_unordered(IN_FLIGHT)
        .filter(|r| std::future::ready(r.is_some()))
        .count()
        .await;
    assert_eq!(ok, n, "every call answered");
    n as f64 / start.elapsed().as_secs_f64()
}

fn record(n: usize) -> String {
    let data = serde_json::json!({ "n": n, "service": "api", "version": "1.2.3" });
    Event::new("custom.bench", "bench", data.as_object().cloned().unwrap_or_default()).to_json()
}

fn main() {
    // BENCH_EVENTS: more events for a profiler to look at.
    let n: usize = std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let redis = rt.block_on(RedisServer::start());
    let slack = stand_in_slack();
    let dir = std::env::temp_dir().join(format!("aetherium-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("routes.yaml");
    std::fs::write(
        &file,
        "default_routes: false\nroutes:\n  - name: bench\n    on: custom.bench\n    notify: { integration: slack, target: \"#bench-{{n}}\", message: \"event {{n}}\" }\n",
    )
    .expect("write");
    let routes = file.to_str().expect("utf8");
    let mut rates = Vec::new();
    for instances in [1, 2] {
        let rate = run(instances, n, instances * n, &redis.url(), &slack, routes);
        let what = format!("dispatcher, {instances} instance(s)");
        println!("{what}, {IN_FLIGHT} events in flight in all: {rate:.0} events/s");
        rates.push((what, rate));
    }
    // The same without the Slack route: what the bus and the idempotency keys cost alone.
    let bare = dir.join("no-routes.yaml");
    std::fs::write(&bare, "default_routes: false\nroutes: []\n").expect("write");
    let rate = run(1, n, 3 * n, &redis.url(), &slack, bare.to_str().expect("utf8"));
    println!("dispatcher, 1 instance, no route (bus and idempotency only): {rate:.0} events/s");
    rates.push(("dispatcher, no route".into(), rate));
    // ElastiCache Serverless presents one cluster-mode endpoint owning every slot: the same
    // load there, where an event's writes go as one MULTI per hash tag.
    let cluster = rt.block_on(RedisServer::start_shape(Shape::OneNodeCluster));
    let rate = run(1, n, 4 * n, &cluster.url(), &slack, routes);
    println!("dispatcher, 1 instance, one-node cluster (the ElastiCache Serverless shape): {rate:.0} events/s");
    if let Some((_, standalone)) = rates.first() {
        println!("dispatcher, one-node cluster / standalone: {:.1}%", 100.0 * rate / standalone);
    }
    drop(cluster);
    let rate = rt.block_on(http_floor(&slack, n));
    println!("the HTTP call alone (reqwest to the stand-in Slack, {IN_FLIGHT} in flight): {rate:.0} calls/s");

    let event = record(0);
    let out = std::process::Command::new("redis-benchmark")
        .args(["-p", &redis.port().to_string(), "-n", "200000", "-c", "64", "-q"])
        .args(["PUBLISH", "custom.bench", &event])
        .output()
        .expect("redis-benchmark (redis-tools)");
    let text = String::from_utf8_lossy(&out.stdout);
    let ceiling = text.split_whitespace().find_map(|w| w.parse::<f64>().ok()).unwrap_or(0.0);
    println!("redis-benchmark PUBLISH ({} byte events, 64 clients): {ceiling:.0} requests/s", event.len());
    if ceiling > 0.0 {
        for (what, rate) in rates {
            println!("{what} / PUBLISH ceiling: {:.1}%", 100.0 * rate / ceiling);
        }
    }
    drop(rt);
}
