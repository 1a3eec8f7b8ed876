//! Every envelope in events/, through the real Lambda entry point: each function's binary
//! talking to a Lambda Runtime API (the emulator in the harness), as inside Lambda.

use aetherium_tests::fixtures::envelope;
use aetherium_tests::runtime_api::{Function, Outcome, RuntimeApi};
use aetherium_tests::samples::{self, EXAMPLE_ENV, expected_status, fresh};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

fn status_of(outcome: &Outcome) -> (u16, Value) {
    let Outcome::Response(body) = outcome else { panic!("the function failed: {outcome:?}") };
    let v: Value = serde_json::from_str(body).expect("response JSON");
    (
        v["statusCode"].as_u64().unwrap_or(0) as u16,
        serde_json::from_str(v["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_envelope_through_its_functions_binary() {
    let github = samples::github_stand_in().await;
    // The repository hook github-redeliver watches: one delivery that failed.
    let failed = aetherium_tests::github_fake::delivery(88, "guid-lost", chrono::Utc::now(), 502);
    Mock::given(method("GET"))
        .and(path("/repos/myorg/myrepo/hooks/1/deliveries"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([failed])))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/myorg/myrepo/hooks/1/deliveries/88/attempts"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
        .expect(1)
        .mount(&github)
        .await;
    let gh_url = github.uri();
    let mut env = EXAMPLE_ENV.to_vec();
    env.extend([
        ("GITHUB_API_URL", gh_url.as_str()),
        ("GITHUB_TOKEN", "ghp_example"),
        ("GITHUB_REDELIVERY_HOOK", "myorg/myrepo#1"),
    ]);

    let files = samples::all();
    let functions: std::collections::BTreeSet<&str> = files.iter().filter_map(|f| f.split('/').next()).collect();
    let crates: std::collections::BTreeSet<String> =
        std::fs::read_dir(aetherium_tests::fixtures::root().join("functions"))
            .expect("functions/")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
    assert_eq!(
        functions.iter().map(|s| s.to_string()).collect::<std::collections::BTreeSet<_>>(),
        crates,
        "events/ covers every function"
    );

    for file in &files {
        let function = file.split('/').next().expect("function");
        let api = RuntimeApi::start().await;
        let _f = Function::spawn(function, &api, &env);
        let outcome = api.invoke(&fresh(file)).await;
        if function == "dispatcher" {
            let Outcome::Response(body) = &outcome else { panic!("{file}: {outcome:?}") };
            let v: Value = serde_json::from_str(body).expect("json");
            assert_eq!(
                v["batchItemFailures"].as_array().map(Vec::len),
                Some(1),
                "{file}: only the bad record fails: {v}"
            );
            continue;
        }
        if function == "github-redeliver" {
            let Outcome::Response(body) = &outcome else { panic!("{file}: {outcome:?}") };
            let report: Value = serde_json::from_str(body).expect("json");
            assert_eq!((&report["status"], &report["redelivered"]), (&json!("done"), &json!(1)), "{file}: {report}");
            continue;
        }
        let (status, body) = status_of(&outcome);
        let want = expected_status(file);
        assert_eq!(status, want, "{file}: {body}");
    }
    github.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_base64_envelope_gets_400_from_the_binary_not_a_crash() {
    let api = RuntimeApi::start().await;
    let _f = Function::spawn("github-webhook", &api, EXAMPLE_ENV);
    let mut doc: Value =
        serde_json::from_str(&envelope("github-webhook/pull_request-opened-base64.json")).expect("json");
    doc["body"] = "!!! not base64 !!!".into();
    let (status, body) = status_of(&api.invoke(&doc.to_string()).await);
    assert_eq!(status, 400, "{body}");
    // The same process keeps serving.
    let (status, _) = status_of(&api.invoke(&envelope("github-webhook/pull_request-opened.json")).await);
    assert_eq!(status, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_function_reports_an_init_error_naming_the_setting() {
    let api = RuntimeApi::start().await;
    let mut f = Function::spawn("dispatcher", &api, &[("GITHUB_APP_ID", "1"), ("GITHUB_APP_PRIVATE_KEY", "not a key")]);
    let (ok, logs) = f.wait_exit(std::time::Duration::from_secs(10));
    assert!(!ok, "the process fails its init");
    assert!(logs.contains("start-up failed") && logs.contains("GITHUB_APP_PRIVATE_KEY"), "{logs}");
    assert!(api.first_next().is_none(), "it never asked for work");
}

/// Secrets kept in SSM Parameter Store and Secrets Manager, read through a stand-in for the
/// AWS Parameters and Secrets Lambda Extension's local endpoint: once per cold start, with
/// the function's session token, and the signed samples verify with what it returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_the_parameters_and_secrets_extension_once_per_cold_start() {
    use wiremock::matchers::{header, query_param};
    let extension = wiremock::MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/systemsmanager/parameters/get"))
        .and(query_param("name", "/aetherium/github-webhook-secret"))
        .and(query_param("withDecryption", "true"))
        .and(header("X-Aws-Parameters-Secrets-Token", "session-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Parameter": {
            "Name": "/aetherium/github-webhook-secret", "Type": "SecureString", "Value": "aetherium-example-secret"}})))
        // Two cold starts (two functions), each asking once whatever its invocations.
        .expect(2)
        .mount(&extension)
        .await;
    Mock::given(method("GET"))
        .and(path("/secretsmanager/get"))
        .and(query_param("secretId", "aetherium/api-token"))
        .and(header("X-Aws-Parameters-Secrets-Token", "session-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Name": "aetherium/api-token",
            "SecretString": "aetherium-example-token"})))
        .expect(2)
        .mount(&extension)
        .await;
    let port = extension.address().port().to_string();
    let env = [
        ("GITHUB_WEBHOOK_SECRET", "ssm:/aetherium/github-webhook-secret"),
        ("AETHERIUM_API_TOKEN", "secretsmanager:aetherium/api-token"),
        ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port.as_str()),
        ("AWS_SESSION_TOKEN", "session-token"),
    ];
    for (function, file) in
        [("github-webhook", "github-webhook/pull_request-opened.json"), ("events", "events/task-completed.json")]
    {
        let api = RuntimeApi::start().await;
        let _f = Function::spawn(function, &api, &env);
        for _ in 0..2 {
            let (status, body) = status_of(&api.invoke(&envelope(file)).await);
            assert!(matches!(status, 200 | 202), "{file}: {status} {body}");
        }
    }
    extension.verify().await;

    // The extension refuses: the function fails its init, naming the variable, never a value.
    let refusing = wiremock::MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(400)).mount(&refusing).await;
    let port = refusing.address().port().to_string();
    let api = RuntimeApi::start().await;
    let mut f = Function::spawn(
        "github-webhook",
        &api,
        &[("GITHUB_WEBHOOK_SECRET", "ssm:/aetherium/missing"), ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", &port)],
    );
    let (ok, logs) = f.wait_exit(std::time::Duration::from_secs(10));
    assert!(!ok && logs.contains("GITHUB_WEBHOOK_SECRET") && logs.contains("HTTP 400"), "{logs}");
}
