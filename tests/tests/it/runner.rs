//! The local runner in-process, on real Redis and SQS: routes, health, and the dispatcher
//! loop carrying a queued event to a Redis subscriber; and `scripts/send` against it.

use aetherium::backends::queue::{SqsQueue, WorkQueue};
use aetherium::backends::redis_conn::RedisHandle;
use aetherium::{Event, backends::bus::RedisBus, backends::store::RedisStore};
use aetherium_tests::{RedisServer, Running, TestApp, sqs};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

async fn redis_and_sqs_app(redis: &RedisServer) -> TestApp {
    let handle = RedisHandle::open(&redis.url()).expect("url");
    let client = sqs::client();
    let url = sqs::create_queue(&client, &[("VisibilityTimeout", "5")]).await;
    TestApp::builder()
        .env(&[("REDIS_URL", &redis.url())])
        .bus(Arc::new(RedisBus::new(handle.clone())))
        .queue(Arc::new(SqsQueue::with_client(client, url)))
        .store(Arc::new(RedisStore::new(handle)))
        .build()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_event_reaches_a_redis_subscriber_through_the_dispatcher() {
    let redis = RedisServer::start().await;
    let t = redis_and_sqs_app(&redis).await;
    let queue = t.queue.clone();
    let running = Running::start(t.app).await;

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
    let t = redis_and_sqs_app(&redis).await;
    let running = Running::start(t.app).await;
    let http = aetherium::backends::http_client::client();

    // The bridge's first heartbeat comes as it starts: wait for it, not for a timing.
    let body = aetherium_tests::wait::until(Duration::from_secs(8), || {
        let (http, url) = (http.clone(), format!("{}/api/v1/health", running.base));
        async move {
            let body: Value = http.get(url).send().await.expect("health").json().await.expect("json");
            (body["components"]["bus_bridge"] == "healthy").then_some(body)
        }
    })
    .await
    .expect("the runner's bridge reports");
    assert_eq!(
        body,
        // On Redis the runner is also the bus bridge, reporting every 10 s.
        json!({"status": "ok", "components": {"github": "disabled", "slack": "disabled", "event_bus": "healthy", "queue": "healthy", "bus_bridge": "healthy"}})
    );

    redis.kill();
    // A backend's result is reused for up to 5 s (aetherium::observe::health::BACKEND_INTERVAL).
    let text = aetherium_tests::wait::until(Duration::from_secs(8), || {
        let (http, url) = (http.clone(), format!("{}/api/v1/health", running.base));
        async move {
            let resp = http.get(url).send().await.expect("health");
            (resp.status() == 503).then_some(resp.text().await.expect("body"))
        }
    })
    .await
    .expect("503 once the cached result is older than 5 s");
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["status"], "degraded");
    assert!(body["components"]["event_bus"].as_str().is_some_and(|s| s.starts_with("unhealthy: ")), "{text}");
    assert!(!text.contains("127.0.0.1") && !text.contains(&redis.port().to_string()), "no internal address in {text}");
    running.stop().await;
}

