//! `POST /api/v1/events`: authentication, validation, and what gets queued.

use aetherium::backends::queue::WorkQueue;
use aetherium::edge::api::Endpoint;
use aetherium_tests::TestApp;
use serde_json::{Value, json};
use std::sync::Arc;

const TOKEN: &str = "ingest-token-123";

async fn app(env: &[(&str, &str)]) -> TestApp {
    TestApp::with_env(env).await
}

/// A platform service's POST, with its `Authorization` header as given.
async fn post(t: &TestApp, auth: Option<&str>, body: &str) -> (u16, Value) {
    let mut b = http::Request::builder().method("POST").header("content-type", "application/json");
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    let answer = t.call(Endpoint::Events, b, body.as_bytes()).await;
    (answer.status, serde_json::from_slice(&answer.body).expect("JSON answer"))
}

#[tokio::test]
async fn a_valid_event_is_queued_with_id_and_timestamp_filled_in() {
    let app = app(&[("AETHERIUM_API_TOKEN", TOKEN)]).await;
    let bearer = format!("Bearer {TOKEN}");
    let body = json!({"type": "vm.created", "data": {"vm_id": "v-1", "vm_name": "my-vm"}}).to_string();
    let (status, answer) = post(&app, Some(&bearer), &body).await;
    assert_eq!(status, 202, "{answer}");
    let events = app.queued().await;
    assert_eq!(events.len(), 1);
    let ev = &events[0];
    assert_eq!(answer["id"], ev.id.as_str());
    assert!(uuid::Uuid::parse_str(&ev.id).is_ok(), "a UUID was generated: {}", ev.id);
    assert!((chrono::Utc::now() - ev.timestamp).num_seconds().abs() < 60);
    assert_eq!(ev.source, "platform");
    assert_eq!(ev.data_str("vm_name"), Some("my-vm"));

    let given = json!({"id": "evt-42", "type": "custom.deploy_finished", "timestamp": "2026-11-26T07:00:00+01:00", "source": "ci", "data": {}});
    let (status, answer) = post(&app, Some(&bearer), &given.to_string()).await;
    assert_eq!((status, answer["id"].as_str()), (202, Some("evt-42")));
    let ev = &app.queued().await[0];
    assert_eq!(ev.timestamp.to_rfc3339(), "2026-11-26T06:00:00+00:00");
    assert_eq!(ev.source, "ci");
}

#[tokio::test]
async fn authentication_is_required_and_fails_closed() {
    let app = app(&[("AETHERIUM_API_TOKEN", TOKEN)]).await;
    let body = json!({"type": "task.completed", "data": {}}).to_string();
    for auth in [None, Some("Bearer wrong"), Some(TOKEN), Some("Basic aW5nZXN0")] {
        let (status, answer) = post(&app, auth, &body).await;
        assert_eq!(status, 401, "{auth:?}: {answer}");
    }
    let unconfigured = self::app(&[]).await;
    let (status, _) = post(&unconfigured, Some("Bearer anything"), &body).await;
    assert_eq!(status, 500, "no token configured: fail closed");
    assert!(app.queued().await.is_empty() && unconfigured.queued().await.is_empty());
}

