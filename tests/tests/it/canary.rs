//! Canary secrets through every path: none may appear in a log line, a response body or the
//! activity log, and neither may a received or computed signature or a capability URL's
//! secret part (a Slack response_url, a custom webhook's URL). In-process through every
//! route and the dispatcher, and through the real function binaries at RUST_LOG=trace.

use aetherium::Event;
use aetherium::edge::api::Endpoint;
use aetherium_tests::TestApp;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

const AWS_SECRET: &str = "canary-aws-secret-access-key-0a1b2c";
const AWS_SESSION: &str = "canary-aws-session-token-3d4e5f";
const GH_SECRET: &str = "CANARY-gh-webhook-secret-5d1e";
const SLACK_SECRET: &str = "CANARY-slack-signing-secret-9b2c";
const API_TOKEN: &str = "CANARY-api-token-77aa";
const GH_TOKEN: &str = "CANARY-ghp-token-31f0";
const BOT_TOKEN: &str = "CANARY-xoxb-token-c4d8";
/// A custom webhook's secret (`whsec_` + base64 of "CANARY-hook-secret-0123456789").
const HOOK_SECRET: &str = "whsec_Q0FOQVJZLWhvb2stc2VjcmV0LTAxMjM0NTY3ODk=";
const HOOK_PATH: &str = "CANARY-hook-path-5e6f";
const HOOK_QUERY: &str = "CANARY-hook-query-a1b2";
const RESPONSE_PATH: &str = "CANARY-response-url-path-77c1";
const RESPONSE_QUERY: &str = "CANARY-response-url-query-0d9e";

/// A loopback server that answers every request with bytes that are not HTTP: the client's
/// error is neither a timeout nor a refused connection, the kind whose message carries the URL.
async fn garbage_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(b"NOT-HTTP garbage\r\n\r\n").await;
            });
        }
    });
    format!("http://{addr}")
}

/// Answer `req` at `endpoint` and keep what was answered (status line and body) in `out`.
async fn send(t: &TestApp, endpoint: Endpoint, req: http::request::Builder, body: &[u8], out: &mut Vec<String>) {
    let answer = t.call(endpoint, req, body).await;
    let status = http::StatusCode::from_u16(answer.status).expect("a status code");
    out.push(format!("{status} {}", answer.text()));
}

