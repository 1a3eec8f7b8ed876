//! The dispatcher core: idempotency, route outcomes, panics contained per record, claim
//! checks, and the dead-letter queue on the SQS emulator.

use aetherium::backends::bus::RedisBus;
use aetherium::backends::queue::{MemoryQueue, SqsQueue, WorkQueue, claim};
use aetherium::backends::redis_conn::RedisHandle;
use aetherium::backends::store::RedisStore;
use aetherium::backends::store::{MemoryStore, Store};
use aetherium::engine::dispatch::{DispatchError, Dispatcher, Outcome};
use aetherium::engine::routes::{Action, Routes, Rule};
use aetherium::model::integration::IntegrationError;
use aetherium::{Event, backends::bus::EventBus, backends::bus::MemoryBus, backends::bus::handler};
use aetherium_tests::redis_server::Shape;
use aetherium_tests::{RedisServer, sqs};
use async_trait::async_trait;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug)]
enum Behaviour {
    Ok,
    /// Fail transiently this many times, then succeed.
    FlakyThenOk(usize),
    Permanent,
    RetryAfter(Duration),
    PanicOn(&'static str),
    /// Hold the route until the test adds a permit.
    Held(Arc<tokio::sync::Semaphore>),
}

#[derive(Debug)]
struct Fake {
    name: &'static str,
    behaviour: Behaviour,
    runs: AtomicUsize,
    seen: Mutex<Vec<String>>,
}

impl Fake {
    fn new(name: &'static str, behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Self { name, behaviour, runs: AtomicUsize::new(0), seen: Mutex::default() })
    }
    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

fn transient(after: Option<Duration>) -> IntegrationError {
    IntegrationError::Transient {
        integration: "fake".into(),
        reason: "503 from the stand-in".into(),
        retry_after: after,
    }
}

#[async_trait]
impl Action for Fake {
    fn name(&self) -> &str {
        self.name
    }
    async fn run(&self, event: &Event) -> Result<(), IntegrationError> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().expect("lock").push(event.id.clone());
        match &self.behaviour {
            Behaviour::Ok => Ok(()),
            Behaviour::FlakyThenOk(k) if n < *k => Err(transient(None)),
            Behaviour::FlakyThenOk(_) => Ok(()),
            Behaviour::Permanent => {
                Err(IntegrationError::Permanent { integration: "fake".into(), reason: "422 from the stand-in".into() })
            }
            Behaviour::RetryAfter(d) => Err(transient(Some(*d))),
            Behaviour::PanicOn(id) if event.id == *id => panic!("route panics on purpose"),
            Behaviour::PanicOn(_) => Ok(()),
            Behaviour::Held(gate) => {
                let _permit = gate.acquire().await.expect("gate");
                Ok(())
            }
        }
    }
}

fn event(id: &str, kind: &str) -> String {
    let data = json!({"task_id": id}).as_object().cloned().unwrap_or_default();
    Event::new(kind, "test", data).with_id(id).to_json()
}

fn dispatcher(queue: Arc<dyn WorkQueue>, rules: Vec<Rule>) -> (Dispatcher, Arc<MemoryBus>, Arc<MemoryStore>) {
    let bus = Arc::new(MemoryBus::new());
    let store = Arc::new(MemoryStore::new());
    (Dispatcher::new(bus.clone(), store.clone(), queue, Routes::new(rules).expect("routes")), bus, store)
}

/// What one dispatcher test runs on: the in-memory bus and store, or both on one Redis
/// deployment of a given shape.
#[derive(Debug)]
struct Backends {
    bus: Arc<dyn EventBus>,
    store: Arc<dyn Store>,
    _redis: Option<RedisServer>,
}

impl Backends {
    fn memory() -> Self {
        Self { bus: Arc::new(MemoryBus::new()), store: Arc::new(MemoryStore::new()), _redis: None }
    }

    async fn redis(shape: Shape) -> Self {
        let server = RedisServer::start_shape(shape).await;
        let handle = RedisHandle::open(&server.url()).expect("url");
        Self {
            bus: Arc::new(RedisBus::new(handle.clone())),
            store: Arc::new(RedisStore::new(handle)),
            _redis: Some(server),
        }
    }

    /// A dispatcher whose records come from a queue of its own the test does not read.
    fn dispatcher(&self, rules: Vec<Rule>) -> Dispatcher {
        self.dispatcher_on(Arc::new(MemoryQueue::default()), rules)
    }

