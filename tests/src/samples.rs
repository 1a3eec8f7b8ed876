//! The sample envelopes in `events/`, and what a deployed function answers each one: shared by
//! every test that runs them through a Lambda-shaped host (the Runtime API emulator, cargo
//! lambda watch, SAM's resolved environment).

use serde_json::Value;

/// The public example secrets the samples are signed with (the README lists them).
pub const EXAMPLE_ENV: &[(&str, &str)] = &[
    ("GITHUB_WEBHOOK_SECRET", "aetherium-example-secret"),
    ("AETHERIUM_API_TOKEN", "aetherium-example-token"),
    ("SLACK_SIGNING_SECRET", "aetherium-example-slack-secret"),
];

/// Every file under events/, as `function/file.json`, sorted.
pub fn all() -> Vec<String> {
    let root = crate::fixtures::root().join("events");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).expect("events/").filter_map(Result::ok) {
        for f in std::fs::read_dir(dir.path()).expect("dir").filter_map(Result::ok) {
            out.push(format!("{}/{}", dir.file_name().to_string_lossy(), f.file_name().to_string_lossy()));
        }
    }
    out.sort();
    out
}

/// The function a sample belongs to (its folder).
pub fn function(file: &str) -> &str {
    file.split('/').next().expect("function/file")
}

/// Slack refuses old timestamps: the envelope re-signed for now, as Slack would send it.
pub fn fresh(file: &str) -> String {
    let raw = crate::fixtures::envelope(file);
    if !file.starts_with("slack-webhook/") {
        return raw;
    }
    let mut doc: Value = serde_json::from_str(&raw).expect("json");
    let bytes = body(&doc);
    let now = chrono::Utc::now().timestamp();
    doc["headers"]["x-slack-request-timestamp"] = now.to_string().into();
    doc["headers"]["x-slack-signature"] =
        aetherium::integrations::slack::signature::sign_slack("aetherium-example-slack-secret", now, &bytes).into();
    doc.to_string()
}

/// An envelope's body as the client sent it (base64 decoded when flagged).
pub fn body(doc: &Value) -> Vec<u8> {
    let text = doc["body"].as_str().unwrap_or_default();
    if doc["isBase64Encoded"] == true {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(text).expect("base64")
    } else {
        text.as_bytes().to_vec()
    }
}

/// Functions invoked by an event source rather than through a function URL.
pub fn is_url_function(function: &str) -> bool {
    !matches!(function, "dispatcher" | "github-redeliver" | "bus-bridge")
}

/// What a deployed function answers a non-URL sample with, checked: the dispatcher's batch
/// has one failure (its second record is not an event); github-redeliver and bus-bridge report
/// a run.
pub fn check_event_answer(file: &str, answer: &Value) {
    match function(file) {
        "dispatcher" => {
            assert_eq!(answer["batchItemFailures"].as_array().map(Vec::len), Some(1), "{file}: {answer}")
        }
        "github-redeliver" => {
            assert!(answer["status"].is_string(), "{file}: a run report: {answer}")
        }
        "bus-bridge" => {
            assert!(answer["heard"].is_u64() && answer["enqueued"].is_u64(), "{file}: a run report: {answer}")
        }
        other => panic!("{other} is a function URL function"),
    }
}

/// The status a deployed function answers a sample with (function URL samples only).
pub fn expected_status(file: &str) -> u16 {
    match file {
        f if f.starts_with("github-webhook/ping") => 200,
        f if f.starts_with("github-webhook/") || f.starts_with("events/") => 202,
        f if f.starts_with("github-pr/") => 201,
        // The samples run on the embedded in-memory backends, which a Lambda function reports as
        // degraded (`shared_state`): each instance would keep its own.
        f if f.starts_with("health/") => 503,
        _ => 200,
    }
}

/// A stand-in api.github.com for the github-pr sample (and health's rate-limit call).
pub async fn github_stand_in() -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let github = crate::stand_in::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/myorg/myrepo/pulls"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({"number": 5, "html_url": "https://github.com/myorg/myrepo/pull/5"})),
        )
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path("/rate_limit"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .mount(&github)
        .await;
    github
}

/// The bus-bridge sample run by `run` against a bridge listening on `redis` (set in its
/// REDIS_URL): the guide's `vm.created` is published with redis-cli while it listens, and the
/// run's report says it heard and queued it.
pub async fn check_bridge_run(file: &str, redis: &crate::RedisServer, run: impl std::future::Future<Output = Value>) {
    let publish = async {
        redis.wait_for_pattern_subscribers(1, 4).await;
        let event = r#"{"ID":"sample-vm-1","Type":"vm.created","Data":{"vm_id":"v1","vm_name":"probe"}}"#;
        redis.cli(0, &["PUBLISH", "vm.created", event]);
    };
    let (report, ()) = tokio::join!(run, publish);
    check_event_answer(file, &report);
    assert_eq!((&report["heard"], &report["enqueued"]), (&1.into(), &1.into()), "{file}: {report}");
}