#[test]
fn no_secret_or_signature_reaches_a_log_line_or_a_response() {
    let (captured, _guard) = aetherium_tests::logs::capture(tracing::Level::TRACE);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut responses = Vec::new();
    let mut signatures = Vec::new();
    rt.block_on(async {
        let server = aetherium_tests::stand_in::start().await;
        Mock::given(method("GET"))
            .and(path("/repos/o/r/issues/1/comments"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/repos/o/r/issues/1/comments"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/repos/o/r/pulls"))
            .respond_with(ResponseTemplate::new(422).set_body_json(json!({"message": "Validation Failed"})))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/slack/chat.postMessage"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/slack/auth.test"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": "invalid_auth"})))
            .mount(&server)
            .await;
        let uri = server.uri();
        let slack_api = format!("{uri}/slack");
        let garbage = garbage_server().await;
        let yaml = format!(
            "integrations:\n  hook:\n    type: webhook\n    url: {garbage}/{HOOK_PATH}?key={HOOK_QUERY}\n    secret: {HOOK_SECRET}\n\
             routes:\n  - name: audit\n    on: custom.audit\n    handle: hook\n"
        );
        let builder = TestApp::builder()
            .yaml(&yaml)
            .env(&[
                ("GITHUB_WEBHOOK_SECRET", GH_SECRET),
                ("SLACK_SIGNING_SECRET", SLACK_SECRET),
                ("AETHERIUM_API_TOKEN", API_TOKEN),
                ("GITHUB_TOKEN", GH_TOKEN),
                ("GITHUB_API_URL", &uri),
                ("SLACK_BOT_TOKEN", BOT_TOKEN),
                ("SLACK_API_URL", &slack_api),
                ("SLACK_RESPONSE_URL_BASE", &garbage),
            ])
            .all_integrations();
        let cfg = builder.config().expect("config");
        tracing::info!(config = ?cfg, "loaded");
        let t = builder.build().await;
        let gh = |sig: Option<&str>| {
            let mut b = http::Request::builder()
                .method("POST")
                .header("x-github-event", "push")
                .header("x-github-delivery", "d-1");
            if let Some(s) = sig {
                b = b.header("x-hub-signature-256", s);
            }
            b
        };
        let body = aetherium_tests::fixtures::github("push");
        let good = aetherium::integrations::github::signature::sign_github(GH_SECRET, &body);
        let forged = aetherium::integrations::github::signature::sign_github("attacker", &body);
        signatures.extend([good.clone(), forged.clone()]);
        send(&t, Endpoint::Webhook("github"), gh(Some(&good)), &body, &mut responses).await;
        send(&t, Endpoint::Webhook("github"), gh(Some(&forged)), &body, &mut responses).await;
        send(&t, Endpoint::Webhook("github"), gh(None), &body, &mut responses).await;
        send(
            &t,
            Endpoint::Webhook("github"),
            gh(Some(&aetherium::integrations::github::signature::sign_github(GH_SECRET, b"x"))),
            b"x",
            &mut responses,
        )
        .await;

        let now = chrono::Utc::now().timestamp();
        let form = b"command=%2Faetherium-status&text=&user_id=U1&user_name=dev&channel_id=C1&trigger_id=t";
        let slack_sig = aetherium::integrations::slack::signature::sign_slack(SLACK_SECRET, now, form);
        let slack_forged = aetherium::integrations::slack::signature::sign_slack("attacker", now, form);
        signatures.extend([slack_sig.clone(), slack_forged.clone()]);
        for (ts, sig) in [(now, &slack_sig), (now, &slack_forged), (now - 1000, &slack_sig)] {
            let req = http::Request::builder()
                .method("POST")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-slack-request-timestamp", ts.to_string())
                .header("x-slack-signature", sig.as_str());
            send(&t, Endpoint::Webhook("slack"), req, form, &mut responses).await;
        }
        for auth in [format!("Bearer {API_TOKEN}"), format!("Bearer {API_TOKEN}-wrong"), format!("Bearer {GH_TOKEN}")] {
            let req = || http::Request::builder().method("POST").header("authorization", auth.as_str());
            send(&t, Endpoint::Events, req(), br#"{"type": "task.completed", "data": {}}"#, &mut responses).await;
            send(
                &t,
                Endpoint::GithubPr,
                req(),
                br#"{"owner":"o","repo":"r","title":"t","head":"h","base":"main"}"#,
                &mut responses,
            )
            .await;
            send(&t, Endpoint::LogsQuery, req(), b"{}", &mut responses).await;
            send(&t, Endpoint::Metrics, req().method("GET"), b"", &mut responses).await;
        }
        send(&t, Endpoint::Health, http::Request::builder().method("GET"), b"", &mut responses).await;

        let d = t.app.dispatcher();
        let task = Event::new(
            "task.completed",
            "p",
            json!({"task_id": "t", "pull_request": "https://github.com/o/r/pull/1"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        d.process(&task.to_json()).await.expect("comment");
        let vm = Event::new(
            "vm.created",
            "p",
            json!({"vm_id": "v", "vm_name": "n"}).as_object().cloned().unwrap_or_default(),
        );
        d.process(&vm.to_json()).await.expect("slack message");
        // Capability URLs that fail with an error whose text would carry the whole URL.
        let audit = Event::new("custom.audit", "p", Default::default());
        d.process(&audit.to_json()).await.expect_err("the receiver answers garbage");
        let click = json!({"action_id": "approve", "user_name": "dev",
            "response_url": format!("{garbage}/actions/T1/{RESPONSE_PATH}?t={RESPONSE_QUERY}")});
        let click = Event::new("slack.action.approve", "slack", click.as_object().cloned().unwrap_or_default());
        d.process(&click.to_json()).await.expect_err("the response_url answers garbage");
        let req = http::Request::builder().method("POST").header("authorization", format!("Bearer {API_TOKEN}"));
        send(&t, Endpoint::LogsQuery, req, br#"{"limit": 1000}"#, &mut responses).await;
        assert!(
            responses.last().is_some_and(|r| r.contains("follow-up") && r.contains("route audit")),
            "the activity log holds both failures: {responses:?}"
        );
    });
    let logs = captured.text();
    assert!(
        logs.contains("webhook signature rejected") && logs.contains("slack signature rejected"),
        "the troubleshooting lines are there"
    );
    assert!(logs.contains("request failed"), "the transport errors were logged");
    let everything = format!("{logs}\n{}", responses.join("\n"));
    for canary in [
        GH_SECRET,
        SLACK_SECRET,
        API_TOKEN,
        GH_TOKEN,
        BOT_TOKEN,
        HOOK_SECRET,
        HOOK_PATH,
        HOOK_QUERY,
        RESPONSE_PATH,
        RESPONSE_QUERY,
    ] {
        assert!(!everything.contains(canary), "{canary} leaked");
    }
    for sig in &signatures {
        let hex = sig.split('=').nth(1).unwrap_or(sig);
        assert!(!everything.contains(hex), "a signature leaked: {sig}");
    }
}

/// An envelope of events/ carrying the canaries: the bearer token, and signatures made with
/// the canary secrets (returned in `signatures`).
fn canaried(file: &str, signatures: &mut Vec<String>) -> String {
    use base64::Engine;
    let mut doc: serde_json::Value =
        serde_json::from_str(&aetherium_tests::fixtures::envelope(file)).expect("envelope JSON");
    if doc["headers"].get("authorization").is_some() {
        doc["headers"]["authorization"] = format!("Bearer {API_TOKEN}").into();
    }
    let raw = doc["body"].as_str().unwrap_or_default().to_owned();
    let body = if doc["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD.decode(&raw).expect("base64")
    } else {
        raw.into_bytes()
    };
    if file.starts_with("github-webhook/") {
        let sig = aetherium::integrations::github::signature::sign_github(GH_SECRET, &body);
        signatures.push(sig.clone());
        doc["headers"]["x-hub-signature-256"] = sig.into();
    }
    if file.starts_with("slack-webhook/") {
        let now = chrono::Utc::now().timestamp();
        let sig = aetherium::integrations::slack::signature::sign_slack(SLACK_SECRET, now, &body);
        signatures.push(sig.clone());
        doc["headers"]["x-slack-request-timestamp"] = now.to_string().into();
        doc["headers"]["x-slack-signature"] = sig.into();
    }
    doc.to_string()
}

/// The Lambda path: every function's real binary, at RUST_LOG=trace, against the Runtime API
/// emulator. lambda_runtime traces every raw event it receives (headers and all), and the
/// AWS SDK its signing: neither may reach the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_signature_reaches_a_functions_log_even_at_trace() {
    use aetherium_tests::runtime_api::{Function, Outcome, RuntimeApi};
    let api = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/myorg/myrepo/pulls"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"number": 5, "html_url": "https://github.com/myorg/myrepo/pull/5"})),
        )
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex("/comments$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::path_regex("/comments$"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/rate_limit"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path("/slack/auth.test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&api)
        .await;
    let (uri, slack_api) = (api.uri(), format!("{}/slack", api.uri()));
    // SQS on moto, so that the signed SendMessage and the SDK (the health check) sign with
    // canary AWS keys at TRACE.
    let sqs_endpoint = aetherium_tests::sqs::endpoint();
    let queue = aetherium_tests::sqs::create_queue(&aetherium_tests::sqs::client(), &[]).await;
    let env = [
        ("AETHERIUM_QUEUE_URL", queue.as_str()),
        ("AWS_ENDPOINT_URL", sqs_endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
        ("AWS_SESSION_TOKEN", AWS_SESSION),
        ("RUST_LOG", "trace"),
        ("GITHUB_WEBHOOK_SECRET", GH_SECRET),
        ("SLACK_SIGNING_SECRET", SLACK_SECRET),
        ("AETHERIUM_API_TOKEN", API_TOKEN),
        ("GITHUB_TOKEN", GH_TOKEN),
        ("GITHUB_API_URL", &uri),
        ("SLACK_BOT_TOKEN", BOT_TOKEN),
        ("SLACK_API_URL", &slack_api),
    ];
    let mut signatures = Vec::new();
    let mut logs = String::new();
    for file in [
        "github-webhook/pull_request-opened.json",
        "github-webhook/pull_request-opened-base64.json",
        "slack-webhook/slash-command-base64.json",
        "slack-webhook/app-mention.json",
        "events/task-completed.json",
        "github-pr/create.json",
        "logs-query/query.json",
        "metrics/get.json",
        "health/get.json",
        "dispatcher/sqs-batch.json",
    ] {
        let function = file.split('/').next().expect("function");
        let runtime = RuntimeApi::start().await;
        let f = Function::spawn_capturing(function, &runtime, &env);
        let outcome = runtime.invoke(&canaried(file, &mut signatures)).await;
        assert!(matches!(outcome, Outcome::Response(_)), "{file}: {outcome:?}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let out = f.logs();
        assert!(out.contains("\"level\":\"DEBUG\""), "{file}: RUST_LOG=trace took effect (dependencies at DEBUG)");
        logs.push_str(&out);
    }
    // The signed path ran: what the webhooks and the events route queued is on moto.
    let on_moto = aetherium::backends::queue::SqsQueue::with_client(aetherium_tests::sqs::client(), queue.clone());
    let sent = aetherium::backends::queue::WorkQueue::receive(&on_moto, 10, std::time::Duration::from_secs(2))
        .await
        .expect("receive");
    assert!(!sent.is_empty(), "the functions queued on moto");
    for canary in [GH_SECRET, SLACK_SECRET, API_TOKEN, GH_TOKEN, BOT_TOKEN, AWS_SECRET, AWS_SESSION] {
        assert!(!logs.contains(canary), "{canary} leaked into a function's log");
    }
    for sig in &signatures {
        let hex = sig.split('=').nth(1).unwrap_or(sig);
        assert!(!logs.contains(hex), "a signature leaked into a function's log: {sig}");
    }
}