    /// A dispatcher whose records come from `queue` (a retry's delay is set there).
    fn dispatcher_on(&self, queue: Arc<dyn WorkQueue>, rules: Vec<Rule>) -> Dispatcher {
        Dispatcher::new(self.bus.clone(), self.store.clone(), queue, Routes::new(rules).expect("routes"))
    }
}

/// Each case once on memory and once per Redis shape.
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                use super::{Backends, Shape};
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory() {
                    super::$case(Backends::memory()).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn standalone() {
                    super::$case(Backends::redis(Shape::Standalone).await).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn one_node_cluster() {
                    super::$case(Backends::redis(Shape::OneNodeCluster).await).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn three_masters() {
                    super::$case(Backends::redis(Shape::ThreeMasters).await).await;
                }
            }
        )*
    };
}

/// Published events arrive asynchronously on Redis: wait for `want`, then a moment for any
/// extra one.
async fn settled_count(n: &AtomicUsize, want: usize) -> usize {
    aetherium_tests::wait::until(Duration::from_secs(5), || async { (n.load(Ordering::SeqCst) >= want).then_some(()) })
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    n.load(Ordering::SeqCst)
}

async fn count_published(bus: &dyn EventBus, pattern: &str) -> Arc<AtomicUsize> {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    bus.subscribe(
        pattern,
        handler(move |_| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }),
    )
    .await
    .expect("subscribe");
    n
}

async fn n_replays_of_one_event_cause_one_publish_and_one_side_effect(b: Backends) {
    let comment = Fake::new("comment", Behaviour::Ok);
    let d = b.dispatcher(vec![Rule::new("task.*", comment.clone())]);
    let published = count_published(b.bus.as_ref(), "task.completed").await;
    let record = event("evt-1", "task.completed");
    for _ in 0..5 {
        d.process(&record).await.expect("process");
    }
    assert_eq!(settled_count(&published, 1).await, 1);
    assert_eq!(comment.runs(), 1);
}

async fn a_transient_failure_retries_only_the_failed_route(b: Backends) {
    let ok = Fake::new("slack", Behaviour::Ok);
    let flaky = Fake::new("github", Behaviour::FlakyThenOk(2));
    let d = b.dispatcher(vec![Rule::new("task.completed", ok.clone()), Rule::new("task.completed", flaky.clone())]);
    let store = &b.store;
    let record = event("evt-2", "task.completed");
    assert!(matches!(d.process(&record).await, Err(DispatchError::Retry { .. })));
    assert!(matches!(d.process(&record).await, Err(DispatchError::Retry { .. })));
    d.process(&record).await.expect("third attempt succeeds");
    assert_eq!(flaky.runs(), 3);
    assert_eq!(ok.runs(), 1, "the route that succeeded is not run again");
    assert!(store.get("evt:{evt-2}:done").await.expect("get").is_some(), "marked done only now");
}

async fn a_permanent_failure_is_not_retried(b: Backends) {
    let bad = Fake::new("github", Behaviour::Permanent);
    let d = b.dispatcher(vec![Rule::new("task.failed", bad.clone())]);
    let record = event("evt-3", "task.failed");
    d.process(&record).await.expect("a permanent failure does not fail the record");
    d.process(&record).await.expect("again");
    assert_eq!(bad.runs(), 1);
}

async fn a_requested_retry_delay_hides_the_record_that_long(b: Backends) {
    let limited = Fake::new("github", Behaviour::RetryAfter(Duration::from_secs(60)));
    let queue = Arc::new(MemoryQueue::new(Duration::from_millis(100), 5));
    let d = b.dispatcher_on(queue.clone(), vec![Rule::new("task.completed", limited)]);
    queue.send(&event("evt-4", "task.completed")).await.expect("send");
    let msg = queue.receive(1, Duration::from_secs(1)).await.expect("receive").remove(0);
    assert!(!d.settle(&msg).await);
    // Past the 100 ms visibility timeout, but inside the 60 s the remote asked for.
    assert!(queue.receive(1, Duration::from_millis(400)).await.expect("receive").is_empty());
}

async fn a_panicking_route_fails_only_its_own_record(b: Backends) {
    let route = Fake::new("boom", Behaviour::PanicOn("evt-bad"));
    let queue = Arc::new(MemoryQueue::new(Duration::from_millis(300), 5));
    let d = b.dispatcher_on(queue.clone(), vec![Rule::new("vm.*", route.clone())]);
    let published = count_published(b.bus.as_ref(), "vm.*").await;
    for id in ["evt-a", "evt-bad", "evt-b"] {
        queue.send(&event(id, "vm.created")).await.expect("send");
    }
    let batch = queue.receive(10, Duration::from_secs(1)).await.expect("receive");
    let mut ok = Vec::new();
    for m in &batch {
        ok.push(d.settle(m).await);
    }
    assert_eq!(ok, vec![true, false, true]);
    assert_eq!(settled_count(&published, 3).await, 3, "the event was published before its route panicked");
    assert_eq!(queue.len(), 1, "only the failed record stays on the queue");
    let again = queue.receive(10, Duration::from_secs(5)).await.expect("the failed record again");
    assert!(!d.settle(&again[0]).await);
    assert_eq!(route.runs(), 4, "the panicking route released its claim, so its retry ran it again");
}

