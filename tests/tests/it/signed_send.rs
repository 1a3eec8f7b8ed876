//! The hot path's own SigV4-signed `SendMessage` (queue/signed_send.rs): its signature checked
//! by an independent implementation of AWS's documented algorithm, its body on moto byte for
//! byte, and what it does with throttling, refusals, a dead endpoint and a silent one.

use aetherium::BackendError;
use aetherium::backends::queue::{SignedSender, SqsQueue, WorkQueue};
use aetherium_tests::sqs;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::time::Duration;
use wiremock::matchers::{header, method};
use wiremock::{Mock, Request, ResponseTemplate};

const KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "session-token-example";

fn sender(endpoint: &str) -> SignedSender {
    let endpoint = endpoint.to_owned();
    SignedSender::from_vars(&move |name| match name {
        "AWS_REGION" => Some("us-east-1".into()),
        "AWS_ACCESS_KEY_ID" => Some(KEY_ID.into()),
        "AWS_SECRET_ACCESS_KEY" => Some(SECRET.into()),
        "AWS_SESSION_TOKEN" => Some(TOKEN.into()),
        "AWS_ENDPOINT_URL_SQS" => Some(endpoint.clone()),
        _ => None,
    })
    .expect("keys and region are set")
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// AWS Signature Version 4 as the SigV4 documentation spells it, written here without the
/// aws-sigv4 crate: whether `req` carries a valid signature under `secret`.
fn signature_is_valid(req: &Request, secret: &str) -> Result<(), String> {
    let h = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let auth = h("authorization").ok_or("no Authorization")?;
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or("not AWS4-HMAC-SHA256")?;
    let field =
        |name: &str| rest.split(", ").find_map(|p| p.strip_prefix(name).map(str::to_owned)).ok_or(format!("no {name}"));
    let (credential, signed_headers, signature) =
        (field("Credential=")?, field("SignedHeaders=")?, field("Signature=")?);
    let mut scope = credential.splitn(2, '/');
    let (key_id, scope) = (scope.next().unwrap_or_default(), scope.next().unwrap_or_default().to_owned());
    if key_id != KEY_ID {
        return Err(format!("key id {key_id}"));
    }
    let parts: Vec<&str> = scope.split('/').collect();
    if parts.len() != 4 || parts[1] != "us-east-1" || parts[2] != "sqs" || parts[3] != "aws4_request" {
        return Err(format!("scope {scope}"));
    }
    let amz_date = h("x-amz-date").ok_or("no X-Amz-Date")?;
    if !amz_date.starts_with(parts[0]) {
        return Err("the scope's date is not the request's".into());
    }
    for needed in ["host", "x-amz-date", "x-amz-target", "content-type", "x-amz-security-token"] {
        if !signed_headers.split(';').any(|s| s == needed) {
            return Err(format!("{needed} is not signed"));
        }
    }
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        let value = h(name).ok_or(format!("signed header {name} not sent"))?;
        canonical_headers.push_str(&format!("{name}:{}\n", value.trim()));
    }
    let path = req.url.path();
    let canonical = format!(
        "POST\n{path}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        req.url.query().unwrap_or(""),
        hex::encode(Sha256::digest(&req.body))
    );
    let to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), parts[0]);
    for part in &parts[1..] {
        key = hmac(&key, part);
    }
    if hex::encode(hmac(&key, &to_sign)) == signature { Ok(()) } else { Err("signature mismatch".into()) }
}

fn sent_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({ "MessageId": "m-1", "MD5OfMessageBody": "x" }))
}

