//! GitHub redelivery against a stand-in for api.github.com and a real Redis: which deliveries
//! are asked for again, pagination and the watermark, rate limits, the per-run and per-GUID
//! caps, and end to end through the runner: a delivery refused while SQS was down reaches the
//! bus exactly once after the job has GitHub send it again.

use aetherium::backends::bus::RedisBus;
use aetherium::backends::queue::SqsQueue;
use aetherium::backends::redis_conn::RedisHandle;
use aetherium::backends::store::RedisStore;
use aetherium::engine::redeliver::{Redeliverer, Status, WATERMARK_KEY};
use aetherium::observe::activity::{Entry, Level};
use aetherium_tests::fixtures::{self, sign};
use aetherium_tests::github_app::{AppKey, ValidJwt, generate_app_key};
use aetherium_tests::github_fake::{Deliveries, delivery};
use aetherium_tests::{RedisServer, Running, TestApp, free_port, sqs};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const APP_DELIVERIES: &str = "/app/hook/deliveries";

fn ago(secs: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::seconds(secs)
}

/// GitHub's App webhook deliveries, answering only requests signed with the App's JWT and
/// asking for 100 a page.
async fn app_deliveries(server: &MockServer, key: &AppKey) -> Deliveries {
    let deliveries = Deliveries::default();
    Mock::given(method("GET"))
        .and(path(APP_DELIVERIES))
        .and(query_param("per_page", "100"))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(ValidJwt::of(key))
        .respond_with(deliveries.clone())
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/app/hook/deliveries/\d+/attempts$"))
        .and(ValidJwt::of(key))
        .respond_with(deliveries.clone())
        .mount(server)
        .await;
    deliveries
}

/// An app on `redis` (bus and store) and a memory queue, without integrations.
async fn redis_app(redis: &RedisServer, env: &[(&str, &str)]) -> TestApp {
    let handle = RedisHandle::open(&redis.url()).expect("url");
    TestApp::builder().env(env).redis(handle).build().await
}

/// The job as a GitHub App against `server`, with `extra` settings.
async fn app_job(
    server: &MockServer,
    redis: &RedisServer,
    key: &AppKey,
    extra: &[(&str, &str)],
) -> (TestApp, Redeliverer) {
    let uri = server.uri();
    let mut env =
        vec![("GITHUB_API_URL", uri.as_str()), ("GITHUB_APP_ID", "12345"), ("GITHUB_APP_PRIVATE_KEY", &key.pem)];
    env.extend_from_slice(extra);
    let app = redis_app(redis, &env).await;
    let job = app.app.redeliverer().expect("built").expect("on for a GitHub App");
    (app, job)
}

async fn activity(t: &TestApp) -> Vec<Entry> {
    t.app.activity().recent(100).await.expect("activity log")
}