async fn a_route_that_panics_keeps_what_the_routes_before_it_did(b: Backends) {
    let first = Fake::new("first", Behaviour::Ok);
    let boom = Fake::new("boom", Behaviour::PanicOn("evt-p"));
    let d = b.dispatcher(vec![Rule::new("vm.*", first.clone()), Rule::new("vm.*", boom.clone())]);
    let store = &b.store;
    let record = event("evt-p", "vm.created");
    for _ in 0..2 {
        assert!(matches!(d.process_isolated("m-1", &record).await, Err(DispatchError::Panicked)));
    }
    assert_eq!(first.runs(), 1, "the route that succeeded is not run again");
    assert_eq!(boom.runs(), 2, "the panicking route was released, so its retry ran it");
    // Marked done, not left `running` for two minutes (which would also stop a rerun, but
    // would hold every retry of the record back as locked).
    assert_eq!(store.get("evt:{evt-p}:route:first").await.expect("get").as_deref(), Some("done"));
}

async fn a_route_another_dispatcher_is_running_is_not_run_twice(b: Backends) {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let held = Fake::new("deploy", Behaviour::Held(gate.clone()));
    // Two Lambda instances holding the same record: one shared store.
    let instance = || b.dispatcher(vec![Rule::new("task.*", held.clone())]);
    let (a, b) = (instance(), instance());
    let record = event("evt-held", "task.completed");
    let first = tokio::spawn({
        let record = record.clone();
        async move { a.process(&record).await.map(|p| p.outcome) }
    });
    let started = aetherium_tests::wait::until(Duration::from_secs(5), || {
        let held = held.clone();
        async move { (held.runs() == 1).then_some(()) }
    })
    .await;
    assert!(started.is_some(), "the first dispatcher is running the route");
    match b.process(&record).await {
        Err(e @ DispatchError::Retry { .. }) => {
            assert_eq!(e.retry_after(), Some(Duration::from_secs(10)), "the second retries later")
        }
        other => panic!("the second dispatcher must not run the route: {other:?}"),
    }
    gate.add_permits(1);
    assert_eq!(first.await.expect("join").expect("the first finishes"), Outcome::Dispatched);
    assert_eq!(b.process(&record).await.expect("the retry").outcome, Outcome::AlreadyDone);
    assert_eq!(held.runs(), 1);
}

async fn a_claim_check_is_resolved_and_a_missing_claim_fails(b: Backends) {
    let queue = Arc::new(MemoryQueue::default());
    let (d, bus, store) = (b.dispatcher_on(queue.clone(), vec![]), &b.bus, &b.store);
    let blob = Arc::new(AtomicUsize::new(0));
    let seen = blob.clone();
    bus.subscribe(
        "custom.big",
        handler(move |event| {
            seen.store(event.data_str("blob").map_or(0, str::len), Ordering::SeqCst);
            async { Ok(()) }
        }),
    )
    .await
    .expect("subscribe");
    let data = json!({"blob": "x".repeat(300 * 1024)}).as_object().cloned().unwrap_or_default();
    let big = Event::new("custom.big", "test", data).to_json();
    claim::enqueue(queue.as_ref(), store.as_ref(), &big).await.expect("enqueue");
    let msg = queue.receive(1, Duration::from_secs(1)).await.expect("receive").remove(0);
    assert!(msg.body.len() < 200);
    assert_eq!(d.process(&msg.body).await.expect("resolved").topic, "custom.big");
    let whole = aetherium_tests::wait::until(Duration::from_secs(5), || async {
        (blob.load(Ordering::SeqCst) == 300 * 1024).then_some(())
    })
    .await;
    assert!(whole.is_some(), "the whole event was published");
    let err = d.process(r#"{"claim_check":"claim:gone"}"#).await.expect_err("missing");
    assert!(err.to_string().contains("claim:gone"), "{err}");
}

async fn a_poison_message_reaches_the_dead_letter_queue_and_its_neighbours_are_unaffected(b: Backends) {
    let client = sqs::client();
    let (url, dlq_url) = sqs::create_queue_with_dlq(&client, 1, 2).await;
    let queue: Arc<dyn WorkQueue> = Arc::new(SqsQueue::with_client(client.clone(), url));

    let d = b.dispatcher_on(queue.clone(), vec![]);
    let published = count_published(b.bus.as_ref(), "task.*").await;
    queue.send(&event("good-1", "task.started")).await.expect("send");
    queue.send("{\"this is\": \"poison\"}").await.expect("send");
    queue.send(&event("good-2", "task.completed")).await.expect("send");

    let (stop_tx, stop_rx) = watch::channel(false);
    let loop_task = tokio::spawn(d.run_loop(stop_rx));
    let dlq = SqsQueue::with_client(client, dlq_url);
    let dead = aetherium_tests::wait::until(Duration::from_secs(20), || {
        let dlq = &dlq;
        async move {
            let got = dlq.receive(10, Duration::from_secs(1)).await.ok()?;
            (!got.is_empty()).then_some(got)
        }
    })
    .await
    .expect("the poison message reaches the dead-letter queue");
    let _ = stop_tx.send(true);
    loop_task.await.expect("loop stops");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "{\"this is\": \"poison\"}");
    assert_eq!(settled_count(&published, 2).await, 2, "both neighbours were dispatched once");
}