#[tokio::test]
async fn the_signature_is_valid_sigv4_and_the_body_is_sqs_json_protocol() {
    let server = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "AmazonSQS.SendMessage"))
        .respond_with(sent_ok())
        .mount(&server)
        .await;
    let record = r#"{"id":"d-1","type":"github.push","data":{"payload":{"title":"déjà ✅ \"quoted\" \\ back"}}}"#;
    let queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/aetherium";
    assert_eq!(sender(&server.uri()).send(queue_url, record).await.expect("sent"), "m-1");

    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    signature_is_valid(req, SECRET).expect("a valid SigV4 signature");
    assert!(signature_is_valid(req, "another-secret").is_err(), "the check tells secrets apart");
    assert_eq!(req.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/x-amz-json-1.0"));
    assert_eq!(req.headers.get("x-amz-security-token").and_then(|v| v.to_str().ok()), Some(TOKEN));
    let body: serde_json::Value = serde_json::from_slice(&req.body).expect("JSON body");
    assert_eq!(body, serde_json::json!({ "QueueUrl": queue_url, "MessageBody": record }));
}

#[tokio::test]
async fn throttling_is_retried_and_a_refusal_is_not() {
    let server = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            serde_json::json!({ "__type": "com.amazonaws.sqs#ThrottlingException", "message": "slow down" }),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(sent_ok()).with_priority(2).mount(&server).await;
    assert_eq!(sender(&server.uri()).send("q", "x").await.expect("sent after a retry"), "m-1");
    assert_eq!(server.received_requests().await.expect("recorded").len(), 2);

    let refusing = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "The specified queue does not exist."
        })))
        .mount(&refusing)
        .await;
    let err = sender(&refusing.uri()).send("q", "x").await.expect_err("refused");
    assert!(matches!(err, BackendError::Rejected { .. }), "{err:?}");
    assert!(err.to_string().contains("QueueDoesNotExist"), "{err}");
    assert_eq!(refusing.received_requests().await.expect("recorded").len(), 1, "a refusal is not retried");

    let failing = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).mount(&failing).await;
    let err = sender(&failing.uri()).send("q", "x").await.expect_err("fails");
    assert!(matches!(err, BackendError::Unavailable { .. }), "{err:?}");
    assert_eq!(failing.received_requests().await.expect("recorded").len(), 3, "three attempts");
}

#[tokio::test]
async fn a_dead_or_silent_endpoint_is_an_error_within_the_operation_timeout() {
    let dead = format!("http://127.0.0.1:{}", aetherium_tests::free_port());
    let err = sender(&dead).send("q", "x").await.expect_err("nothing listens");
    assert!(matches!(err, BackendError::Unavailable { .. }), "{err:?}");

    let silent = aetherium_tests::blackhole::BlackHole::start().await;
    let started = std::time::Instant::now();
    let sent = tokio::time::timeout(Duration::from_secs(30), sender(&silent.http_url()).send("q", "x")).await;
    let err = sent.expect("answers").expect_err("never answered");
    assert!(matches!(err, BackendError::Timeout { .. }), "{err:?}");
    // The operation timeout is 3 s; the bound is loose on purpose (a slow CI machine).
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn on_moto_what_the_signed_path_sends_the_sdk_receives_byte_for_byte() {
    let client = sqs::client();
    let url = sqs::create_queue(&client, &[("VisibilityTimeout", "30")]).await;
    let q = SqsQueue::with_signed_sender(client, sender(&sqs::endpoint()), url);
    let payload = String::from_utf8(aetherium_tests::fixtures::github("pull_request-opened")).expect("UTF-8");
    let record =
        serde_json::json!({ "id": "d-1", "type": "github.pull_request.opened", "data": { "payload": payload } })
            .to_string();
    let id = q.send(&record).await.expect("sent");
    let got = q.receive(10, Duration::from_secs(2)).await.expect("received");
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].id.as_str(), got[0].body.as_str()), (id.as_str(), record.as_str()));
}

/// SQS's documented limits on one `SendMessageBatch`, kept as SQS keeps them: at most ten
/// entries, distinct ids, the bodies at most 256 KiB in all. Entries whose body holds
/// `fail-me` fail on their own (`SenderFault: false`), as SQS fails an entry it could not
/// store; the rest succeed.
struct StrictBatch;

