//! Faults, bounded in time: Redis killed under load, the queue down, GitHub failing, slow or
//! rate limiting. Nothing acknowledged is lost, nothing happens twice, nothing is dropped
//! silently: what cannot be done reaches the dead-letter queue.

use aetherium::Event;
use aetherium::backends::queue::{MAX_RECEIVES, SqsQueue, WorkQueue};
use aetherium::backends::redis_conn::RedisHandle;
use aetherium::edge::api::Endpoint;
use aetherium_tests::app::{GITHUB_SECRET, SLACK_SECRET};
use aetherium_tests::github_fake::Comments;
use aetherium_tests::redis_server::Shape;
use aetherium_tests::{RedisServer, Running, TestApp, free_port, sqs};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

const COMMENTS: &str = "/repos/o/r/issues/1/comments";

async fn queue_with_dlq(visibility_secs: u32, max_receives: u32) -> (Arc<SqsQueue>, SqsQueue) {
    let client = sqs::client();
    let (url, dlq) = sqs::create_queue_with_dlq(&client, visibility_secs, max_receives).await;
    (Arc::new(SqsQueue::with_client(client.clone(), url)), SqsQueue::with_client(client, dlq))
}

fn task(id: &str) -> String {
    let data = json!({"task_id": id, "pull_request": "https://github.com/o/r/pull/1"});
    Event::new("task.completed", "platform", data.as_object().cloned().unwrap_or_default()).with_id(id).to_json()
}

async fn drain_dlq(dlq: &SqsQueue, want: usize) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while got.len() < want && tokio::time::Instant::now() < deadline {
        for m in dlq.receive(10, Duration::from_secs(1)).await.expect("receive") {
            dlq.delete(&m.receipt).await.expect("delete");
            got.push(m.body);
        }
    }
    got
}

