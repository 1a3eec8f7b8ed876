//! The Lambda envelopes in events/, driven through the functions' real adapters (the same
//! code the Lambda binaries run per invocation).

use aetherium::backends::redis_conn::RedisHandle;
use aetherium::edge::api::Endpoint;
use aetherium::edge::lambda::{self, SqsEvent, UrlRequest};
use aetherium::engine::clock::Clock;
use aetherium::{Event, backends::bus::EventBus, backends::bus::RedisBus, backends::bus::handler};
use aetherium_tests::fixtures::envelope;
use aetherium_tests::{RedisServer, TestApp};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The secret and token the envelopes are signed with (documented in the README).
const EXAMPLE: &[(&str, &str)] =
    &[("GITHUB_WEBHOOK_SECRET", "aetherium-example-secret"), ("AETHERIUM_API_TOKEN", "aetherium-example-token")];

async fn app() -> TestApp {
    TestApp::with_env(EXAMPLE).await
}

fn url_request(path: &str) -> UrlRequest {
    serde_json::from_str(&envelope(path)).unwrap_or_else(|e| panic!("{path} is a function URL request: {e}"))
}

fn text(resp: &lambda::UrlResponse) -> &str {
    resp.body.as_deref().unwrap_or_default()
}

#[tokio::test]
async fn github_webhook_envelopes_plain_and_base64() {
    for file in ["github-webhook/pull_request-opened.json", "github-webhook/pull_request-opened-base64.json"] {
        let t = app().await;
        let resp = t.envelope(Endpoint::Webhook("github"), url_request(file)).await;
        assert_eq!(resp.status_code, 202, "{file}: {}", text(&resp));
        assert_eq!(resp.headers["content-type"], "application/json");
        let events = t.queued().await;
        assert_eq!(events.len(), 1, "{file}");
        assert_eq!(events[0].kind, "github.pull_request.opened");
        assert_eq!(events[0].data["number"], 2);
    }
    let t = app().await;
    let resp = t.envelope(Endpoint::Webhook("github"), url_request("github-webhook/ping.json")).await;
    assert_eq!(resp.status_code, 200, "{}", text(&resp));
    assert!(t.queued().await.is_empty());
}

#[tokio::test]
async fn invalid_base64_in_an_envelope_is_400_not_a_panic() {
    let t = app().await;
    let mut doc: Value =
        serde_json::from_str(&envelope("github-webhook/pull_request-opened-base64.json")).expect("json");
    for bad in ["%%% not base64 %%%", "YWJj=ZGVm", "Zm9v\u{00e9}"] {
        doc["body"] = bad.into();
        let req: UrlRequest = serde_json::from_value(doc.clone()).expect("envelope");
        let resp = t.envelope(Endpoint::Webhook("github"), req).await;
        assert_eq!(resp.status_code, 400, "{bad}: {}", text(&resp));
        assert!(text(&resp).contains("base64"), "{}", text(&resp));
    }
    assert!(t.queued().await.is_empty());
}

#[tokio::test]
async fn a_tampered_envelope_is_401() {
    let t = app().await;
    let mut doc: Value = serde_json::from_str(&envelope("github-webhook/pull_request-opened.json")).expect("json");
    let body = doc["body"].as_str().expect("body").replacen("Update the README", "Update the READMe", 1);
    doc["body"] = body.into();
    let resp = t.envelope(Endpoint::Webhook("github"), serde_json::from_value(doc).expect("envelope")).await;
    assert_eq!(resp.status_code, 401, "{}", text(&resp));
    assert!(t.queued().await.is_empty());
}

#[tokio::test]
async fn events_envelope_is_accepted_with_the_example_token() {
    let t = app().await;
    let resp = t.envelope(Endpoint::Events, url_request("events/task-completed.json")).await;
    assert_eq!(resp.status_code, 202, "{}", text(&resp));
    let answer: Value = serde_json::from_str(text(&resp)).expect("json");
    let events = t.queued().await;
    assert_eq!(events.len(), 1);
    assert_eq!(answer["id"], events[0].id.as_str());
    assert_eq!(events[0].kind, "task.completed");
    assert_eq!(events[0].data["pull_request"], "https://github.com/Codertocat/Hello-World/pull/2");
}

#[tokio::test]
async fn health_envelope_answers_json() {
    let t = app().await;
    let resp = t.envelope(Endpoint::Health, url_request("health/get.json")).await;
    assert_eq!(resp.status_code, 200);
    let body: Value = serde_json::from_str(text(&resp)).expect("json");
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
    let store = Arc::new(aetherium::backends::store::RedisStore::new(handle));
    let t = TestApp::builder().env(EXAMPLE).bus(bus).store(store).build().await;
    let batch: SqsEvent = serde_json::from_str(&envelope("dispatcher/sqs-batch.json")).expect("sqs event");
    let bad_id = batch.records[1].message_id.clone().expect("a message id");

    let resp = lambda::dispatch_batch(&t.app.dispatcher(), batch).await;
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
    let resp = lambda::dispatch_batch(&t.app.dispatcher(), again).await;
    assert_eq!(resp.batch_item_failures.len(), 1);
    assert!(tokio::time::timeout(Duration::from_millis(500), rx.recv()).await.is_err(), "no second publish");
}

