//! The dispatcher end to end: queue record → idempotency (Redis) → PUBLISH + stream (Redis)
//! → a notify route through the Slack client to a stand-in Slack API, events per second,
//! beside redis-benchmark's PUBLISH rate on the same Redis (the ceiling).
//! Run: `scripts/bench` (or `cargo bench -p aetherium-tests --bench dispatch`).
#![allow(clippy::print_stdout)]

use aetherium::redis_conn::RedisHandle;
use aetherium::{App, Event, bus::RedisBus, queue::MemoryQueue, store::RedisStore};
use aetherium_tests::{RedisServer, config};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Instant;

const N: usize = 5_000;
const IN_FLIGHT: usize = 64;

async fn stand_in_slack() -> String {
    let app = axum::Router::new().route(
        "/api/chat.postMessage",
        axum::routing::post(|| async { ([("content-type", "application/json")], r#"{"ok":true,"ts":"1.2"}"#) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/api")
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let redis = RedisServer::start().await;
        let slack = stand_in_slack().await;
        let dir = std::env::temp_dir().join(format!("aetherium-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("routes.yaml");
        std::fs::write(
            &file,
            "default_routes: false\nroutes:\n  - name: bench\n    on: custom.bench\n    notify: { integration: slack, target: \"#bench-{{n}}\", message: \"event {{n}}\" }\n",
        )
        .expect("write");
        let handle = RedisHandle::open(&redis.url()).expect("url");
        let app = App::from_parts(
            config(&[("SLACK_BOT_TOKEN", "xoxb-bench"), ("SLACK_API_URL", &slack), ("AETHERIUM_CONFIG", file.to_str().expect("utf8"))]),
            Arc::new(RedisBus::new(handle.clone())),
            Arc::new(MemoryQueue::default()),
            Arc::new(RedisStore::new(handle)),
        );
        app.register_builtin().expect("slack");
        let d = app.dispatcher();
        let records: Vec<String> = (0..N)
            .map(|n| {
                let data = serde_json::json!({ "n": n, "service": "api", "version": "1.2.3" });
                Event::new("custom.bench", "bench", data.as_object().cloned().unwrap_or_default()).to_json()
            })
            .collect();
        let start = Instant::now();
        let ok = futures_util::stream::iter(records.iter().map(|r| d.process(r)))
            .buffer_unordered(IN_FLIGHT)
            .filter(|r| std::future::ready(r.is_ok()))
            .count()
            .await;
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(ok, N, "every event dispatched");
        println!("dispatcher: {N} events, {IN_FLIGHT} in flight: {:.0} events/s", N as f64 / secs);

        let out = std::process::Command::new("redis-benchmark")
            .args(["-p", &redis.port().to_string(), "-n", "200000", "-c", "64", "-q"])
            .args(["PUBLISH", "custom.bench", &records[0]])
            .output()
            .expect("redis-benchmark (redis-tools)");
        let text = String::from_utf8_lossy(&out.stdout);
        let rps = text.split_whitespace().find_map(|w| w.parse::<f64>().ok()).unwrap_or(0.0);
        println!("redis-benchmark PUBLISH ({} byte events, 64 clients): {rps:.0} requests/s", records[0].len());
        if rps > 0.0 {
            println!("dispatcher / PUBLISH ceiling: {:.1}%", 100.0 * (N as f64 / secs) / rps);
        }
    });
}