#[tokio::test]
async fn bad_events_are_400_and_name_the_problem() {
    let app = app(&[("AETHERIUM_API_TOKEN", TOKEN)]).await;
    let bearer = format!("Bearer {TOKEN}");
    let cases = [
        ("not json", "body is not a valid event"),
        ("[]", "body is not a valid event"),
        (r#"{"data": {}}"#, "`type` is required"),
        (r#"{"type": "github.push", "data": {}}"#, "not in a known family"),
        (r#"{"type": "weather.sunny"}"#, "not in a known family"),
        (r#"{"type": "Task.Completed"}"#, "lower-case"),
        (r#"{"type": "task.completed", "data": [1, 2]}"#, "`data` must be a JSON object"),
        (r#"{"type": "task.completed", "data": "x"}"#, "`data` must be a JSON object"),
        (r#"{"type": "task.completed", "timestamp": "yesterday"}"#, "`timestamp` must be RFC 3339"),
        (r#"{"type": "task.completed", "id": ""}"#, "`id` must be"),
        (r#"{"type": "task.completed", "dat": {}}"#, "unknown field `dat`"),
    ];
    for (body, want) in cases {
        let (status, answer) = post(&app, Some(&bearer), body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let msg = answer["error"].as_str().unwrap_or_default();
        assert!(msg.contains(want), "{body}: {msg:?} should mention {want:?}");
    }
    assert!(app.queued().await.is_empty());
}

/// A platform that reuses an id (its task id for every event of the task) is told so: the
/// second, different event is refused with 409 naming the id, and nothing more is queued. A
/// copy with the same type and data is a duplicate (200), whatever its timestamp or source.
async fn a_reused_event_id_is_409_and_an_exact_copy_is_a_duplicate(app: TestApp) {
    let bearer = format!("Bearer {TOKEN}");
    let started =
        json!({"id": "task-7", "type": "task.started", "timestamp": "2026-12-08T10:00:00Z", "data": {"task_id": "7"}});
    let (status, answer) = post(&app, Some(&bearer), &started.to_string()).await;
    assert_eq!(status, 202, "{answer}");
    let resent = json!({"id": "task-7", "type": "task.started", "timestamp": "2026-12-08T10:00:05Z", "source": "retry", "data": {"task_id": "7"}});
    let (status, answer) = post(&app, Some(&bearer), &resent.to_string()).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("duplicate")), "{answer}");
    for other in [
        json!({"id": "task-7", "type": "task.completed", "data": {"task_id": "7"}}),
        json!({"id": "task-7", "type": "task.started", "data": {"task_id": "8"}}),
    ] {
        let (status, answer) = post(&app, Some(&bearer), &other.to_string()).await;
        assert_eq!(status, 409, "{other}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains("`task-7`") && error.contains("different event"), "{error}");
    }
    let queued = app.queued().await;
    assert_eq!(queued.len(), 1, "only the first was queued: {queued:?}");
    assert_eq!(queued[0].kind, "task.started");
}

#[tokio::test]
async fn a_reused_event_id_is_409_on_memory() {
    a_reused_event_id_is_409_and_an_exact_copy_is_a_duplicate(app(&[("AETHERIUM_API_TOKEN", TOKEN)]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_event_id_is_409_on_redis() {
    let redis = aetherium_tests::RedisServer::start().await;
    let handle = aetherium::backends::redis_conn::RedisHandle::open(&redis.url()).expect("url");
    let t = TestApp::builder().env(&[("AETHERIUM_API_TOKEN", TOKEN)]).redis(handle).build().await;
    a_reused_event_id_is_409_and_an_exact_copy_is_a_duplicate(t).await;
}

/// A platform event whose data holds U+FFFE and U+FFFF (sent escaped, as JSON allows) is
/// queued with them escaped: SQS refuses them raw (`InvalidMessageContents`), moto does not
/// check, and the memory queue refuses them as SQS does. The dispatcher reads the same text.
async fn characters_sqs_refuses_are_queued_escaped(t: TestApp, queue: Arc<dyn WorkQueue>) {
    let bearer = format!("Bearer {TOKEN}");
    let body = r#"{"id": "odd-1", "type": "custom.note", "data": {"text": "a\uffffb\ufffec"}}"#;
    let (status, answer) = post(&t, Some(&bearer), body).await;
    assert_eq!(status, 202, "{answer}");
    let got = queue.receive(1, std::time::Duration::from_secs(2)).await.expect("receive");
    assert_eq!(got.len(), 1);
    assert_eq!(aetherium::backends::queue::refused_char(&got[0].body), None, "{}", got[0].body);
    let event = aetherium::Event::from_json(&got[0].body).expect("an event");
    assert_eq!(event.data_str("text"), Some("a\u{FFFF}b\u{FFFE}c"));
}

#[tokio::test]
async fn characters_sqs_refuses_are_queued_escaped_on_memory() {
    let queue: Arc<dyn WorkQueue> = Arc::new(aetherium::backends::queue::MemoryQueue::default());
    let t = TestApp::builder().env(&[("AETHERIUM_API_TOKEN", TOKEN)]).queue(queue.clone()).build().await;
    characters_sqs_refuses_are_queued_escaped(t, queue).await;
}

#[tokio::test]
async fn characters_sqs_refuses_are_queued_escaped_on_sqs() {
    let client = aetherium_tests::sqs::client();
    let url = aetherium_tests::sqs::create_queue(&client, &[]).await;
    let queue: Arc<dyn WorkQueue> = Arc::new(aetherium::backends::queue::SqsQueue::with_client(client, url));
    let t = TestApp::builder().env(&[("AETHERIUM_API_TOKEN", TOKEN)]).queue(queue.clone()).build().await;
    characters_sqs_refuses_are_queued_escaped(t, queue).await;
}