#[tokio::test]
async fn slack_envelopes_verify_at_their_signing_time() {
    let mut env = EXAMPLE.to_vec();
    env.push(("SLACK_SIGNING_SECRET", "aetherium-example-slack-secret"));
    let mut t = TestApp::builder().env(&env).clock(Clock::fixed(1795672800 + 30)).build().await;

    let resp = t.envelope(Endpoint::Webhook("slack"), url_request("slack-webhook/slash-command-base64.json")).await;
    assert_eq!(resp.status_code, 200, "{}", text(&resp));
    let answer: Value = serde_json::from_str(text(&resp)).expect("json");
    assert!(answer["text"].as_str().is_some_and(|t| t.starts_with("Aetherium is running! 🚀")), "{answer}");

    let resp = t.envelope(Endpoint::Webhook("slack"), url_request("slack-webhook/url-verification.json")).await;
    assert_eq!(resp.status_code, 200);
    assert!(text(&resp).contains("challenge"));

    let resp = t.envelope(Endpoint::Webhook("slack"), url_request("slack-webhook/app-mention.json")).await;
    assert_eq!(resp.status_code, 200, "{}", text(&resp));
    assert_eq!(t.queued().await[0].kind, "slack.event.app_mention");

    // The same envelopes an hour later are replays.
    t.app = t.app.with_clock(Clock::fixed(1795672800 + 3600));
    let resp = t.envelope(Endpoint::Webhook("slack"), url_request("slack-webhook/app-mention.json")).await;
    assert_eq!(resp.status_code, 401);
}

/// `value` with the field at `path` removed, or set to null.
fn variant(value: &Value, path: &[&str], null: bool) -> Value {
    let mut v = value.clone();
    let (last, parents) = path.split_last().expect("a path");
    let mut at = &mut v;
    for p in parents {
        at = match p.parse::<usize>() {
            Ok(i) if at.is_array() => &mut at[i],
            _ => &mut at[*p],
        };
    }
    let object = at.as_object_mut().expect("an object");
    if null {
        object.insert((*last).to_owned(), Value::Null);
    } else {
        object.remove(*last);
    }
    v
}

fn lambda_fixture(name: &str) -> Value {
    let path = aetherium_tests::fixtures::root().join("tests/fixtures/lambda").join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("json")
}

/// AWS's documented function URL request, and the same with each optional field absent and
/// each null: every variant is read and answered by the handler, the events route on a URL
/// whose AuthType is AWS_IAM: 400 for the documented body (not an event) from the documented
/// IAM caller, 401 without a caller, 405 where no method is given and GET is assumed.
#[tokio::test]
async fn the_documented_function_url_request_with_any_optional_field_absent_or_null() {
    let doc = lambda_fixture("function-url-request.json");
    let optional: &[&[&str]] = &[
        &["version"],
        &["rawPath"],
        &["rawQueryString"],
        &["cookies"],
        &["headers"],
        &["queryStringParameters"],
        &["pathParameters"],
        &["stageVariables"],
        &["body"],
        &["requestContext", "accountId"],
        &["requestContext", "apiId"],
        &["requestContext", "authentication"],
        &["requestContext", "authorizer"],
        &["requestContext", "authorizer", "iam"],
        &["requestContext", "authorizer", "iam", "userArn"],
        &["requestContext", "authorizer", "iam", "cognitoIdentity"],
        &["requestContext", "domainName"],
        &["requestContext", "domainPrefix"],
        &["requestContext", "requestId"],
        &["requestContext", "routeKey"],
        &["requestContext", "stage"],
        &["requestContext", "time"],
        &["requestContext", "http", "method"],
        &["requestContext", "http", "path"],
        &["requestContext", "http", "protocol"],
        &["requestContext", "http", "sourceIp"],
        &["requestContext", "http", "userAgent"],
    ];
    let iam = [("AETHERIUM_API_TOKEN", "aetherium-example-token"), ("AETHERIUM_FUNCTION_URL_AUTH", "AWS_IAM")];
    let t = TestApp::with_env(&iam).await;
    let mut variants = vec![("as documented".to_owned(), doc.clone(), 400)];
    for path in optional {
        let want = match *path {
            ["requestContext", "http", "method"] => 405,
            ["requestContext", "authorizer"] | ["requestContext", "authorizer", "iam"] => 401,
            ["requestContext", "authorizer", "iam", "userArn"] => 401,
            _ => 400,
        };
        for null in [false, true] {
            let what = format!("{} {}", path.join("."), if null { "null" } else { "absent" });
            variants.push((what, variant(&doc, path, null), want));
        }
    }
    for (what, v, want) in variants {
        let req: UrlRequest = serde_json::from_value(v).unwrap_or_else(|e| panic!("{what}: not read: {e}"));
        let resp = t.envelope(Endpoint::Events, req).await;
        assert_eq!(resp.status_code, want, "{what}: {}", text(&resp));
        let answer: Value = serde_json::from_str(text(&resp)).expect("JSON");
        assert!(answer["error"].is_string(), "{what}: {answer}");
    }
    assert!(t.queued().await.is_empty());
}

/// AWS's documented SQS event, and the same with each optional record field absent and each
/// null: the batch is read, and its two records (bodies that are not events) are the failures.
#[tokio::test]
async fn the_documented_sqs_event_with_any_optional_field_absent_or_null() {
    let doc = lambda_fixture("sqs-event.json");
    let ids: Vec<&str> =
        doc["Records"].as_array().expect("records").iter().filter_map(|r| r["messageId"].as_str()).collect();
    let t = app().await;
    let mut variants = vec![("as documented".to_owned(), doc.clone())];
    for field in [
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
        "receiptHandle",
    ] {
        for null in [false, true] {
            let mut v = doc.clone();
            for i in 0..ids.len() {
                v = variant(&v, &["Records", &i.to_string(), field], null);
            }
            variants.push((format!("{field} {}", if null { "null" } else { "absent" }), v));
        }
    }
    for (what, v) in variants {
        let batch: SqsEvent = serde_json::from_value(v).unwrap_or_else(|e| panic!("{what}: not read: {e}"));
        let resp = lambda::dispatch_batch(&t.app.dispatcher(), batch).await;
        let failed: Vec<&str> = resp.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, ids, "{what}");
    }
}
