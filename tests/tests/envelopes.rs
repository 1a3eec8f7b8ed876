//! The Lambda envelopes in events/, driven through the functions' real adapters (the same
//! code the Lambda binaries run per invocation).

use aetherium::api::Route;
use aetherium::lambda::{self, SqsEvent, UrlRequest};
use aetherium::queue::{MemoryQueue, WorkQueue};
use aetherium::redis_conn::RedisHandle;
use aetherium::store::MemoryStore;
use aetherium::{App, Event, bus::EventBus, bus::MemoryBus, bus::RedisBus, bus::handler};
use aetherium_tests::fixtures::envelope;
use aetherium_tests::{RedisServer, config};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The secret and token the envelopes are signed with (documented in the README).
const EXAMPLE: &[(&str, &str)] =
    &[("GITHUB_WEBHOOK_SECRET", "aetherium-example-secret"), ("AETHERIUM_API_TOKEN", "aetherium-example-token")];

fn app() -> (App, Arc<MemoryQueue>) {
    let queue = Arc::new(MemoryQueue::default());
    let app = App::from_parts(config(EXAMPLE), Arc::new(MemoryBus::new()), queue.clone(), Arc::new(MemoryStore::new()));
    (app, queue)
}

fn url_request(path: &str) -> UrlRequest {
    serde_json::from_str(&envelope(path)).unwrap_or_else(|e| panic!("{path} is a function URL request: {e}"))
}

async fn queued(q: &MemoryQueue) -> Vec<Event> {
    let msgs = q.receive(10, Duration::from_millis(50)).await.expect("receive");
    msgs.iter().map(|m| Event::from_json(&m.body).expect("event")).collect()
}

#[tokio::test]
async fn github_webhook_envelopes_plain_and_base64() {
    for file in ["github-webhook/pull_request-opened.json", "github-webhook/pull_request-opened-base64.json"] {
        let (app, queue) = app();
        let resp = lambda::respond(&app, Route::GithubWebhook, url_request(file)).await;
        assert_eq!(resp.status_code, 202, "{file}: {}", resp.body);
        assert_eq!(resp.headers["content-type"], "application/json");
        let events = queued(&queue).await;
        assert_eq!(events.len(), 1, "{file}");
        assert_eq!(events[0].kind, "github.pull_request.opened");
        assert_eq!(events[0].data["number"], 2);
    }
    let (app, queue) = app();
    let resp = lambda::respond(&app, Route::GithubWebhook, url_request("github-webhook/ping.json")).await;
    assert_eq!(resp.status_code, 200, "{}", resp.body);
    assert!(queued(&queue).await.is_empty());
}

#[tokio::test]
async fn invalid_base64_in_an_envelope_is_400_not_a_panic() {
    let (app, queue) = app();
    let mut doc: Value =
        serde_json::from_str(&envelope("github-webhook/pull_request-opened-base64.json")).expect("json");
    for bad in ["%%% not base64 %%%", "YWJj=ZGVm", "Zm9v\u{00e9}"] {
        doc["body"] = bad.into();
        let req: UrlRequest = serde_json::from_value(doc.clone()).expect("envelope");
        let resp = lambda::respond(&app, Route::GithubWebhook, req).await;
        assert_eq!(resp.status_code, 400, "{bad}: {}", resp.body);
        assert!(resp.body.contains("base64"), "{}", resp.body);
    }
    assert!(queued(&queue).await.is_empty());
}

#[tokio::test]
async fn a_tampered_envelope_is_401() {
    let (app, queue) = app();
    let mut doc: Value = serde_json::from_str(&envelope("github-webhook/pull_request-opened.json")).expect("json");
    let body = doc["body"].as_str().expect("body").replacen("Update the README", "Update the READMe", 1);
    doc["body"] = body.into();
    let resp = lambda::respond(&app, Route::GithubWebhook, serde_json::from_value(doc).expect("envelope")).await;
    assert_eq!(resp.status_code, 401, "{}", resp.body);
    assert!(queued(&queue).await.is_empty());
}