on_every_backend!(
    n_replays_of_one_event_cause_one_publish_and_one_side_effect,
    a_transient_failure_retries_only_the_failed_route,
    a_permanent_failure_is_not_retried,
    a_requested_retry_delay_hides_the_record_that_long,
    a_panicking_route_fails_only_its_own_record,
    a_route_that_panics_keeps_what_the_routes_before_it_did,
    a_route_another_dispatcher_is_running_is_not_run_twice,
    a_claim_check_is_resolved_and_a_missing_claim_fails,
    a_poison_message_reaches_the_dead_letter_queue_and_its_neighbours_are_unaffected,
);

#[test]
fn each_log_line_of_a_record_carries_its_event_id_even_behind_a_claim_check() {
    let (captured, _guard) = aetherium_tests::logs::capture(tracing::Level::INFO);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let queue = Arc::new(MemoryQueue::default());
        let (d, _, store) = dispatcher(queue.clone(), vec![Rule::new("custom.*", Fake::new("route", Behaviour::Ok))]);
        let data = json!({"blob": "x".repeat(300 * 1024)}).as_object().cloned().unwrap_or_default();
        let big = Event::new("custom.big", "test", data).with_id("evt-claimed").to_json();
        claim::enqueue(queue.as_ref(), store.as_ref(), &big).await.expect("enqueue");
        let msg = queue.receive(1, Duration::from_secs(1)).await.expect("receive").remove(0);
        d.process_isolated(&msg.id, &msg.body).await.expect("dispatched");
    });
    let text = captured.text();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    for message in ["route succeeded", "event dispatched"] {
        let line =
            lines.iter().find(|l| l["fields"]["message"] == message).unwrap_or_else(|| panic!("{message}: {text}"));
        assert_eq!(line["span"]["event_id"], "evt-claimed", "{line}");
    }
}

/// A large record whose route keeps failing outlives the dead-letter queue: each failure
/// renews its claim for CLAIM_TTL, so a redrive on day 13 finds it. The repro of the review:
/// the claim is made to expire in a minute (as on day 5 before), the route fails, and the
/// claim lives on; then the route recovers and the event is dispatched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_large_records_claim_is_renewed_past_the_dead_letter_queues_retention() {
    use aetherium::backends::queue::claim::{Claim, DEAD_LETTER_RETENTION};
    let b = Backends::redis(Shape::Standalone).await;
    let queue = Arc::new(MemoryQueue::default());
    let route = Fake::new("deploy", Behaviour::FlakyThenOk(1));
    let d = b.dispatcher_on(queue.clone(), vec![Rule::new("task.completed", route.clone())]);
    let data = json!({"task_id": "big", "log": "x".repeat(300 * 1024)}).as_object().cloned().unwrap_or_default();
    let big = Event::new("task.completed", "test", data).with_id("big-1").to_json();
    claim::enqueue(queue.as_ref(), b.store.as_ref(), &big).await.expect("enqueue");
    let msg = queue.receive(1, Duration::from_secs(1)).await.expect("receive").remove(0);
    let key = Claim::parse(&msg.body).expect("a claim").expect("a claim").key;
    let redis = b._redis.as_ref().expect("redis");
    redis.cli(0, &["PEXPIRE", &key, "60000"]);
    d.process(&msg.body).await.expect_err("the route fails once");
    let ttl: u64 = redis.cli(0, &["PTTL", &key]).trim().parse().expect("a TTL");
    assert!(ttl > DEAD_LETTER_RETENTION.as_millis() as u64, "renewed past the DLQ's 14 days: {ttl} ms");
    assert_eq!(d.process(&msg.body).await.expect("dispatched").id, "big-1");
    assert_eq!(route.runs(), 2);
}