async fn metrics(t: &TestApp) -> String {
    t.app.metrics().render().await.expect("render")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_failed_delivery_our_ingest_never_saw_is_redelivered() {
    let redis = RedisServer::start().await;
    let server = aetherium_tests::stand_in::start().await;
    let key = generate_app_key();
    let deliveries = app_deliveries(&server, &key).await;
    // Oldest first (the fake lists the newest first, as GitHub does), all within the last
    // minute, so that the next run lists them again.
    deliveries.push(delivery(10, "guid-ok", ago(50), 202));
    // Failed, then delivered by a redelivery (by hand, say): settled, whatever the ingest recalls.
    deliveries.push(delivery(15, "guid-retried", ago(48), 500));
    let mut retried = delivery(16, "guid-retried", ago(45), 202);
    retried["redelivery"] = true.into();
    deliveries.push(retried);
    deliveries.push(delivery(20, "guid-unseen", ago(40), 503));
    deliveries.push(delivery(30, "guid-slow", ago(30), 0));
    for (id, secs) in [(41, 25), (42, 20), (43, 10)] {
        let mut attempt = delivery(id, "guid-tired", ago(secs), 502);
        attempt["redelivery"] = (id > 41).into();
        deliveries.push(attempt);
    }
    let (app, job) = app_job(&server, &redis, &key, &[]).await;
    // Our ingest queued guid-slow: GitHub gave up waiting for our answer, nothing was lost.
    app.store.set("delivery:github:guid-slow", "queued", None).await.expect("set");

    let report = job.run().await.expect("a run");
    assert_eq!(deliveries.attempts(), [20], "one redelivery, of the delivery nobody received: {report:?}");
    assert_eq!(
        (report.status, report.redelivered, report.delivered, report.accepted, report.gave_up),
        (Status::Done, 1, 2, 1, 1),
        "{report:?}"
    );
    let log = activity(&app).await;
    let asked = log.iter().find(|e| e.event_id.as_deref() == Some("guid-unseen")).expect("an entry for the GUID");
    assert_eq!((asked.component.as_str(), asked.level), ("github", Level::Info));
    assert!(
        asked.message.contains("guid-unseen") && asked.message.contains("push") && asked.message.contains("attempt 2"),
        "{asked:?}"
    );
    let tired = log.iter().find(|e| e.event_id.as_deref() == Some("guid-tired")).expect("an entry for the GUID");
    assert_eq!(tired.level, Level::Error);
    assert!(tired.message.contains("gave up") && tired.message.contains("3 attempts"), "{tired:?}");
    let text = metrics(&app).await;
    assert!(text.contains("# TYPE github_redeliveries_total counter\n"), "{text}");
    assert!(text.contains("github_redeliveries_total{outcome=\"ok\"} 1\n"), "{text}");
    assert!(text.contains("github_redeliveries_total{outcome=\"gave_up\"} 1\n"), "{text}");
    assert!(
        text.contains("integration_requests_total{integration=\"github\",method=\"redeliver\",outcome=\"ok\"} 1\n"),
        "the shared client counted the call: {text}"
    );

    // The same deliveries listed again (GitHub has not listed its new attempt yet): nothing
    // new to do for any GUID.
    let report = job.run().await.expect("a second run");
    assert_eq!(deliveries.attempts(), [20]);
    assert_eq!(
        (report.listed, report.waiting, report.delivered, report.accepted, report.gave_up),
        (8, 2, 2, 1, 0),
        "{report:?}"
    );
    assert_eq!(activity(&app).await.iter().filter(|e| e.message.contains("gave up")).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_configured_repository_or_organization_hook_is_used() {
    let redis = RedisServer::start().await;
    for (hook, base) in [
        ("octo/hello-world#7", "/repos/octo/hello-world/hooks/7/deliveries"),
        ("org:octo-org#9", "/orgs/octo-org/hooks/9/deliveries"),
    ] {
        let server = aetherium_tests::stand_in::start().await;
        let deliveries = Deliveries::default();
        for verb in ["GET", "POST"] {
            Mock::given(method(verb))
                .and(path_regex(format!("^{base}(/\\d+/attempts)?$")))
                .and(header("authorization", "Bearer ghp_hooks_token"))
                .respond_with(deliveries.clone())
                .mount(&server)
                .await;
        }
        deliveries.push(delivery(5, &format!("guid-{hook}"), ago(120), 500));
        deliveries.push(delivery(6, "guid-fine", ago(60), 200));
        let uri = server.uri();
        let app = redis_app(
            &redis,
            &[("GITHUB_API_URL", &uri), ("GITHUB_TOKEN", "ghp_hooks_token"), ("GITHUB_REDELIVERY_HOOK", hook)],
        )
        .await;
        let job = app.app.redeliverer().expect("built").expect("on with a hook");
        assert_eq!(job.watching(), hook);
        let report = job.run().await.expect("a run");
        assert_eq!(deliveries.attempts(), [5], "{hook}: {report:?}");
        let posted = server.received_requests().await.expect("recorded");
        assert!(posted.iter().any(|r| r.method.as_str() == "POST" && r.url.path() == format!("{base}/5/attempts")));
        redis_flush(&redis).await;
    }
    // A token with no hook named has nothing to watch: the job is off, and says why.
    let app = redis_app(&redis, &[("GITHUB_TOKEN", "ghp_x")]).await;
    assert!(app.app.redeliverer().expect("built").is_none());
    let why = app.app.redelivery_off().expect("a reason");
    assert!(why.contains("GITHUB_REDELIVERY_HOOK"), "{why}");
    let off = redis_app(
        &redis,
        &[("GITHUB_TOKEN", "ghp_x"), ("GITHUB_REDELIVERY_HOOK", "o/r#1"), ("GITHUB_REDELIVERY_ENABLED", "false")],
    )
    .await;
    assert!(off.app.redeliverer().expect("built").is_none(), "disabled");
}

async fn redis_flush(redis: &RedisServer) {
    let client = redis::Client::open(redis.url()).expect("url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
    let () = redis::cmd("FLUSHALL").query_async(&mut conn).await.expect("flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_followed_and_the_watermark_keeps_the_next_run_off_old_deliveries() {
    let redis = RedisServer::start().await;
    let server = aetherium_tests::stand_in::start().await;
    let key = generate_app_key();
    let deliveries = app_deliveries(&server, &key).await;
    // 150 deliveries, 2 s apart, the newest 5 minutes ago: two pages of 100 and 50.
    for i in 0..150u64 {
        let id = 1000 + i;
        let failed = id == 1010 || id == 1120;
        deliveries.push(delivery(
            id,
            &format!("guid-{id}"),
            ago(300 + 2 * (150 - i as i64)),
            if failed { 503 } else { 202 },
        ));
    }
    let (app, job) = app_job(&server, &redis, &key, &[]).await;

    let report = job.run().await.expect("first run");
    assert_eq!(deliveries.pages(), [None, Some("v1_100".to_owned())], "both pages, the second by its cursor");
    let mut asked = deliveries.attempts();
    asked.sort_unstable();
    assert_eq!(asked, [1010, 1120], "the failed delivery of each page: {report:?}");
    assert_eq!((report.pages, report.listed), (2, 150));
    let watermark: i64 = app.store.get(WATERMARK_KEY).await.expect("get").expect("a watermark").parse().expect("unix");
    assert!((ago(62).timestamp()..=ago(58).timestamp()).contains(&watermark), "a minute back: {watermark}");

    // The first page already reaches past the watermark: no second page, no redelivery.
    let report = job.run().await.expect("second run");
    assert_eq!(deliveries.pages().len(), 3, "one more request, for the first page only: {:?}", deliveries.pages());
    assert_eq!(deliveries.attempts().len(), 2);
    assert_eq!((report.pages, report.listed, report.redelivered), (1, 0, 0), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_ends_the_run_with_nothing_lost_and_the_next_run_finishes() {
    let redis = RedisServer::start().await;
    let server = aetherium_tests::stand_in::start().await;
    let key = generate_app_key();
    let deliveries = app_deliveries(&server, &key).await;
    deliveries.push(delivery(1, "guid-a", ago(600), 503));
    deliveries.push(delivery(2, "guid-b", ago(500), 503));
    deliveries.push(delivery(3, "guid-c", ago(400), 503));
    deliveries.push(delivery(4, "guid-fine", ago(300), 202));
    let (app, job) = app_job(&server, &redis, &key, &[]).await;
    // Another instance on the same Redis: a concurrent or later invocation.
    let (_other_app, other_job) = app_job(&server, &redis, &key, &[]).await;
    let requests = || async { server.received_requests().await.expect("recorded").len() };

    // A secondary rate limit on the listing: nothing is asked, the watermark is not set.
    // Mounted for good, not scoped: wiremock 0.6 deactivates the wrong mock when a scoped one
    // with a priority is dropped. `up_to_n_times` ends them, `verify` checks them at the end.
    Mock::given(method("GET"))
        .and(path(APP_DELIVERIES))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("retry-after", "2")
                .set_body_json(serde_json::json!({"message": "You have exceeded a secondary rate limit."})),
        )
        .with_priority(1)
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let report = job.run().await.expect("ends cleanly");
    assert_eq!((report.status, report.retry_after_secs), (Status::RateLimited, Some(2)), "{report:?}");
    assert!(deliveries.attempts().is_empty());
    assert_eq!(app.store.get(WATERMARK_KEY).await.expect("get"), None, "the watermark did not move");
    // GitHub's wait holds the next run, and the other instance's, without a request to GitHub.
    let before = requests().await;
    for run in [&job, &other_job] {
        let held = run.run().await.expect("ends cleanly");
        assert_eq!(held.status, Status::RateLimited, "{held:?}");
        assert!(held.retry_after_secs.is_some_and(|s| s <= 2), "what is left of the wait: {held:?}");
    }
    assert_eq!(requests().await, before, "no call reaches GitHub before its Retry-After passes");
    tokio::time::sleep(Duration::from_millis(2100)).await;

    // A 429 on the second redelivery: the first is done, the rest wait.
    Mock::given(method("POST"))
        .and(path("/app/hook/deliveries/2/attempts"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "2"))
        .with_priority(1)
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let report = job.run().await.expect("ends cleanly");
    assert_eq!((report.status, report.redelivered), (Status::RateLimited, 1), "{report:?}");
    assert_eq!(deliveries.attempts(), [1]);
    let log = activity(&app).await;
    assert!(log.iter().any(|e| e.level == Level::Warn && e.message.contains("rate limit")), "{log:?}");
    assert!(metrics(&app).await.contains("github_redeliveries_total{outcome=\"rate_limited\"} 1\n"));
    let before = requests().await;
    let held = other_job.run().await.expect("ends cleanly");
    assert_eq!((held.status, requests().await), (Status::RateLimited, before), "held across instances: {held:?}");
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let report = job.run().await.expect("the next run");
    assert_eq!(deliveries.attempts(), [1, 2, 3], "b and c now, and a not again: {report:?}");
    assert_eq!(report.status, Status::Done);
    server.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_run_cap_leaves_the_rest_to_the_next_run() {
    let redis = RedisServer::start().await;
    let server = aetherium_tests::stand_in::start().await;
    let key = generate_app_key();
    let deliveries = app_deliveries(&server, &key).await;
    for id in 1..=3 {
        deliveries.push(delivery(id, &format!("guid-{id}"), ago(600 - 100 * id as i64), 503));
    }
    let (_app, job) = app_job(&server, &redis, &key, &[("GITHUB_REDELIVERY_MAX_PER_RUN", "2")]).await;
    let report = job.run().await.expect("first run");
    assert_eq!((report.status, report.redelivered), (Status::Capped, 2), "{report:?}");
    assert_eq!(deliveries.attempts(), [1, 2], "oldest first");
    job.run().await.expect("second run");
    assert_eq!(deliveries.attempts(), [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_keeps_failing_is_delivered_three_times_in_all() {
    let redis = RedisServer::start().await;
    let server = aetherium_tests::stand_in::start().await;
    let key = generate_app_key();
    let deliveries = app_deliveries(&server, &key).await;
    // Each redelivery GitHub makes fails too, and is listed as a new attempt.
    deliveries.attempts_answer(503);
    deliveries.push(delivery(1, "guid-doomed", ago(300), 503));
    let (app, job) = app_job(&server, &redis, &key, &[]).await;
    for _ in 0..4 {
        job.run().await.expect("a run");
    }
    assert_eq!(deliveries.attempts(), [1, 2], "the first delivery and two redeliveries, then no more");
    let log = activity(&app).await;
    let numbers: Vec<&str> = log
        .iter()
        .rev()
        .filter(|e| e.message.starts_with("redelivery requested"))
        .filter_map(|e| e.message.rsplit(' ').next())
        .collect();
    assert_eq!(numbers, ["2", "3"], "attempt numbers: {log:?}");
    assert_eq!(log.iter().filter(|e| e.message.contains("gave up")).count(), 1, "said once: {log:?}");
    assert!(metrics(&app).await.contains("github_redeliveries_total{outcome=\"gave_up\"} 1\n"));
}

/// As GitHub would: a failed delivery sent again, signed, with its original GUID.
async fn send_push(http: &reqwest::Client, url: &str, guid: &str) -> u16 {
    let body = fixtures::github("push");
    http.post(url)
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", guid)
        .header("x-hub-signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_refused_while_sqs_was_down_reaches_the_bus_once_after_redelivery() {
    const GUID: &str = "5f0a1e2c-0b1d-11f0-8c3a-3b1c2d4e5f60";
    let redis = RedisServer::start().await;
    let handle = RedisHandle::open(&redis.url()).expect("url");
    let store = Arc::new(RedisStore::new(handle.clone()));
    let bus = Arc::new(RedisBus::new(handle));
    let server = aetherium_tests::stand_in::start().await;
    let key = generate_app_key();
    let deliveries = app_deliveries(&server, &key).await;
    let uri = server.uri();
    let env = [
        ("GITHUB_API_URL", uri.as_str()),
        ("GITHUB_APP_ID", "12345"),
        ("GITHUB_APP_PRIVATE_KEY", key.pem.as_str()),
        ("GITHUB_WEBHOOK_SECRET", fixtures::SECRET),
        ("GITHUB_REDELIVERY_INTERVAL_SECS", "1"),
        ("REDIS_URL", &redis.url()),
    ];
    let http = aetherium::backends::http_client::client();

    // SQS down: the ingest answers 503, which GitHub records as a failed delivery.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let down = TestApp::builder()
        .env(&env)
        .bus(bus.clone())
        .queue(Arc::new(SqsQueue::with_client(sqs::client_at(&dead), format!("{dead}/1/q"))))
        .store(store.clone())
        .build()
        .await;
    let outage = Running::start(down.app).await;
    assert_eq!(send_push(&http, &outage.url("/api/v1/webhooks/github"), GUID).await, 503);
    outage.stop().await;
    deliveries.push(delivery(7001, GUID, Utc::now(), 503));

    // SQS back: the runner's job asks GitHub to redeliver, and "GitHub" sends it again.
    let client = sqs::client();
    let url = sqs::create_queue(&client, &[("VisibilityTimeout", "5")]).await;
    let app = TestApp::builder()
        .env(&env)
        .bus(bus)
        .queue(Arc::new(SqsQueue::with_client(client, url)))
        .store(store.clone())
        .builtin()
        .build()
        .await;
    let sub = redis::Client::open(redis.url()).expect("url");
    let (mut sink, mut stream) = sub.get_async_pubsub().await.expect("pubsub").split();
    sink.subscribe("github.push").await.expect("subscribe");
    let running = Running::start(app.app).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    deliveries.on_attempt(move |original| {
        let _ = tx.send(original["guid"].as_str().unwrap_or_default().to_owned());
    });
    let guid = tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("the runner's job asked for a redelivery within 15 s")
        .expect("open");
    assert_eq!(guid, GUID);
    assert_eq!(send_push(&http, &running.url("/api/v1/webhooks/github"), GUID).await, 202);
    let mut ok = delivery(7002, GUID, Utc::now(), 202);
    ok["redelivery"] = true.into();
    deliveries.push(ok);

    let msg = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("on the bus").expect("open");
    let event =
        aetherium::Event::from_json(std::str::from_utf8(msg.get_payload_bytes()).expect("utf8")).expect("event");
    assert_eq!((event.id.as_str(), event.kind.as_str()), (GUID, "github.push"));
    // Several more runs of the job (one a second): no second request, no second event.
    let extra = tokio::time::timeout(Duration::from_secs(3), stream.next()).await;
    assert!(extra.is_err(), "published exactly once");
    assert_eq!(deliveries.attempts(), [7001], "redelivered once");
    running.stop().await;
}

/// A claim still `pending` is not a delivery the queue holds: the webhook function may have
/// died between claiming the GUID and queueing it. Such a GUID is redelivered; a `queued` one
/// is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_left_pending_is_redelivered_and_a_queued_one_is_not() {
    let redis = RedisServer::start().await;
    let server = aetherium_tests::stand_in::start().await;
    let key = generate_app_key();
    let deliveries = app_deliveries(&server, &key).await;
    deliveries.push(delivery(50, "guid-died", ago(40), 502));
    deliveries.push(delivery(60, "guid-queued", ago(30), 502));
    let (app, job) = app_job(&server, &redis, &key, &[]).await;
    app.store.set("delivery:github:guid-died", "pending", None).await.expect("set");
    app.store.set("delivery:github:guid-queued", "queued", None).await.expect("set");

    let report = job.run().await.expect("a run");
    assert_eq!(deliveries.attempts(), [50], "{report:?}");
    assert_eq!((report.redelivered, report.accepted), (1, 1), "{report:?}");
}