#[tokio::test]
async fn events_envelope_is_accepted_with_the_example_token() {
    let (app, queue) = app();
    let resp = lambda::respond(&app, Route::Events, url_request("events/task-completed.json")).await;
    assert_eq!(resp.status_code, 202, "{}", resp.body);
    let answer: Value = serde_json::from_str(&resp.body).expect("json");
    let events = queued(&queue).await;
    assert_eq!(events.len(), 1);
    assert_eq!(answer["id"], events[0].id.as_str());
    assert_eq!(events[0].kind, "task.completed");
    assert_eq!(events[0].data["pull_request"], "https://github.com/Codertocat/Hello-World/pull/2");
}

#[tokio::test]
async fn health_envelope_answers_json() {
    let (app, _) = app();
    let resp = lambda::respond(&app, Route::Health, url_request("health/get.json")).await;
    assert_eq!(resp.status_code, 200);
    let body: Value = serde_json::from_str(&resp.body).expect("json");
    assert_eq!(body["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_batch_envelope_reports_only_the_bad_record_and_publishes_the_rest_on_redis() {
    let redis = RedisServer::start().await;
    let handle = RedisHandle::open(&redis.url()).expect("url");
    let bus: Arc<dyn EventBus> = Arc::new(RedisBus::new(handle.clone()));
    let (tx, mut rx) = mpsc::unbounded_channel();
    bus.subscribe(
        "*",
        handler(move |e: Event| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(e.kind);
                Ok(())
            }
        }),
    )
    .await
    .expect("subscribe");
    let queue = Arc::new(MemoryQueue::default());
    let app = App::from_parts(config(EXAMPLE), bus, queue.clone(), Arc::new(aetherium::store::RedisStore::new(handle)));
    let batch: SqsEvent = serde_json::from_str(&envelope("dispatcher/sqs-batch.json")).expect("sqs event");
    let bad_id = batch.records[1].message_id.clone();

    let resp = lambda::dispatch_batch(&app.dispatcher(), queue.as_ref(), batch).await;
    let failed: Vec<&str> = resp.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, vec![bad_id.as_str()]);
    let wire = serde_json::to_value(&resp).expect("json");
    assert_eq!(wire["batchItemFailures"][0]["itemIdentifier"], bad_id.as_str());

    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("published").expect("open"));
    }
    seen.sort();
    assert_eq!(seen, vec!["task.completed", "vm.created"]);

    // The same batch again (an SQS redelivery): nothing is published twice.
    let again: SqsEvent = serde_json::from_str(&envelope("dispatcher/sqs-batch.json")).expect("sqs event");
    let resp = lambda::dispatch_batch(&app.dispatcher(), queue.as_ref(), again).await;
    assert_eq!(resp.batch_item_failures.len(), 1);
    assert!(tokio::time::timeout(Duration::from_millis(500), rx.recv()).await.is_err(), "no second publish");
}

#[tokio::test]
async fn slack_envelopes_verify_at_their_signing_time() {
    let mut env = EXAMPLE.to_vec();
    env.push(("SLACK_SIGNING_SECRET", "aetherium-example-slack-secret"));
    let queue = Arc::new(MemoryQueue::default());
    let mut app =
        App::from_parts(config(&env), Arc::new(MemoryBus::new()), queue.clone(), Arc::new(MemoryStore::new()));
    app.clock = aetherium::app::Clock::fixed(1795672800 + 30);

    let resp = lambda::respond(&app, Route::SlackWebhook, url_request("slack-webhook/slash-command-base64.json")).await;
    assert_eq!(resp.status_code, 200, "{}", resp.body);
    let answer: Value = serde_json::from_str(&resp.body).expect("json");
    assert!(answer["text"].as_str().is_some_and(|t| t.starts_with("Aetherium is running! 🚀")), "{answer}");

    let resp = lambda::respond(&app, Route::SlackWebhook, url_request("slack-webhook/url-verification.json")).await;
    assert_eq!(resp.status_code, 200);
    assert!(resp.body.contains("challenge"));

    let resp = lambda::respond(&app, Route::SlackWebhook, url_request("slack-webhook/app-mention.json")).await;
    assert_eq!(resp.status_code, 200, "{}", resp.body);
    assert_eq!(queued(&queue).await[0].kind, "slack.event.app_mention");

    // The same envelopes an hour later are replays.
    app.clock = aetherium::app::Clock::fixed(1795672800 + 3600);
    let resp = lambda::respond(&app, Route::SlackWebhook, url_request("slack-webhook/app-mention.json")).await;
    assert_eq!(resp.status_code, 401);
}