/// Standalone: the server is killed and restarts empty. A cluster: one master (not the
/// node the URL names) is killed and restarts with its slots, empty. The queue is set as the
/// template sets it (visibility 360 s, maxReceiveCount 7): a record that failed while Redis
/// was down comes back after its retry delay, not after the visibility timeout.
async fn redis_killed_mid_load_loses_no_acknowledged_event_and_doubles_no_comment(mut redis: RedisServer) {
    let victim = if redis.shape() == Shape::ThreeMasters { 1 } else { 0 };
    let github = aetherium_tests::stand_in::start().await;
    let comments = Comments::default();
    for verb in ["GET", "POST"] {
        Mock::given(method(verb)).and(path(COMMENTS)).respond_with(comments.clone()).mount(&github).await;
    }
    let (queue, dlq) = queue_with_dlq(TEMPLATE_VISIBILITY, MAX_RECEIVES).await;
    let handle = RedisHandle::open(&redis.url()).expect("url");
    let uri = github.uri();
    let t = TestApp::builder()
        .env(&[
            ("GITHUB_API_URL", &uri),
            ("GITHUB_TOKEN", "ghp"),
            ("AETHERIUM_API_TOKEN", "tok"),
            ("REDIS_URL", &redis.url()),
        ])
        .redis(handle)
        .queue(queue.clone())
        .builtin()
        .build()
        .await;
    let running = Running::start(t.app).await;
    let http = aetherium::backends::http_client::client();
    let mut acknowledged = Vec::new();
    let mut restarted = None;
    for i in 0..40 {
        if i == 15 {
            redis.kill_node(victim);
        }
        if i == 25 {
            redis.restart_node(victim).await;
            restarted = Some((std::time::Instant::now(), comments.bodies().len()));
        }
        let body = json!({"id": format!("evt-{i}"), "type": "task.completed", "data": {"task_id": format!("T{i}"), "pull_request": "https://github.com/o/r/pull/1"}});
        let resp = http.post(running.url("/api/v1/events")).bearer_auth("tok").json(&body).send().await.expect("post");
        if resp.status() == 202 {
            acknowledged.push(format!("T{i}"));
        } else {
            assert_eq!(resp.status(), 503, "never a 2xx that was not queued");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(acknowledged.len() >= 30, "the ingest does not need Redis: {}", acknowledged.len());
    // A route claimed just before the kill, whose release could not be written, waits out
    // its claim (60 s) on a cluster's surviving masters: allow that, and a retry. Without the
    // retry delays the failed records would wait out the 360 s visibility timeout.
    // Dispatch resumes when the first comment after the restart is posted (every event
    // posted from the restart on failed once too: the breaker was still cooling down).
    let (back, before) = restarted.expect("restarted");
    let resumed = std::sync::Mutex::new(None);
    let done = aetherium_tests::wait::until(Duration::from_secs(120), || {
        let n = comments.bodies().len();
        let mut resumed = resumed.lock().expect("lock");
        if n > before && resumed.is_none() {
            *resumed = Some(back.elapsed());
        }
        let want = acknowledged.len();
        async move { (n >= want).then_some(()) }
    })
    .await;
    let resumed = resumed.into_inner().expect("lock");
    eprintln!(
        "{:?}: dispatch resumed {resumed:?} and every acknowledged event commented {:?} after Redis answered again (GitHub's configured rate paces the comments)",
        redis.shape(),
        back.elapsed()
    );
    assert!(resumed.is_some_and(|r| r < Duration::from_secs(30)), "resumed {resumed:?} after Redis came back");
    tokio::time::sleep(Duration::from_secs(2)).await;
    running.stop().await;
    let mut per_task: BTreeMap<String, usize> = BTreeMap::new();
    for b in comments.bodies() {
        let id = b.split_whitespace().nth(2).unwrap_or_default().to_owned();
        *per_task.entry(id).or_default() += 1;
    }
    assert!(done.is_some(), "every acknowledged event commented within 120 s: {per_task:?}");
    for t in &acknowledged {
        assert_eq!(per_task.get(t), Some(&1), "{t}: exactly one comment; all: {per_task:?}");
    }
    assert!(dlq.receive(10, Duration::ZERO).await.expect("receive").is_empty(), "nothing dead-lettered");
}

aetherium_tests::per_shape!(redis_killed_mid_load_loses_no_acknowledged_event_and_doubles_no_comment);

/// template.yaml's `VisibilityTimeout` for the work queue.
const TEMPLATE_VISIBILITY: u32 = 360;

/// A ten-minute Redis outage, shortened: the retry delays are the default's divided by 60 (in
/// whole seconds, as SQS takes them: 1, 1, 1, 5, 20) and Redis is down 10 s, on a queue set
/// as the template sets it. Records fail at every receive while Redis is down; none reaches
/// the dead-letter queue, and each comments once when Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_redis_outage_sends_nothing_to_the_dead_letter_queue() {
    let mut redis = RedisServer::start().await;
    let github = aetherium_tests::stand_in::start().await;
    let comments = Comments::default();
    for verb in ["GET", "POST"] {
        Mock::given(method(verb)).and(path(COMMENTS)).respond_with(comments.clone()).mount(&github).await;
    }
    let (queue, dlq) = queue_with_dlq(TEMPLATE_VISIBILITY, MAX_RECEIVES).await;
    let uri = github.uri();
    let t = TestApp::builder()
        .env(&[("GITHUB_API_URL", &uri), ("GITHUB_TOKEN", "ghp"), ("AETHERIUM_QUEUE_RETRY_SECONDS", "1,1,1,5,20")])
        .redis(RedisHandle::open(&redis.url()).expect("url"))
        .queue(queue.clone())
        .builtin()
        .build()
        .await;
    let ids: Vec<String> = (0..10).map(|i| format!("outage-{i}")).collect();
    for id in &ids {
        queue.send(&task(id)).await.expect("send");
    }
    redis.kill();
    let (stop, stopped) = watch::channel(false);
    let worker = tokio::spawn(t.app.dispatcher().run_loop(stopped));
    tokio::time::sleep(Duration::from_secs(10)).await;
    redis.restart().await;
    let back = std::time::Instant::now();
    let done = aetherium_tests::wait::until(Duration::from_secs(90), || {
        let c = comments.clone();
        async move { (c.bodies().len() >= 10).then_some(()) }
    })
    .await;
    eprintln!("ten records commented {:?} after Redis answered again", back.elapsed());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = stop.send(true);
    worker.await.expect("loop");
    assert!(done.is_some(), "every record commented once Redis was back: {:?}", comments.bodies());
    let mut per_task: BTreeMap<String, usize> = BTreeMap::new();
    for b in comments.bodies() {
        *per_task.entry(b.split_whitespace().nth(2).unwrap_or_default().to_owned()).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(per_task.get(id), Some(&1), "{id}: exactly one comment; all: {per_task:?}");
    }
    assert!(dlq.receive(10, Duration::from_secs(1)).await.expect("receive").is_empty(), "nothing dead-lettered");
}

#[tokio::test]
async fn with_the_queue_down_every_ingest_answers_503() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let down = Arc::new(SqsQueue::with_client(sqs::client_at(&dead), format!("{dead}/1/q")));
    let t = TestApp::builder()
        .env(&[("AETHERIUM_API_TOKEN", "tok"), SLACK_SECRET, GITHUB_SECRET])
        .queue(down)
        .build()
        .await;
    let ev = r#"{"type": "task.completed", "data": {}}"#;
    assert_eq!(t.internal(Endpoint::Events, Some("tok"), ev).await.status, 503);
    let mention = aetherium_tests::fixtures::slack("event_callback-app_mention.json");
    assert_eq!(t.slack("application/json", &mention).await.status, 503);
    let push = aetherium_tests::fixtures::github("push");
    assert_eq!(t.github("push", "down-1", &push).await.status, 503);
    assert_eq!(t.store.get("delivery:github:down-1").await.expect("get"), None, "not recorded as delivered");
    // Nor its signed bytes: GitHub's redelivery of them, or a new id for them, is not a replay.
    let signed =
        aetherium::model::fingerprint::Fingerprint::of(&[aetherium_tests::fixtures::sign(&push).as_bytes()]).hex();
    assert_eq!(t.store.get(&format!("delivery:github:body:{signed}")).await.expect("get"), None, "claim released");
    assert_eq!(t.store.get("delivery:slack:Ev123ABC456").await.expect("get"), None, "not recorded as delivered");
}