impl wiremock::Respond for StrictBatch {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let refuse = |kind: &str| {
            ResponseTemplate::new(400)
                .set_body_json(serde_json::json!({ "__type": format!("com.amazonaws.sqs#{kind}"), "message": kind }))
        };
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&req.body) else {
            return refuse("InvalidParameterValue");
        };
        let entries = doc["Entries"].as_array().cloned().unwrap_or_default();
        let ids: std::collections::BTreeSet<&str> = entries.iter().filter_map(|e| e["Id"].as_str()).collect();
        let bytes: usize = entries.iter().filter_map(|e| e["MessageBody"].as_str()).map(str::len).sum();
        if entries.is_empty() {
            return refuse("EmptyBatchRequest");
        }
        if entries.len() > 10 {
            return refuse("TooManyEntriesInBatchRequest");
        }
        if ids.len() != entries.len() {
            return refuse("BatchEntryIdsNotDistinct");
        }
        if bytes > 256 * 1024 {
            return refuse("BatchRequestTooLong");
        }
        let (failed, ok): (Vec<_>, Vec<_>) =
            entries.iter().partition(|e| e["MessageBody"].as_str().unwrap_or("").contains("fail-me"));
        let ok: Vec<_> = ok.iter().map(|e| serde_json::json!({ "Id": e["Id"], "MessageId": format!("m-{}", e["Id"].as_str().unwrap_or("")), "MD5OfMessageBody": "x" })).collect();
        let failed: Vec<_> = failed.iter().map(|e| serde_json::json!({ "Id": e["Id"], "SenderFault": false, "Code": "InternalError", "Message": "try again" })).collect();
        ResponseTemplate::new(200).set_body_json(serde_json::json!({ "Successful": ok, "Failed": failed }))
    }
}

#[tokio::test]
async fn a_batch_keeps_to_sqs_limits_and_each_entry_fails_on_its_own() {
    let server = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "AmazonSQS.SendMessageBatch"))
        .respond_with(StrictBatch)
        .mount(&server)
        .await;
    let queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/aetherium";
    let q = SqsQueue::with_signed_sender(sqs::client_at(&server.uri()), sender(&server.uri()), queue_url);
    // 23 bodies, three of 100 KB in a row (so a run of ten would be too long), two to fail.
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(100 * 1024));
    let mut bodies: Vec<String> = (0..23).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    bodies[3] = big.clone();
    bodies[4] = big.clone();
    bodies[5] = big;
    bodies[6] = r#"{"n":6,"fail-me":true}"#.into();
    bodies[17] = r#"{"n":17,"fail-me":true}"#.into();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let sent = q.send_batch(&refs).await;
    assert_eq!(sent.len(), 23);
    for (i, result) in sent.iter().enumerate() {
        if i == 6 || i == 17 {
            let err = result.as_ref().expect_err("this entry failed");
            assert!(matches!(err, BackendError::Unavailable { .. }), "worth sending again: {err:?}");
            assert!(err.to_string().contains("InternalError"), "{err}");
        } else {
            assert!(result.as_ref().is_ok_and(|id| id.starts_with("m-")), "entry {i}: {result:?}");
        }
    }
    let requests = server.received_requests().await.expect("recorded");
    assert!(requests.len() >= 3, "23 bodies need three requests at least: {}", requests.len());
    for req in &requests {
        signature_is_valid(req, SECRET).expect("each request is signed");
        let doc: serde_json::Value = serde_json::from_slice(&req.body).expect("JSON");
        assert_eq!(doc["QueueUrl"], queue_url);
    }
}

