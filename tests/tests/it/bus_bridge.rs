//! The bus both ways: what a platform service publishes on Redis, as the guide's
//! `eventBus.Publish` writes it, reaches the integrations through the bridge, the queue and
//! the dispatcher. Published with `redis-cli` (a client we did not write) or redis-rs.

use aetherium::App;
use aetherium::BackendError;
use aetherium::backends::queue::{MemoryQueue, QueueMessage, WorkQueue};
use aetherium::backends::redis_conn::RedisHandle;
use aetherium::engine::app::Needs;
use aetherium::engine::bridge::Report;
use aetherium_tests::app::FACTORIES;
use aetherium_tests::fixtures::SLACK_SECRET;
use aetherium_tests::github_fake::slack_posts;
use aetherium_tests::{RedisServer, Running, TestApp, per_shape};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

const TOKEN: &str = "bus-api-token";

/// A route on a custom topic, beside the default routes.
const ROUTES: &str = r##"
routes:
  - name: my-event
    on: custom.my_event
    notify:
      integration: slack
      target: "#platform"
      message: "custom event {{what}}"
"##;

fn env(api: &str, redis: &str) -> Vec<(String, String)> {
    [
        ("REDIS_URL", redis),
        ("GITHUB_API_URL", api),
        ("GITHUB_TOKEN", "ghp_bus"),
        ("GITHUB_WEBHOOK_SECRET", aetherium_tests::fixtures::SECRET),
        ("SLACK_API_URL", api),
        ("SLACK_BOT_TOKEN", "xoxb-bus"),
        ("SLACK_SIGNING_SECRET", SLACK_SECRET),
        ("SLACK_NOTIFY_CHANNEL", "#platform"),
        ("AETHERIUM_API_TOKEN", TOKEN),
        ("AETHERIUM_INBOX_CLAIM_IDLE_SECONDS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The runner on `redis` as local/src/main.rs builds it, with the stand-in for GitHub and
/// Slack at `api` and [`ROUTES`].
async fn runner(redis: &RedisServer, api: &str, extra: &[(&str, &str)]) -> Running {
    let mut pairs = env(api, &redis.url());
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let config = TestApp::builder().env(&refs).yaml(ROUTES).config().expect("config");
    let app = App::from_config(config).expect("app").build(Needs::all(FACTORIES)).await.expect("integrations");
    Running::start(app).await
}

/// Wait until `bridges` connections to node 0 hold the bridge's four pattern subscriptions
/// (one per family), as `CLIENT LIST` shows them.
async fn listening(redis: &RedisServer, bridges: usize) {
    // One pattern per default family.
    redis.wait_for_pattern_subscribers(bridges, 4).await;
}

async fn metrics(running: &Running) -> String {
    let http = aetherium::backends::http_client::client();
    let resp = http.get(running.url("/metrics")).bearer_auth(TOKEN).send().await.expect("metrics");
    resp.text().await.expect("text")
}

/// A slash command's text from the runner.
async fn slash(running: &Running, command: &str) -> String {
    let (status, answer) = running.slash(command).await;
    assert_eq!(status, 200, "{command}: {answer}");
    answer["text"].as_str().unwrap_or_else(|| panic!("{command}: {answer}")).to_owned()
}

/// The guide's three examples, published with redis-cli on the last node: `vm.created` as
/// Go's encoding/json writes `types.Event`, `task.completed` in the lowercase form, and a
/// custom event. Each gives exactly one effect, the VM is listed, and nothing loops.
async fn the_guides_examples_published_on_the_bus_reach_the_integrations(redis: RedisServer) {
    let (api, comments) = aetherium_tests::github_fake::github_and_slack().await;
    let running = runner(&redis, &api.uri(), &[]).await;
    listening(&redis, 1).await;
    // The guide's troubleshooting: one pattern per family, no exact channel.
    assert_eq!(redis.cli(0, &["PUBSUB", "NUMPAT"]), "4");
    assert_eq!(redis.cli(0, &["PUBSUB", "CHANNELS"]), "");
    let last = redis.node_ports().len() - 1;

    let vm = r#"{"ID":"bus-vm-1","Type":"vm.created","Timestamp":"2026-12-07T10:00:00.123456789+01:00","Data":{"vm_id":"vm-42","vm_name":"probe"}}"#;
    redis.cli(last, &["PUBLISH", "vm.created", vm]);
    let task = json!({"id": "bus-task-1", "type": "task.completed", "timestamp": "2026-12-07T10:00:01Z",
        "data": {"task_id": "T-42", "pull_request": "https://github.com/o/r/pull/1"}});
    redis.cli(last, &["PUBLISH", "task.completed", &task.to_string()]);
    // No id: one is derived from the content.
    let custom = r#"{"Type":"custom.my_event","Data":{"what":"from-go"}}"#;
    redis.cli(last, &["PUBLISH", "custom.my_event", custom]);

    let done = aetherium_tests::wait::until(Duration::from_secs(20), || {
        let (api, comments) = (&api, &comments);
        async move { (slack_posts(api).await.len() >= 2 && !comments.bodies().is_empty()).then_some(()) }
    })
    .await;
    assert!(done.is_some(), "two Slack messages and a PR comment within 20 s: {:?}", slack_posts(&api).await);
    // The dispatcher republishes all three on the bus; the bridge hears them and queues nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let posts = slack_posts(&api).await;
    assert_eq!(posts.len(), 2, "one message for vm.created, one for custom.my_event: {posts:?}");
    assert!(posts.iter().any(|p| p["text"].as_str().is_some_and(|t| t.contains("probe"))), "{posts:?}");
    assert!(posts.iter().any(|p| p["text"].as_str() == Some("custom event from-go")), "{posts:?}");
    assert_eq!(comments.bodies().len(), 1, "exactly one PR comment: {:?}", comments.bodies());

    let list = slash(&running, "/aetherium-vm-list").await;
    assert!(list.contains("probe (vm-42)"), "{list}");

    let text = metrics(&running).await;
    for line in [
        "aetherium_bridge_events_heard_total{topic=\"vm.created\"} 1",
        "aetherium_bridge_events_enqueued_total{topic=\"vm.created\"} 1",
        "aetherium_bridge_events_enqueued_total{topic=\"task.completed\"} 1",
        "aetherium_bridge_events_enqueued_total{topic=\"custom.my_event\"} 1",
        "event_bus_messages_published_total{topic=\"vm.created\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    let http = aetherium::backends::http_client::client();
    let health: Value =
        http.get(running.url("/api/v1/health")).send().await.expect("health").json().await.expect("json");
    assert_eq!(health["components"]["bus_bridge"], "healthy", "{health}");
    let status = slash(&running, "/aetherium-status").await;
    assert!(status.contains("- Bus Bridge: ✅ healthy"), "{status}");
    running.stop().await;
}

/// The loop test: an event POSTed to the ingest is published by the dispatcher, heard by the
/// bridge, and not queued again. One Slack message; the queue goes quiet.
async fn an_event_posted_over_http_is_not_queued_again_by_the_bridge(redis: RedisServer) {
    let (api, _comments) = aetherium_tests::github_fake::github_and_slack().await;
    let running = runner(&redis, &api.uri(), &[]).await;
    listening(&redis, 1).await;
    let http = aetherium::backends::http_client::client();
    // No id: the ingest mints one, so no claim of ours names it before the bridge hears it.
    let body = json!({"type": "vm.created", "data": {"vm_id": "vm-http", "vm_name": "over-http"}});
    let resp = http.post(running.url("/api/v1/events")).bearer_auth(TOKEN).json(&body).send().await.expect("post");
    assert_eq!(resp.status(), 202);
    let one = aetherium_tests::wait::until(Duration::from_secs(10), || {
        let api = &api;
        async move { (!slack_posts(api).await.is_empty()).then_some(()) }
    })
    .await;
    assert!(one.is_some(), "a Slack message within 10 s");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(slack_posts(&api).await.len(), 1);
    let text = metrics(&running).await;
    assert!(text.contains("event_bus_messages_published_total{topic=\"vm.created\"} 1\n"), "{text}");
    assert!(!text.contains("aetherium_bridge_events_enqueued_total{"), "the bridge queued an echo:\n{text}");
    running.stop().await;
}

per_shape!(
    the_guides_examples_published_on_the_bus_reach_the_integrations,
    an_event_posted_over_http_is_not_queued_again_by_the_bridge
);

/// A bridge in this process over `redis`, queueing into `queue`, until the sender is used.
struct Bridging {
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<Report>,
}

impl Bridging {
    fn start(t: &TestApp) -> Self {
        let (tx, rx) = oneshot::channel::<()>();
        let bridge = t.app.bridge();
        let done = tokio::spawn(async move {
            bridge
                .run(async move {
                    let _ = rx.await;
                })
                .await
        });
        Self { stop: Some(tx), done }
    }

    async fn stop(mut self) -> Report {
        let _ = self.stop.take().map(|s| s.send(()));
        tokio::time::timeout(Duration::from_secs(10), self.done).await.expect("stops").expect("join")
    }
}

async fn app_on(redis: &RedisServer, queue: Arc<dyn WorkQueue>, yaml: &str) -> TestApp {
    let handle = RedisHandle::open(&redis.url()).expect("url");
    let url = redis.url();
    let env = [("REDIS_URL", url.as_str()), ("AETHERIUM_INBOX_CLAIM_IDLE_SECONDS", "1")];
    TestApp::builder().env(&env).yaml(yaml).redis(handle).queue(queue).build().await
}

/// What the queue is given: received (and acknowledged) until `want` records arrived or
/// `limit` passed, then until it stays empty for half a second, so extras are seen too.
async fn collect(queue: &dyn WorkQueue, want: usize, limit: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut all = Vec::new();
    loop {
        let batch = queue.receive(10, Duration::from_millis(500)).await.expect("receive");
        let empty = batch.is_empty();
        for m in batch {
            all.push(serde_json::from_str(&m.body).expect("json"));
            queue.delete(&m.receipt).await.expect("delete");
        }
        if empty && (all.len() >= want || tokio::time::Instant::now() >= deadline) {
            return all;
        }
    }
}

const INBOX: &str = "aetherium:{inbox}";

/// The inbox's consumer group, and `n` `vm.started` entries `inbox-0` to `inbox-<n-1>`.
fn fill_inbox(redis: &RedisServer, n: usize) {
    redis.cli(0, &["XGROUP", "CREATE", INBOX, "aetherium-bridge", "0", "MKSTREAM"]);
    for i in 0..n {
        let event = json!({"id": format!("inbox-{i}"), "type": "vm.started", "data": {"vm_id": format!("vm-{i}")}});
        redis.cli(0, &["XADD", INBOX, "*", "topic", "vm.started", "event", &event.to_string()]);
    }
}

/// A bridge of `t` run until the inbox is empty; then every record `queue` holds must be
/// `inbox-0` to `inbox-<n-1>`, once each. The bridge's report.
async fn drain_inbox(redis: &RedisServer, t: &TestApp, queue: &dyn WorkQueue, n: usize) -> Report {
    let bridge = Bridging::start(t);
    let emptied = aetherium_tests::wait::until(Duration::from_secs(15), || async move {
        (redis.cli(0, &["XLEN", INBOX]) == "0").then_some(())
    })
    .await;
    let report = bridge.stop().await;
    assert!(emptied.is_some(), "the stream empties: {report:?}");
    let mut ids: Vec<String> = collect(queue, n, Duration::from_secs(5))
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap_or("").to_owned())
        .collect();
    ids.sort();
    let mut want: Vec<String> = (0..n).map(|i| format!("inbox-{i}")).collect();
    want.sort();
    assert_eq!(ids, want, "every entry once: {report:?}");
    report
}

/// Entries that a bridge read and died holding are claimed by the next bridge and queued
/// once each; the stream is left empty.
async fn a_dead_bridges_pending_entries_are_delivered_once_by_the_next(redis: RedisServer) {
    fill_inbox(&redis, 20);
    // The bridge that died mid-batch: it read ten entries and never acknowledged them.
    let read = redis.cli(0, &["XREADGROUP", "GROUP", "aetherium-bridge", "dead", "COUNT", "10", "STREAMS", INBOX, ">"]);
    assert!(read.contains("inbox-9"), "{read}");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let queue: Arc<dyn WorkQueue> = Arc::new(MemoryQueue::default());
    let t = app_on(&redis, queue.clone(), "").await;
    let report = drain_inbox(&redis, &t, queue.as_ref(), 20).await;
    assert_eq!((report.enqueued, report.from_inbox), (20, 20), "{report:?}");
    let pending = redis.cli(0, &["XPENDING", INBOX, "aetherium-bridge"]);
    assert!(pending.starts_with('0'), "nothing pending: {pending}");
}

/// Two bridges overlapping, as two invocations a minute apart do, each hearing the same 500
/// PUBLISHes without ids: each event is queued once.
async fn two_overlapping_bridges_queue_each_of_500_publishes_once(redis: RedisServer) {
    let queue: Arc<dyn WorkQueue> = Arc::new(MemoryQueue::default());
    let (a, b) = (app_on(&redis, queue.clone(), "").await, app_on(&redis, queue.clone(), "").await);
    let (first, second) = (Bridging::start(&a), Bridging::start(&b));
    listening(&redis, 2).await;
    let client = redis::Client::open(redis.node_urls().pop().expect("node")).expect("url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
    for i in 0..500 {
        let event = json!({"Type": "vm.created", "Data": {"vm_id": format!("vm-{i}"), "vm_name": format!("n-{i}")}});
        let _: i64 = redis::cmd("PUBLISH")
            .arg("vm.created")
            .arg(event.to_string())
            .query_async(&mut conn)
            .await
            .expect("publish");
    }
    let all = collect(queue.as_ref(), 500, Duration::from_secs(30)).await;
    let (ra, rb) = (first.stop().await, second.stop().await);
    let mut vms: Vec<&str> = all.iter().filter_map(|e| e["data"]["vm_id"].as_str()).collect();
    vms.sort();
    vms.dedup();
    assert_eq!((all.len(), vms.len()), (500, 500), "{ra:?} {rb:?}");
    assert_eq!((ra.heard, rb.heard), (500, 500));
    assert_eq!(ra.enqueued + rb.enqueued, 500, "{ra:?} {rb:?}");
    assert_eq!(ra.duplicates + rb.duplicates, 500, "{ra:?} {rb:?}");
}

/// A queue that fails, once each, the entries whose body holds one of its markers (as SQS
/// fails single entries of a `SendMessageBatch`), and keeps how many bodies each send was
/// handed.
#[derive(Debug)]
struct FailsEntriesOnce {
    inner: MemoryQueue,
    markers: Mutex<Vec<String>>,
    handed: Mutex<Vec<usize>>,
}

impl FailsEntriesOnce {
    fn new(markers: &[&str]) -> Self {
        let markers = Mutex::new(markers.iter().map(|m| m.to_string()).collect());
        Self { inner: MemoryQueue::default(), markers, handed: Mutex::default() }
    }

    fn fails_now(&self, body: &str) -> bool {
        let mut markers = self.markers.lock().expect("lock");
        let hit = markers.iter().position(|m| body.contains(m.as_str()));
        hit.map(|i| markers.remove(i)).is_some()
    }
}

#[async_trait::async_trait]
impl WorkQueue for FailsEntriesOnce {
    async fn send(&self, body: &str) -> Result<String, BackendError> {
        self.send_batch(&[body]).await.remove(0)
    }

    async fn send_batch(&self, bodies: &[&str]) -> Vec<Result<String, BackendError>> {
        self.handed.lock().expect("lock").push(bodies.len());
        let mut out = Vec::new();
        for body in bodies {
            out.push(if self.fails_now(body) {
                Err(BackendError::unavailable("sqs", "InternalError: entry failed"))
            } else {
                self.inner.send(body).await
            });
        }
        out
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<QueueMessage>, BackendError> {
        self.inner.receive(max, wait).await
    }

    async fn delete(&self, receipt: &str) -> Result<(), BackendError> {
        self.inner.delete(receipt).await
    }

    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), BackendError> {
        self.inner.retry_after(receipt, delay).await
    }

    async fn health(&self) -> Result<(), BackendError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

/// The inbox's entries go to the queue together, and each is acknowledged by what became of
/// its own entry: the two that failed stay pending and are delivered on the next claim, and
/// none of the others is sent twice.
async fn each_inbox_entry_is_acknowledged_by_its_own_batch_entry(redis: RedisServer) {
    fill_inbox(&redis, 25);
    let queue = Arc::new(FailsEntriesOnce::new(&["\"inbox-7\"", "\"inbox-19\""]));
    let t = app_on(&redis, queue.clone(), "").await;
    let report = drain_inbox(&redis, &t, queue.as_ref(), 25).await;
    assert_eq!((report.enqueued, report.failed, report.duplicates), (25, 2, 0), "{report:?}");
    let handed = queue.handed.lock().expect("lock").clone();
    assert_eq!(handed.first(), Some(&25), "the 25 entries read at once go to the queue together: {handed:?}");
    assert_eq!(handed.iter().sum::<usize>(), 27, "the 25, then the 2 failed ones again: {handed:?}");
}

per_shape!(
    each_inbox_entry_is_acknowledged_by_its_own_batch_entry,
    a_bridge_subscribes_again_after_redis_restarts,
    a_dead_bridges_pending_entries_are_delivered_once_by_the_next,
    two_overlapping_bridges_queue_each_of_500_publishes_once
);

/// Every bad message is refused, counted by reason and written to the activity log, and the
/// bridge keeps listening: the good event after each is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_the_bus_is_refused_counted_and_the_bridge_keeps_listening() {
    let redis = RedisServer::start().await;
    let queue: Arc<dyn WorkQueue> = Arc::new(MemoryQueue::default());
    let t = app_on(&redis, queue.clone(), "webhooks:\n  max_body_bytes: 2048\n").await;
    let bridge = Bridging::start(&t);
    listening(&redis, 1).await;
    let big = format!(r#"{{"type":"vm.created","data":{{"x":"{}"}}}}"#, "a".repeat(3000));
    let bad_pubsub = [
        ("vm.created", "not json at all".to_owned(), "not_json"),
        ("vm.created", big, "too_large"),
        ("vm.created", r#"{"type":"vm.stopped","data":{}}"#.to_owned(), "type_mismatch"),
        ("task.created", r#"{"type":"task.created","data":[1]}"#.to_owned(), "invalid"),
    ];
    let bad_stream =
        [(r#"{"type":"github.push","data":{}}"#, "webhook_only"), (r#"{"type":"billing.paid","data":{}}"#, "invalid")];
    let mut good = 0;
    for (channel, payload, _) in &bad_pubsub {
        redis.cli(0, &["PUBLISH", channel, payload]);
        good += 1;
        let ok = json!({"id": format!("good-{good}"), "type": "vm.created", "data": {}});
        redis.cli(0, &["PUBLISH", "vm.created", &ok.to_string()]);
    }
    for (payload, _) in &bad_stream {
        redis.cli(0, &["XADD", INBOX, "*", "event", payload]);
        good += 1;
        let ok = json!({"id": format!("good-{good}"), "type": "vm.created", "data": {}});
        redis.cli(0, &["XADD", INBOX, "*", "event", &ok.to_string()]);
    }
    let queued = collect(queue.as_ref(), good, Duration::from_secs(10)).await;
    let report = bridge.stop().await;
    assert_eq!(queued.len(), good, "every good event after a bad one, and only those: {queued:?} {report:?}");
    assert_eq!(report.refused, (bad_pubsub.len() + bad_stream.len()) as u64, "{report:?}");

    let text = t.app.metrics().render().await.expect("metrics");
    let count = |topic: &str, reason: &str| {
        let series = format!("aetherium_bridge_events_refused_total{{topic=\"{topic}\",reason=\"{reason}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&series)).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0)
    };
    assert_eq!(count("vm.created", "not_json"), 1, "{text}");
    assert_eq!(count("vm.created", "too_large"), 1, "{text}");
    assert_eq!(count("vm.created", "type_mismatch"), 1, "{text}");
    assert_eq!(count("task.created", "invalid"), 1, "{text}");
    assert_eq!(count("(inbox)", "webhook_only"), 1, "{text}");
    assert_eq!(count("(inbox)", "invalid"), 1, "{text}");
    let rejected = t.app.activity().rejections().await.expect("activity");
    let lines: Vec<&str> = rejected.iter().map(|e| e.message.as_str()).collect();
    assert!(lines.iter().any(|m| m.contains("the channel is the topic")), "{lines:?}");
    assert!(lines.iter().any(|m| m.contains("come only from the verified webhooks")), "{lines:?}");
}

/// Redis restarted under a running bridge (every node of a cluster): it subscribes again, and
/// what is published after the restart is queued.
async fn a_bridge_subscribes_again_after_redis_restarts(mut redis: RedisServer) {
    let queue: Arc<dyn WorkQueue> = Arc::new(MemoryQueue::default());
    let t = app_on(&redis, queue.clone(), "").await;
    let bridge = Bridging::start(&t);
    listening(&redis, 1).await;
    redis.restart().await;
    listening(&redis, 1).await;
    let last = redis.node_ports().len() - 1;
    redis.cli(last, &["PUBLISH", "vm.created", r#"{"id":"after-restart","type":"vm.created","data":{}}"#]);
    let queued = collect(queue.as_ref(), 1, Duration::from_secs(10)).await;
    let report = bridge.stop().await;
    assert_eq!(queued.len(), 1, "{report:?}");
    assert_eq!(queued[0]["id"], "after-restart");
}

/// The function binary behind the Runtime API emulator, with the environment the stack gives
/// it (Redis, the work queue on SQS): each sample invocation listens for its configured time
/// and queues what the platform published meanwhile, as the Go form, and reports it.
async fn the_bridge_function_queues_what_is_published_while_it_listens(redis: RedisServer) {
    use aetherium_tests::runtime_api::{Function, Outcome, RuntimeApi};
    let sqs_endpoint = aetherium_tests::sqs::endpoint();
    let client = aetherium_tests::sqs::client();
    let queue_url = aetherium_tests::sqs::create_queue(&client, &[("VisibilityTimeout", "30")]).await;
    let url = redis.url();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("AETHERIUM_QUEUE_URL", queue_url.as_str()),
        ("AWS_ENDPOINT_URL", sqs_endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AETHERIUM_BRIDGE_LISTEN_SECONDS", "3"),
    ];
    let samples: Vec<String> =
        aetherium_tests::samples::all().into_iter().filter(|f| f.starts_with("bus-bridge/")).collect();
    assert!(!samples.is_empty(), "events/bus-bridge/ holds the scheduler's event");
    let api = RuntimeApi::start().await;
    let _f = Function::spawn("bus-bridge", &api, &env);
    let queue = aetherium::backends::queue::SqsQueue::with_client(client, queue_url);
    for (i, sample) in samples.iter().enumerate() {
        let publisher = async {
            listening(&redis, 1).await;
            let event = format!(r#"{{"ID":"fn-{i}","Type":"vm.created","Data":{{"vm_id":"vm-{i}"}}}}"#);
            redis.cli(0, &["PUBLISH", "vm.created", &event]);
        };
        let invocation = aetherium_tests::samples::fresh(sample);
        let (outcome, ()) = tokio::join!(api.invoke(&invocation), publisher);
        let Outcome::Response(body) = outcome else { panic!("{sample}: {outcome:?}") };
        let report: Value = serde_json::from_str(&body).expect("the report is JSON");
        assert_eq!((&report["heard"], &report["enqueued"]), (&json!(1), &json!(1)), "{sample}: {report}");
        let queued = collect(&queue, 1, Duration::from_secs(5)).await;
        assert_eq!(queued.len(), 1, "{queued:?}");
        assert_eq!(
            (&queued[0]["id"], &queued[0]["data"]["vm_id"]),
            (&json!(format!("fn-{i}")), &json!(format!("vm-{i}")))
        );
        // Between invocations the subscription is let go.
        let gone = aetherium_tests::wait::until(Duration::from_secs(5), || {
            let clients = redis.cli(0, &["CLIENT", "LIST"]);
            async move { (!clients.contains(" psub=4 ")).then_some(()) }
        })
        .await;
        assert!(gone.is_some(), "unsubscribed after the invocation");
    }
}

/// On the embedded bus there is nothing to hear: the function says what is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_function_without_redis_fails_naming_the_setting() {
    use aetherium_tests::runtime_api::{Function, RuntimeApi};
    let api = RuntimeApi::start().await;
    let mut f = Function::spawn("bus-bridge", &api, &[]);
    let (ok, logs) = f.wait_exit(Duration::from_secs(10));
    assert!(!ok, "the process fails its init");
    assert!(logs.contains("start-up failed") && logs.contains("REDIS_URL"), "{logs}");
    assert!(api.first_next().is_none(), "it never asked for work");
}

mod function {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn standalone() {
        the_bridge_function_queues_what_is_published_while_it_listens(RedisServer::start().await).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_node_cluster() {
        let redis = RedisServer::start_shape(aetherium_tests::redis_server::Shape::OneNodeCluster).await;
        the_bridge_function_queues_what_is_published_while_it_listens(redis).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_masters() {
        let redis = RedisServer::start_shape(aetherium_tests::redis_server::Shape::ThreeMasters).await;
        the_bridge_function_queues_what_is_published_while_it_listens(redis).await;
    }
}