/// GitHub failing in each way: the record is retried within its receives, then dead-lettered.
async fn github_failure_reaches_the_dlq(respond: ResponseTemplate, timeout_ms: u64) -> usize {
    let github = aetherium_tests::stand_in::start().await;
    let hits = Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(respond)
        .named("comments")
        .mount_as_scoped(&github)
        .await;
    let (queue, dlq) = queue_with_dlq(1, 2).await;
    let uri = github.uri();
    let t = TestApp::builder()
        .env(&[("GITHUB_API_URL", &uri), ("GITHUB_TOKEN", "ghp"), ("AETHERIUM_QUEUE_RETRY_SECONDS", "1")])
        .yaml(&format!("integrations:\n  github:\n    timeout_ms: {timeout_ms}\n"))
        .queue(queue.clone())
        .builtin()
        .build()
        .await;
    queue.send(&task("doomed")).await.expect("send");
    let (stop, stopped) = watch::channel(false);
    let worker = tokio::spawn(t.app.dispatcher().run_loop(stopped));
    let dead = drain_dlq(&dlq, 1).await;
    let _ = stop.send(true);
    worker.await.expect("loop");
    assert_eq!(dead.len(), 1, "the record reached the dead-letter queue");
    assert!(dead[0].contains("\"doomed\""));
    hits.received_requests().await.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_500s_are_retried_then_dead_lettered() {
    let calls = github_failure_reaches_the_dlq(ResponseTemplate::new(500), 10_000).await;
    // 3 attempts inside the client, for each of the 2 receives.
    assert_eq!(calls, 6, "retried within the limits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_429s_delay_the_retry_then_dead_letter() {
    let calls =
        github_failure_reaches_the_dlq(ResponseTemplate::new(429).insert_header("retry-after", "1"), 10_000).await;
    assert_eq!(calls, 2, "one call per receive: a 429 is not hammered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_timeouts_are_retried_then_dead_lettered() {
    let slow = ResponseTemplate::new(200).set_body_json(json!([])).set_delay(Duration::from_secs(3));
    let calls = github_failure_reaches_the_dlq(slow, 200).await;
    assert_eq!(calls, 6, "each receive tries 3 times, each cut at 200 ms");
}

/// Redis accepts connections and never answers (its packets dropped), not killed: every
/// call would wait for its timeouts. Slack must still get its answer within 3 s and GitHub
/// within 10 s, every acknowledged webhook must be queued, and once Redis answers again
/// (the breaker probes by itself) the dispatcher publishes all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_never_answers_keeps_slack_under_3_s_github_under_10_s_and_loses_nothing() {
    use std::time::Instant;
    let hole = aetherium_tests::blackhole::BlackHole::start().await;
    let api = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .and(path("/auth.test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&api)
        .await;
    let (queue, _dlq) = queue_with_dlq(1, 50).await;
    let handle = RedisHandle::open(&hole.redis_url()).expect("url");
    let (uri, url) = (api.uri(), hole.redis_url());
    let t = TestApp::builder()
        .env(&[("REDIS_URL", &url), SLACK_SECRET, ("SLACK_BOT_TOKEN", "xoxb"), ("SLACK_API_URL", &uri), GITHUB_SECRET])
        .redis(handle)
        .queue(queue.clone())
        .builtin()
        .build()
        .await;

    // The first request of a fresh instance pays the one deadline; the breaker spares the rest.
    let mention = aetherium_tests::fixtures::slack("event_callback-app_mention.json");
    let started = Instant::now();
    let resp = t.slack("application/json", &mention).await;
    let took = started.elapsed();
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    assert!(took < Duration::from_secs(3), "a Slack event answered in {took:?}");
    for (command, want) in [("aetherium-status", "Event Bus: ❌"), ("aetherium-vm-list", "unavailable")] {
        let form = format!("command=%2F{command}&text=&user_id=U1&user_name=dev&channel_id=C1&trigger_id=t");
        let started = Instant::now();
        let resp = t.slack("application/x-www-form-urlencoded", form.as_bytes()).await;
        let took = started.elapsed();
        let text = resp.text();
        assert_eq!(resp.status, 200, "{text}");
        assert!(text.contains(want), "/{command}: {text}");
        assert!(took < Duration::from_secs(3), "/{command} answered in {took:?}");
    }
    // Past the cool-down the breaker lets one call probe again: still within budget.
    tokio::time::sleep(aetherium::backends::redis_conn::COOL_DOWN + Duration::from_millis(200)).await;
    let push = aetherium_tests::fixtures::github("push");
    let started = Instant::now();
    let resp = t.github("push", "blackhole-1", &push).await;
    let took = started.elapsed();
    assert_eq!(resp.status, 202, "{:?}", resp.body);
    assert!(took < Duration::from_secs(10), "a GitHub delivery answered in {took:?}");
    assert!(took < Duration::from_secs(3), "one probe costs one deadline: {took:?}");

    // Redis answers again: both acknowledged webhooks are published.
    let redis = RedisServer::start().await;
    let client = redis::Client::open(redis.url()).expect("client");
    let (mut sink, mut published) = client.get_async_pubsub().await.expect("pubsub").split();
    sink.psubscribe("*").await.expect("psubscribe");
    hole.heal(redis.port());
    let (stop, stopped) = watch::channel(false);
    let worker = tokio::spawn(t.app.dispatcher().run_loop(stopped));
    let mut topics = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while !(topics.contains("github.push") && topics.contains("slack.event.app_mention")) {
        use futures_util::StreamExt;
        let Ok(Some(msg)) = tokio::time::timeout_at(deadline, published.next()).await else { break };
        topics.insert(msg.get_channel_name().to_owned());
    }
    let _ = stop.send(true);
    worker.await.expect("loop");
    assert!(
        topics.contains("github.push") && topics.contains("slack.event.app_mention"),
        "every acknowledged webhook was published once Redis answered: {topics:?}"
    );
}

/// An SQS endpoint that accepts and never answers: a send fails within the operation
/// timeout (the ingest then answers 503) instead of holding the function until Lambda
/// kills it.
#[tokio::test]
async fn an_sqs_endpoint_that_never_answers_fails_a_send_within_its_operation_timeout() {
    let hole = aetherium_tests::blackhole::BlackHole::start().await;
    let url = hole.http_url();
    let queue = SqsQueue::with_client(sqs::client_at(&url), format!("{url}/123456789012/q"));
    let started = std::time::Instant::now();
    let sent = tokio::time::timeout(Duration::from_secs(10), queue.send("{}")).await;
    let took = started.elapsed();
    let outcome = sent.expect("the send gave up by itself");
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(took <= aetherium::backends::queue::sqs::OPERATION_TIMEOUT + Duration::from_millis(500), "{took:?}");
}

/// Calls that arrive while the breaker's probe is out wait for its answer: the records a
/// dispatcher retries together after the cool-down all go through once Redis is back,
/// instead of one probing and the rest failing fast for another retry step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_made_during_the_breakers_probe_go_through_when_redis_is_back() {
    use aetherium::backends::redis_conn::COOL_DOWN;
    use aetherium::backends::store::{RedisStore, Store};
    let mut redis = RedisServer::start().await;
    let store = Arc::new(RedisStore::new(RedisHandle::open(&redis.url()).expect("url")));
    store.set("k", "v", None).await.expect("Redis answers");
    redis.kill();
    assert!(store.get("k").await.is_err(), "Redis is down");
    redis.restart().await;
    tokio::time::sleep(COOL_DOWN + Duration::from_millis(100)).await;
    let calls = (0..10).map(|i| {
        let store = store.clone();
        async move { store.set(&format!("k{i}"), "v", None).await }
    });
    let outcomes = futures_util::future::join_all(calls).await;
    let failed: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(failed.is_empty(), "every call after the cool-down went through: {failed:?}");
}