#[tokio::test]
async fn on_moto_a_signed_batch_arrives_byte_for_byte() {
    let client = sqs::client();
    let url = sqs::create_queue(&client, &[("VisibilityTimeout", "30")]).await;
    let q = SqsQueue::with_signed_sender(client, sender(&sqs::endpoint()), url);
    let bodies: Vec<String> = (0..12)
        .map(|i| serde_json::json!({ "id": format!("e-{i}"), "text": "déjà ✅ \"q\" \\" }).to_string())
        .collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let ids: Vec<String> = q.send_batch(&refs).await.into_iter().map(|r| r.expect("stored")).collect();
    let mut got = std::collections::BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while got.len() < 12 && std::time::Instant::now() < deadline {
        for m in q.receive(10, Duration::from_secs(1)).await.expect("received") {
            got.insert(m.id, m.body);
        }
    }
    let want: std::collections::BTreeMap<String, String> = ids.into_iter().zip(bodies).collect();
    assert_eq!(got, want, "each body under the id its entry was given");
}

#[tokio::test]
async fn without_keys_in_the_environment_there_is_no_signed_sender() {
    let only_region = |name: &str| (name == "AWS_REGION").then(|| "us-east-1".to_owned());
    assert!(SignedSender::from_vars(&only_region).is_none(), "the SDK's credential chain sends instead");
}

/// The deployed shape: the real github-webhook and events binaries behind the Lambda Runtime
/// API emulator, with the environment Lambda gives (keys, region) and SQS on moto. What each
/// queues arrives on moto, read back through the SDK; with `AETHERIUM_SQS_SEND=sdk` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_binaries_queue_on_moto_through_the_signed_path() {
    use aetherium_tests::fixtures::envelope;
    use aetherium_tests::runtime_api::{Function, Outcome, RuntimeApi};
    let client = sqs::client();
    let endpoint = sqs::endpoint();
    for send in ["signed", "sdk"] {
        let url = sqs::create_queue(&client, &[("VisibilityTimeout", "30")]).await;
        let mut env = aetherium_tests::samples::EXAMPLE_ENV.to_vec();
        env.extend([
            ("AETHERIUM_QUEUE_URL", url.as_str()),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_SESSION_TOKEN", "a-session-token"),
            ("AETHERIUM_SQS_SEND", send),
        ]);
        for (function, sample) in
            [("github-webhook", "github-webhook/pull_request-opened.json"), ("events", "events/task-completed.json")]
        {
            let api = RuntimeApi::start().await;
            let _f = Function::spawn(function, &api, &env);
            let mut doc: serde_json::Value = serde_json::from_str(&envelope(sample)).expect("sample");
            let delivery = format!("{send}-{}", uuid::Uuid::new_v4());
            // A fresh id each time: the delivery header, or the platform event's own id.
            if function == "github-webhook" {
                doc["headers"]["x-github-delivery"] = delivery.clone().into();
            } else {
                let mut body: serde_json::Value =
                    serde_json::from_str(doc["body"].as_str().expect("body")).expect("event");
                body["id"] = delivery.clone().into();
                doc["body"] = body.to_string().into();
            }
            let Outcome::Response(answer) = api.invoke(&doc.to_string()).await else { panic!("{function} failed") };
            let answer: serde_json::Value = serde_json::from_str(&answer).expect("answer");
            assert_eq!(answer["statusCode"], 202, "{function} ({send}): {answer}");
            let q = SqsQueue::with_client(client.clone(), url.clone());
            let got = q.receive(10, Duration::from_secs(2)).await.expect("receive");
            let ids: Vec<String> = got
                .iter()
                .map(|m| {
                    serde_json::from_str::<serde_json::Value>(&m.body).expect("record")["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect();
            assert_eq!(ids, vec![delivery], "{function} ({send}) queued its record on moto");
            for m in &got {
                q.delete(&m.receipt).await.expect("delete");
            }
        }
    }
}

#[test]
fn a_fips_or_dual_stack_endpoint_is_left_to_the_sdk() {
    for flag in ["AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"] {
        let env = move |name: &str| match name {
            "AWS_REGION" => Some("us-east-1".to_owned()),
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("k".to_owned()),
            n if n == flag => Some("true".to_owned()),
            _ => None,
        };
        assert!(SignedSender::from_vars(&env).is_none(), "{flag}");
    }
}