#[tokio::test]
async fn every_route_is_mounted_and_bad_paths_and_methods_are_named() {
    let running = Running::start(TestApp::builder().builtin().build().await.app).await;
    let http = aetherium::backends::http_client::client();
    // Every route is mounted; without a secret or token configured, each fails closed.
    for (method, path) in [
        ("POST", "/api/v1/webhooks/github"),
        ("POST", "/api/v1/webhooks/slack"),
        ("POST", "/api/v1/events"),
        ("POST", "/api/v1/integrations/github/pr"),
        ("POST", "/api/v1/logs/query"),
        ("POST", "/logs/query"),
        ("GET", "/metrics"),
    ] {
        let url = format!("{}{path}", running.base);
        let resp = http.request(method.parse().expect("method"), url).body("{}").send().await.expect("send");
        assert_eq!(resp.status(), 500, "{method} {path}");
        let body: Value = resp.json().await.expect("json error");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    }
    let resp = http.get(format!("{}/api/v1/nothing", running.base)).send().await.expect("send");
    assert_eq!(resp.status(), 404);
    let resp = http.post(format!("{}/api/v1/health", running.base)).send().await.expect("send");
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.expect("json");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("use GET")), "{body}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_reaches_a_redis_subscriber_exactly_once_even_when_delivered_twice() {
    use aetherium_tests::fixtures::{self, sign};
    let redis = RedisServer::start().await;
    let handle = RedisHandle::open(&redis.url()).expect("url");
    let client = sqs::client();
    let url = sqs::create_queue(&client, &[("VisibilityTimeout", "5")]).await;
    let queue = Arc::new(SqsQueue::with_client(client, url));
    let t = TestApp::builder()
        .env(&[("REDIS_URL", &redis.url()), ("GITHUB_WEBHOOK_SECRET", fixtures::SECRET)])
        .redis(handle)
        .queue(queue.clone())
        .build()
        .await;
    let running = Running::start(t.app).await;

    let sub = redis::Client::open(redis.url()).expect("url");
    let (mut sink, mut stream) = sub.get_async_pubsub().await.expect("pubsub").split();
    sink.subscribe("github.pull_request.opened").await.expect("subscribe");

    let body = fixtures::github("pull_request-opened");
    let http = aetherium::backends::http_client::client();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let resp = http
            .post(running.url("/api/v1/webhooks/github"))
            .header("content-type", "application/json")
            .header("x-github-event", "pull_request")
            .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
            .header("x-hub-signature-256", sign(&body))
            .body(body.clone())
            .send()
            .await
            .expect("post");
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, vec![202, 200], "queued, then acknowledged as a duplicate");

    // Even if the same record reaches the queue twice (a webhook function that crashed after
    // enqueueing), the dispatcher publishes it once.
    let msg = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("published").expect("open");
    let ev = Event::from_json(std::str::from_utf8(msg.get_payload_bytes()).expect("utf8")).expect("event");
    assert_eq!(msg.get_channel_name(), "github.pull_request.opened");
    assert_eq!(ev.id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_eq!(ev.data["number"], 2);
    assert_eq!(ev.data["url"], "https://github.com/Codertocat/Hello-World/pull/2");
    assert_eq!(ev.data["repository"], "Codertocat/Hello-World");
    let again = ev.to_json();
    queue.send(&again).await.expect("duplicate record");
    let extra = tokio::time::timeout(Duration::from_secs(3), stream.next()).await;
    assert!(extra.is_err(), "the event was published exactly once");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_completed_event_posted_to_the_runner_becomes_one_pr_comment() {
    use aetherium_tests::github_fake::Comments;
    use wiremock::matchers::{method, path};
    let github = aetherium_tests::stand_in::start().await;
    let comments = Comments::default();
    for verb in ["GET", "POST"] {
        wiremock::Mock::given(method(verb))
            .and(path("/repos/Codertocat/Hello-World/issues/2/comments"))
            .respond_with(comments.clone())
            .mount(&github)
            .await;
    }
    let uri = github.uri();
    let t = TestApp::builder()
        .env(&[("GITHUB_API_URL", &uri), ("GITHUB_TOKEN", "ghp_x"), ("AETHERIUM_API_TOKEN", "tok")])
        .builtin()
        .build()
        .await;
    let running = Running::start(t.app).await;
    let http = aetherium::backends::http_client::client();
    let event = json!({"id": "evt-runner-1", "type": "task.completed", "data": {"task_id": "T-1", "pull_request": "https://github.com/Codertocat/Hello-World/pull/2"}});
    for want in [202, 200] {
        let resp = http.post(running.url("/api/v1/events")).bearer_auth("tok").json(&event).send().await.expect("post");
        assert_eq!(resp.status(), want, "queued once, then a duplicate");
    }
    let posted = aetherium_tests::wait::until(Duration::from_secs(10), || {
        let c = comments.clone();
        async move { (!c.bodies().is_empty()).then(|| c.bodies()) }
    })
    .await
    .expect("a comment within 10 s");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(comments.bodies().len(), 1, "the same event sent twice comments once");
    assert!(posted[0].starts_with("✅ Task T-1 completed successfully!"));
    running.stop().await;
}

/// `scripts/send` (the README's first command after the run command) against the runner
/// in-process: the samples, re-signed with the runner's secrets from the environment, are
/// answered as GitHub and Slack would see, and the GitHub ones are published on the bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_send_signs_the_samples_for_a_running_runner() {
    let secrets = [
        ("GITHUB_WEBHOOK_SECRET", "send-test-github-secret"),
        ("SLACK_SIGNING_SECRET", "send-test-slack-signing-secret"),
        ("AETHERIUM_API_TOKEN", "send-test-api-token"),
    ];
    let t = TestApp::builder().env(&secrets).builtin().build().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let collect = aetherium::backends::bus::handler(move |e| {
        let _ = tx.send(e);
        async { Ok(()) }
    });
    t.bus.subscribe("github.*", collect).await.expect("subscribe");
    let running = Running::start(t.app).await;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned();
    let send = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new("python3");
        cmd.arg(root.join("scripts/send")).args(args).current_dir(&root).env("RUNNER_URL", &running.base);
        cmd.envs(secrets).envs(env.iter().copied());
        tokio::task::spawn_blocking(move || {
            let out = cmd.output().expect("python3 scripts/send (Python 3 is needed)");
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            (out.status.code(), text)
        })
    };
    let next = async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>| {
        tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("on the bus within 10 s").expect("open")
    };

    let (code, out) = send(&["events/github-webhook/pull_request-opened.json"], &[]).await.expect("join");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("POST http://") && out.contains("/api/v1/webhooks/github"), "{out}");
    assert!(out.contains("HTTP 202"), "{out}");
    let event = next(&mut rx).await;
    assert_eq!(event.kind, "github.pull_request.opened");
    assert_eq!(event.data["number"], 2);
    assert_ne!(event.id, "9f8d5e60-8b1a-11ef-8000-0a1b2c3d4e5f", "a fresh delivery id, not the sample's");
    assert!(out.contains(&event.id), "{out}");

    // A raw GitHub payload: the event from its file name.
    let (code, out) = send(&["tests/fixtures/github/push.json"], &[]).await.expect("join");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("x-github-event: push") && out.contains("HTTP 202"), "{out}");
    assert_eq!(next(&mut rx).await.kind, "github.push");

    // Slack's slash command, signed with a fresh timestamp (the sample's is long past).
    let (code, out) = send(&["events/slack-webhook/slash-command-base64.json"], &[]).await.expect("join");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("/api/v1/webhooks/slack") && out.contains("HTTP 200"), "{out}");
    assert!(out.contains("Aetherium is running"), "the /aetherium-status answer: {out}");

    // Signed with another secret than the runner's: refused, and the script says so.
    let (code, out) = send(
        &["events/github-webhook/pull_request-opened.json"],
        &[("GITHUB_WEBHOOK_SECRET", "not-the-runner-secret")],
    )
    .await
    .expect("join");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("HTTP 401"), "{out}");
    running.stop().await;
}
