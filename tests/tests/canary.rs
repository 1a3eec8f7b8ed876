//! Canary secrets through every path: none may appear in a log line or a response body, and
//! neither may a received or computed signature.

use aetherium::api::{self, Route};
use aetherium::queue::MemoryQueue;
use aetherium::store::MemoryStore;
use aetherium::{App, Event, bus::MemoryBus};
use aetherium_tests::config;
use bytes::Bytes;
use serde_json::json;
use std::sync::Arc;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const GH_SECRET: &str = "CANARY-gh-webhook-secret-5d1e";
const SLACK_SECRET: &str = "CANARY-slack-signing-secret-9b2c";
const API_TOKEN: &str = "CANARY-api-token-77aa";
const GH_TOKEN: &str = "CANARY-ghp-token-31f0";
const BOT_TOKEN: &str = "CANARY-xoxb-token-c4d8";

async fn send(app: &App, route: Route, req: http::request::Builder, body: &[u8], out: &mut Vec<String>) {
    let resp = api::handle(app, route, req.body(Bytes::copy_from_slice(body)).expect("req")).await;
    out.push(format!("{} {}", resp.status(), String::from_utf8_lossy(resp.body())));
}

#[test]
fn no_secret_or_signature_reaches_a_log_line_or_a_response() {
    let (captured, _guard) = aetherium_tests::logs::capture(tracing::Level::TRACE);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut responses = Vec::new();
    let mut signatures = Vec::new();
    rt.block_on(async {
        let server = MockServer::start().await;
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
        let cfg = config(&[
            ("GITHUB_WEBHOOK_SECRET", GH_SECRET),
            ("SLACK_SIGNING_SECRET", SLACK_SECRET),
            ("AETHERIUM_API_TOKEN", API_TOKEN),
            ("GITHUB_TOKEN", GH_TOKEN),
            ("GITHUB_API_URL", &uri),
            ("SLACK_BOT_TOKEN", BOT_TOKEN),
            ("SLACK_API_URL", &slack_api),
        ]);
        tracing::info!(config = ?cfg, "loaded");
        let app = App::from_parts(
            cfg,
            Arc::new(MemoryBus::new()),
            Arc::new(MemoryQueue::default()),
            Arc::new(MemoryStore::new()),
        );
        app.register_builtin().expect("integrations");
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
        let good = aetherium::signature::sign_github(GH_SECRET, &body);
        let forged = aetherium::signature::sign_github("attacker", &body);
        signatures.extend([good.clone(), forged.clone()]);
        send(&app, Route::GithubWebhook, gh(Some(&good)), &body, &mut responses).await;
        send(&app, Route::GithubWebhook, gh(Some(&forged)), &body, &mut responses).await;
        send(&app, Route::GithubWebhook, gh(None), &body, &mut responses).await;
        send(
            &app,
            Route::GithubWebhook,
            gh(Some(&aetherium::signature::sign_github(GH_SECRET, b"x"))),
            b"x",
            &mut responses,
        )
        .await;

        let now = chrono::Utc::now().timestamp();
        let form = b"command=%2Faetherium-status&text=&user_id=U1&user_name=dev&channel_id=C1&trigger_id=t";
        let slack_sig = aetherium::signature::sign_slack(SLACK_SECRET, now, form);
        let slack_forged = aetherium::signature::sign_slack("attacker", now, form);
        signatures.extend([slack_sig.clone(), slack_forged.clone()]);
        for (ts, sig) in [(now, &slack_sig), (now, &slack_forged), (now - 1000, &slack_sig)] {
            let req = http::Request::builder()
                .method("POST")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-slack-request-timestamp", ts.to_string())
                .header("x-slack-signature", sig.as_str());
            send(&app, Route::SlackWebhook, req, form, &mut responses).await;
        }
        for auth in [format!("Bearer {API_TOKEN}"), format!("Bearer {API_TOKEN}-wrong"), format!("Bearer {GH_TOKEN}")] {
            let req = || http::Request::builder().method("POST").header("authorization", auth.as_str());
            send(&app, Route::Events, req(), br#"{"type": "task.completed", "data": {}}"#, &mut responses).await;
            send(
                &app,
                Route::GithubPr,
                req(),
                br#"{"owner":"o","repo":"r","title":"t","head":"h","base":"main"}"#,
                &mut responses,
            )
            .await;
            send(&app, Route::LogsQuery, req(), b"{}", &mut responses).await;
            send(&app, Route::Metrics, req().method("GET"), b"", &mut responses).await;
        }
        send(&app, Route::Health, http::Request::builder().method("GET"), b"", &mut responses).await;

        let d = app.dispatcher();
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
    });
    let logs = captured.text();
    assert!(
        logs.contains("webhook signature rejected") && logs.contains("slack signature rejected"),
        "the troubleshooting lines are there"
    );
    let everything = format!("{logs}\n{}", responses.join("\n"));
    for canary in [GH_SECRET, SLACK_SECRET, API_TOKEN, GH_TOKEN, BOT_TOKEN] {
        assert!(!everything.contains(canary), "{canary} leaked");
    }
    for sig in &signatures {
        let hex = sig.split('=').nth(1).unwrap_or(sig);
        assert!(!everything.contains(hex), "a signature leaked: {sig}");
    }
}
