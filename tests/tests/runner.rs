//! The local runner in-process, on real Redis and SQS: routes, health, and the dispatcher
//! loop carrying a queued event to a Redis subscriber.

use aetherium::config::Config;
use aetherium::queue::SqsQueue;
use aetherium::redis_conn::RedisHandle;
use aetherium::{App, Event, bus::RedisBus, store::RedisStore};
use aetherium_tests::{RedisServer, sqs};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

struct Running {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn start(app: App) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let done = tokio::spawn(aetherium_local::run(app, listener, async {
            let _ = rx.await;
        }));
        Self { base, stop: Some(tx), done }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        tokio::time::timeout(Duration::from_secs(10), self.done)
            .await
            .expect("stops within 10 s")
            .expect("join")
            .expect("clean");
    }
}

fn config(env: &[(&str, &str)]) -> Config {
    let map: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::load(&move |k| map.get(k).cloned()).expect("config")
}

async fn redis_and_sqs_app(redis: &RedisServer) -> App {
    let cfg = config(&[("REDIS_URL", &redis.url())]);
    let handle = RedisHandle::open(&redis.url()).expect("url");
    let client = sqs::client();
    let url = sqs::create_queue(&client, &[("VisibilityTimeout", "5")]).await;
    App::from_parts(
        cfg,
        Arc::new(RedisBus::new(handle.clone())),
        Arc::new(SqsQueue::with_client(client, url)),
        Arc::new(RedisStore::new(handle)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_event_reaches_a_redis_subscriber_through_the_dispatcher() {
    let redis = RedisServer::start().await;
    let app = redis_and_sqs_app(&redis).await;
    let queue = app.queue.clone();
    let running = Running::start(app).await;

    let client = redis::Client::open(redis.url()).expect("url");
    let (mut sink, mut stream) = client.get_async_pubsub().await.expect("pubsub").split();
    sink.subscribe("vm.created").await.expect("subscribe");

    let data = json!({"vm_id": "vm-123", "vm_name": "my-vm"}).as_object().cloned().unwrap_or_default();
    let event = Event::new("vm.created", "platform", data);
    queue.send(&event.to_json()).await.expect("enqueue");

    let msg = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("published within 10 s")
        .expect("open");
    let got = Event::from_json(std::str::from_utf8(msg.get_payload_bytes()).expect("utf8")).expect("event");
    assert_eq!(got, event);
    // Acknowledged: the record is gone from the queue.
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.stop().await;
    assert!(
        queue.receive(10, Duration::from_secs(1)).await.expect("receive").is_empty(),
        "the dispatched record was deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_real_backends_and_degrades_when_redis_dies() {
    let mut redis = RedisServer::start().await;
    let app = redis_and_sqs_app(&redis).await;
    let running = Running::start(app).await;
    let http = reqwest::Client::new();

    let resp = http.get(format!("{}/api/v1/health", running.base)).send().await.expect("health");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        json!({"status": "ok", "components": {"github": "disabled", "slack": "disabled", "event_bus": "healthy", "queue": "healthy"}})
    );

    redis.kill();
    let resp = http.get(format!("{}/api/v1/health", running.base)).send().await.expect("health");
    assert_eq!(resp.status(), 503);
    let text = resp.text().await.expect("body");
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["status"], "degraded");
    assert!(body["components"]["event_bus"].as_str().is_some_and(|s| s.starts_with("unhealthy: ")), "{text}");
    assert!(!text.contains("127.0.0.1") && !text.contains(&redis.port().to_string()), "no internal address in {text}");
    running.stop().await;
}

#[tokio::test]
async fn every_route_is_mounted_and_bad_paths_and_methods_are_named() {
    let running = Running::start(App::from_config(config(&[])).expect("app")).await;
    let http = reqwest::Client::new();
    for (method, path) in [
        ("POST", "/api/v1/webhooks/github"),
        ("POST", "/api/v1/webhooks/slack"),
        ("POST", "/api/v1/integrations/github/pr"),
        ("POST", "/api/v1/events"),
        ("POST", "/api/v1/logs/query"),
        ("POST", "/logs/query"),
        ("GET", "/metrics"),
    ] {
        let resp = http
            .request(method.parse().expect("method"), format!("{}{path}", running.base))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 501, "{method} {path}");
        let body: Value = resp.json().await.expect("json error");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("not implemented")), "{body}");
    }
    let resp = http.get(format!("{}/api/v1/nothing", running.base)).send().await.expect("send");
    assert_eq!(resp.status(), 404);
    let resp = http.post(format!("{}/api/v1/health", running.base)).send().await.expect("send");
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.expect("json");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("use GET")), "{body}");
    running.stop().await;
}
