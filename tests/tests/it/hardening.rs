//! Issue 15, hardening: what an outsider, a slow Redis or a hostile payload can do. One test
//! (or a few) per item; docs/security.md's bad-input matrix names each one.

use aetherium::Event;
use aetherium::backends::bus::MemoryBus;
use aetherium::backends::queue::MemoryQueue;
use aetherium::backends::store::MemoryStore;
use aetherium::edge::api::Endpoint;
use aetherium_tests::TestApp;
use aetherium_tests::fixtures::{SECRET, SLACK_SECRET, slack_headers};
use aetherium_tests::github_fake::Comments;
use serde_json::{Value, json};
use std::sync::Arc;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// An app on memory backends with GitHub and Slack pointed at `api`, the config file `yaml`.
async fn app(api: &MockServer, yaml: &str) -> TestApp {
    let uri = api.uri();
    TestApp::builder()
        .yaml(yaml)
        .env(&[
            ("GITHUB_API_URL", &uri),
            ("GITHUB_TOKEN", "ghp_hardening"),
            ("SLACK_API_URL", &uri),
            ("SLACK_BOT_TOKEN", "xoxb-hardening"),
            ("SLACK_RESPONSE_URL_BASE", &uri),
        ])
        .all_integrations()
        .build()
        .await
}

/// GitHub comments on o/r#1 and Slack's chat.postMessage, answering success.
async fn stand_in() -> (MockServer, Comments) {
    aetherium_tests::github_fake::github_and_slack().await
}

fn event(kind: &str, data: Value) -> String {
    Event::new(kind, "platform", data.as_object().cloned().unwrap_or_default()).to_json()
}

async fn slack_texts(api: &MockServer) -> Vec<String> {
    let requests = api.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter(|r| r.url.path() == "/chat.postMessage")
        .map(|r| {
            // What Slack renders: the text and a section's mrkdwn (a button's value is data).
            let v: Value = serde_json::from_slice(&r.body).expect("json");
            let section = v["blocks"][0]["text"]["text"].as_str().unwrap_or_default();
            format!("{}\n{section}", v["text"].as_str().unwrap_or_default())
        })
        .collect()
}

const EVIL: &str =
    "x` <!channel> <https://evil.example|click> <@U0ADMIN> @octocat @acme/admins [link](https://evil.example)\n\n# big";

// ---- item 4: escaping by context ----

#[tokio::test]
async fn event_data_cannot_ping_mention_link_or_leave_its_code_span_in_slack_or_github() {
    let (api, comments) = stand_in().await;
    let yaml = r##"
routes:
  - name: built
    on: custom.built
    notify: { integration: slack, target: "#builds", message: "Built: {{payload.head_commit.message}}" }
  - name: deployed
    on: custom.deployed
    notify:
      integration: slack
      target: "#deploys"
      message: "<!here> Deploy `{{service}}`?"
      actions: [{ text: Approve, action_id: approve, value: "{{service}}" }]
  - name: pr-note
    on: custom.noted
    notify: { integration: github, target: "o/r#1", message: "Note on `{{service}}`: {{note}}" }
"##;
    let t = app(&api, yaml).await;
    let d = t.app.dispatcher();
    d.process(&event("vm.created", json!({"vm_id": "v-1", "vm_name": EVIL}))).await.expect("default notify");
    d.process(&event("custom.built", json!({"payload": {"head_commit": {"message": EVIL}}}))).await.expect("payload");
    d.process(&event("custom.deployed", json!({"service": EVIL}))).await.expect("buttons");
    d.process(&event("custom.noted", json!({"service": EVIL, "note": EVIL}))).await.expect("github notify");
    let failed = json!({"task_id": EVIL, "error": EVIL, "pull_request": "https://github.com/o/r/pull/1"});
    d.process(&event("task.failed", failed)).await.expect("default comment");

    let texts = slack_texts(&api).await;
    assert_eq!(texts.len(), 3, "{texts:?}");
    for t in &texts {
        for forbidden in ["<!channel>", "<https://evil", "<@U0ADMIN>"] {
            assert!(!t.contains(forbidden), "{forbidden} in {t}");
        }
        assert!(t.contains("&lt;!channel&gt;"), "the data is shown, escaped: {t}");
    }
    assert!(texts[2].starts_with("<!here> Deploy `"), "literal template text keeps its markup: {}", texts[2]);

    let bodies = comments.bodies();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    for b in &bodies {
        // Mentions and links count outside code spans only: inside one, GitHub shows text.
        let outside: String = b.split('`').step_by(2).collect();
        for forbidden in ["@octocat", "@acme/admins", "[link](", "\n# big"] {
            assert!(!outside.contains(forbidden), "{forbidden} in {b}");
        }
    }
    // The template opens and closes one code span; the data adds no backtick of its own.
    let note = &bodies[0];
    assert_eq!(note.matches('`').count(), 2, "{note}");
    assert!(note.contains("<!channel>"), "inside the code span the data shows as written: {note}");
}

// ---- item 5: validated artifact targets ----

#[tokio::test]
async fn an_artifact_route_refuses_an_owner_or_repo_that_is_not_a_github_name() {
    let api = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"number": 1})))
        .mount(&api)
        .await;
    let yaml = r#"
routes:
  - name: release-pr
    on: custom.release_ready
    artifact:
      integration: github
      type: pull_request
      content: { owner: "{{owner}}", repo: "{{repo}}", title: "Release", head: "release", base: main }
"#;
    let t = app(&api, yaml).await;
    let d = t.app.dispatcher();
    for (owner, repo) in
        [("acme", "widgets/merges?"), ("acme", ".."), ("acme/x", "widgets"), ("-acme", "w"), ("acme", "w#1")]
    {
        let record = event("custom.release_ready", json!({"owner": owner, "repo": repo}));
        d.process(&record).await.expect("a permanent failure is not retried");
    }
    assert!(api.received_requests().await.unwrap_or_default().is_empty(), "GitHub was never called");
    let lines = t.store.log_recent(aetherium::observe::activity::KEY, 100).await.expect("activity");
    let refusals: Vec<&String> = lines.iter().filter(|l| l.contains("not a GitHub")).collect();
    assert_eq!(refusals.len(), 5, "each refusal names its reason: {lines:?}");
    assert!(refusals.iter().any(|l| l.contains("`repo` `widgets/merges?` is not a GitHub repository name")));

    // A valid name still goes through.
    d.process(&event("custom.release_ready", json!({"owner": "acme", "repo": "widgets.rs"}))).await.expect("created");
    let hits = api.received_requests().await.unwrap_or_default();
    assert_eq!(hits.iter().map(|r| r.url.path().to_owned()).collect::<Vec<_>>(), ["/repos/acme/widgets.rs/pulls"]);
}

/// Answer `req` at `endpoint` in-process.
async fn call(t: &TestApp, endpoint: Endpoint, req: http::request::Builder, body: &[u8]) -> (u16, String) {
    let answer = t.call(endpoint, req, body).await;
    (answer.status, answer.text())
}

/// An app on memory backends that verifies GitHub and Slack and serves the internal routes.
async fn webhook_app() -> TestApp {
    TestApp::with_env(&[
        ("GITHUB_WEBHOOK_SECRET", SECRET),
        ("SLACK_SIGNING_SECRET", SLACK_SECRET),
        ("AETHERIUM_API_TOKEN", "tok"),
    ])
    .await
}

fn slack_request(body: &[u8], signed: bool) -> http::request::Builder {
    let now = chrono::Utc::now().timestamp();
    let (ts, sig) = slack_headers(body, now);
    let sig = if signed { sig } else { "v0=00".to_owned() };
    http::Request::builder()
        .method("POST")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig)
}

// ---- item 3: an activity log an outsider cannot flush ----

#[tokio::test]
async fn unsigned_floods_are_tallied_apart_and_never_push_out_an_integrations_entries() {
    let t = webhook_app().await;
    let log = t.app.activity();
    log.record("github", aetherium::observe::activity::Level::Info, "comment on o/r#1: ok", Some("evt-kept")).await;

    let flood = aetherium::observe::activity::CAP + 50;
    let body = aetherium_tests::fixtures::github("push");
    for i in 0..flood {
        let mut req = http::Request::builder()
            .method("POST")
            .header("x-github-event", "push")
            .header("x-github-delivery", format!("d-{i}"));
        if i % 2 == 0 {
            req = req.header("x-hub-signature-256", format!("sha256={}", "0".repeat(64)));
        }
        let (status, _) = call(&t, Endpoint::Webhook("github"), req, &body).await;
        assert_eq!(status, 401);
    }
    for _ in 0..30 {
        let (status, _) =
            call(&t, Endpoint::Webhook("slack"), slack_request(b"command=%2Fx", false), b"command=%2Fx").await;
        assert_eq!(status, 401);
    }

    let query = |body: &'static str| {
        let t = t.clone();
        async move {
            let req = http::Request::builder().method("POST").header("authorization", "Bearer tok");
            let (status, text) = call(&t, Endpoint::LogsQuery, req, body.as_bytes()).await;
            assert_eq!(status, 200, "{text}");
            serde_json::from_str::<Value>(&text).expect("json")
        }
    };
    let info = query(r#"{"level": "info", "limit": 1000}"#).await;
    let kept: Vec<&Value> =
        info["entries"].as_array().expect("entries").iter().filter(|e| e["event_id"] == "evt-kept").collect();
    assert_eq!(kept.len(), 1, "the integration's entry survived {flood} unsigned requests: {} entries", info["count"]);

    let rejected = query(r#"{"component": "github", "level": "warn", "limit": 1000}"#).await;
    let lines = rejected["entries"].as_array().expect("entries");
    // One line per minute and reason (two reasons; the flood may straddle a minute).
    assert!((2..=4).contains(&lines.len()), "{rejected}");
    let total: u64 = lines.iter().map(|e| e["count"].as_u64().expect("a count")).sum();
    assert_eq!(total, flood as u64, "{rejected}");
    assert!(
        lines.iter().any(|e| e["message"] == "webhook signature rejected: the signature header is missing"),
        "{rejected}"
    );
    let slack = query(r#"{"component": "slack"}"#).await;
    assert_eq!(
        slack["entries"].as_array().map(|e| e.iter().map(|e| e["count"].as_u64().unwrap_or(0)).sum::<u64>()),
        Some(30)
    );
    let raw = t.store.log_recent(aetherium::observe::activity::KEY, usize::MAX).await.expect("log");
    assert_eq!(raw.len(), 1, "nothing but the integration's entry is in the capped log");
}

// ---- item 8: Slack's ssl_check ----

#[tokio::test]
async fn slacks_ssl_check_gets_200_once_verified_and_401_unsigned() {
    let t = webhook_app().await;
    let body = b"ssl_check=1&token=gIkuvaNzQIHg97ATvDxqgjtO";
    let (status, text) = call(&t, Endpoint::Webhook("slack"), slack_request(body, true), body).await;
    assert_eq!(status, 200, "{text}");
    let (status, _) = call(&t, Endpoint::Webhook("slack"), slack_request(body, false), body).await;
    assert_eq!(status, 401);
}

// ---- item 7: bounded resources ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receivers_huge_retry_after_is_clamped_and_the_local_dispatcher_loop_survives() {
    let receiver = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains("poison"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", u64::MAX.to_string().as_str()))
        .mount(&receiver)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(204)).mount(&receiver).await;
    let url = format!("{}/hook", receiver.uri());
    let yaml = format!(
        "integrations:\n  hook:\n    type: webhook\n    url: {url}\n    secret: whsec_{}\nroutes:\n  - name: to-hook\n    on: custom.*\n    handle: hook\n",
        base64_key()
    );
    let queue = Arc::new(MemoryQueue::new(std::time::Duration::from_secs(1), 5));
    let t = TestApp::builder().yaml(&yaml).queue(queue.clone()).all_integrations().build().await;
    use aetherium::backends::queue::WorkQueue;
    queue.send(&event("custom.poison", json!({"what": "poison"}))).await.expect("send");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(t.app.dispatcher().run_loop(stopped));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    queue.send(&event("custom.fine", json!({"what": "fine"}))).await.expect("send");
    let delivered = aetherium_tests::wait::until(std::time::Duration::from_secs(10), || {
        let receiver = &receiver;
        async move {
            let hits = receiver.received_requests().await.unwrap_or_default();
            hits.iter().any(|r| String::from_utf8_lossy(&r.body).contains("fine")).then_some(())
        }
    })
    .await;
    assert!(!worker.is_finished(), "the loop is still running");
    let _ = stop.send(true);
    worker.await.expect("the loop ended cleanly, without a panic");
    assert!(delivered.is_some(), "the next record was processed after the poisoned one");
    assert_eq!(queue.len(), 1, "the poisoned record waits for its (clamped) retry");
    // The clamp itself: a receiver asking for u64::MAX seconds gets the record back within an hour.
    let err = t.app.dispatcher().process(&event("custom.poison", json!({"what": "poison"}))).await.expect_err("503");
    assert_eq!(err.retry_after(), Some(aetherium::backends::http_client::MAX_RETRY_AFTER), "{err}");
}

/// A Standard Webhooks key of 24 bytes, base64.
fn base64_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([7u8; 24])
}

#[tokio::test]
async fn a_claim_check_is_deleted_once_dispatched_and_a_late_redelivery_is_already_done() {
    use aetherium::backends::queue::{WorkQueue, claim};
    use aetherium::engine::dispatch::Outcome;
    let store = Arc::new(MemoryStore::new());
    let queue = Arc::new(MemoryQueue::default());
    let big = "x".repeat(300 * 1024);
    let record = Event::new("custom.big", "test", json!({"blob": big}).as_object().cloned().unwrap_or_default())
        .with_id("evt-big")
        .to_json();
    claim::enqueue(queue.as_ref(), store.as_ref(), &record).await.expect("enqueue");
    let message = queue.receive(1, std::time::Duration::from_secs(1)).await.expect("receive").remove(0).body;
    let key = claim::Claim::parse(&message).expect("a claim").expect("a claim").key;
    use aetherium::backends::store::Store;
    assert!(store.get(&key).await.expect("get").is_some(), "parked");

    let d = aetherium::engine::dispatch::Dispatcher::new(
        Arc::new(MemoryBus::new()),
        store.clone(),
        queue.clone(),
        Default::default(),
    );
    assert_eq!(d.process(&message).await.expect("dispatched").outcome, Outcome::Dispatched);
    assert!(store.get(&key).await.expect("get").is_none(), "the claim is gone after its dispatch");
    let again = d.process(&message).await.expect("a late redelivery is not an error");
    assert_eq!((again.id.as_str(), again.outcome), ("evt-big", Outcome::AlreadyDone));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_stream_keeps_a_large_event_as_its_envelope_while_subscribers_get_it_whole() {
    use aetherium::backends::bus::EventBus;
    use futures_util::StreamExt;
    let server = aetherium_tests::RedisServer::start().await;
    let bus = aetherium::backends::bus::RedisBus::new(
        aetherium::backends::redis_conn::RedisHandle::open(&server.url()).expect("url"),
    );
    let client = redis::Client::open(server.url()).expect("client");
    let (mut sink, mut messages) = client.get_async_pubsub().await.expect("pubsub").split();
    sink.subscribe("custom.big").await.expect("subscribe");
    let big = Event::new(
        "custom.big",
        "test",
        json!({"blob": "y".repeat(1024 * 1024)}).as_object().cloned().unwrap_or_default(),
    )
    .with_id("evt-1mb");
    bus.publish("custom.big", &big).await.expect("publish");
    let small = Event::new("custom.small", "test", Default::default()).with_id("evt-small");
    bus.publish("custom.small", &small).await.expect("publish");

    let heard =
        tokio::time::timeout(std::time::Duration::from_secs(5), messages.next()).await.expect("heard").expect("open");
    assert!(heard.get_payload_bytes().len() > 1024 * 1024, "pub/sub carries the whole event");
    let mut conn = client.get_multiplexed_async_connection().await.expect("conn");
    let entries: Vec<(String, Vec<(String, String)>)> =
        redis::cmd("XRANGE").arg("aetherium:{events}").arg("-").arg("+").query_async(&mut conn).await.expect("xrange");
    assert_eq!(entries.len(), 2);
    for (_, fields) in &entries {
        let size: usize = fields.iter().map(|(k, v)| k.len() + v.len()).sum();
        // docs/architecture.md: 16 KiB an entry at most.
        assert!(size <= 16 * 1024 + 64, "an entry holds {size} bytes");
    }
    let kept: Value = serde_json::from_str(&entries[0].1[1].1).expect("json");
    assert_eq!((kept["id"].as_str(), kept["type"].as_str()), (Some("evt-1mb"), Some("custom.big")), "{kept}");
    assert!(kept["data_omitted"].as_u64().is_some_and(|n| n > 1024 * 1024), "{kept}");
    let small: Value = serde_json::from_str(&entries[1].1[1].1).expect("json");
    assert_eq!(small["id"], "evt-small", "a small event is kept whole: {small}");
    assert!(small.get("data_omitted").is_none());
}

// ---- item 9: IAM ----

/// events/events/task-completed.json with no bearer token and the IAM identity Lambda puts in
/// the envelope behind an AWS_IAM URL, which anyone invoking the function directly can write.
fn iam_envelope() -> aetherium::edge::lambda::UrlRequest {
    let mut doc: Value =
        serde_json::from_str(&aetherium_tests::fixtures::envelope("events/task-completed.json")).expect("envelope");
    doc["headers"].as_object_mut().expect("headers").remove("authorization");
    doc["requestContext"]["authorizer"] =
        json!({"iam": {"userArn": "arn:aws:iam::123456789012:user/forger", "accountId": "123456789012"}});
    serde_json::from_value(doc).expect("a URL request")
}

#[tokio::test]
async fn an_iam_identity_in_the_envelope_counts_only_on_a_function_whose_url_is_aws_iam() {
    let respond = |env: &'static [(&'static str, &'static str)]| async move {
        TestApp::with_env(env).await.envelope(Endpoint::Events, iam_envelope()).await.status_code
    };
    assert_eq!(respond(&[("AETHERIUM_API_TOKEN", "tok")]).await, 401, "a URL of AuthType NONE trusts no envelope");
    assert_eq!(respond(&[]).await, 500, "nor does one with no token: it fails closed");
    assert_eq!(respond(&[("AETHERIUM_FUNCTION_URL_AUTH", "NONE"), ("AETHERIUM_API_TOKEN", "tok")]).await, 401);
    assert_eq!(
        respond(&[("AETHERIUM_FUNCTION_URL_AUTH", "AWS_IAM")]).await,
        202,
        "behind AWS_IAM, Lambda vouches for it"
    );
}

// ---- item 1: health that cannot be used against us ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn however_many_health_requests_arrive_github_and_slack_see_one_check_each_outside_the_rate_limit() {
    let redis = aetherium_tests::RedisServer::start().await;
    let api = aetherium_tests::stand_in::start().await;
    let rate_limit = Mock::given(method("GET"))
        .and(path("/rate_limit"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({})).set_delay(std::time::Duration::from_millis(100)),
        )
        .expect(1)
        .named("GitHub /rate_limit")
        .mount_as_scoped(&api)
        .await;
    let auth_test = Mock::given(method("POST"))
        .and(path("/auth.test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .named("Slack auth.test")
        .mount_as_scoped(&api)
        .await;
    // Two instances (two Lambda sandboxes) sharing one Redis.
    let instance = || {
        let uri = api.uri();
        let url = redis.url();
        async move {
            // What `App::from_config` chooses for this REDIS_URL: a Redis bus and store.
            let conn = aetherium::backends::redis_conn::RedisHandle::open(&url).expect("url");
            TestApp::builder()
                .env(&[
                    ("GITHUB_API_URL", &uri),
                    ("GITHUB_TOKEN", "ghp"),
                    ("SLACK_API_URL", &uri),
                    ("SLACK_BOT_TOKEN", "xoxb"),
                    ("REDIS_URL", &url),
                    // No bus bridge runs here: health expects no heartbeat.
                    ("AETHERIUM_BUS_BRIDGE", "false"),
                ])
                .bus(Arc::new(aetherium::backends::bus::RedisBus::new(conn.clone())))
                .store(Arc::new(aetherium::backends::store::RedisStore::new(conn)))
                .all_integrations()
                .build()
                .await
        }
    };
    let (a, b) = (instance().await, instance().await);
    let requests = (0..40).map(|i| {
        let t = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { call(&t, Endpoint::Health, http::Request::builder().method("GET"), b"").await }
    });
    for (status, text) in futures_util::future::join_all(requests).await {
        assert_eq!(status, 200, "{text}");
        let body: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            body.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
            Some(vec!["components".into(), "status".into()])
        );
        assert_eq!(
            (body["components"]["github"].as_str(), body["components"]["slack"].as_str()),
            (Some("healthy"), Some("healthy"))
        );
    }
    assert_eq!(rate_limit.received_requests().await.len(), 1, "one GitHub check for 40 requests on two instances");
    assert_eq!(auth_test.received_requests().await.len(), 1, "one Slack check");
    let client = redis::Client::open(redis.url()).expect("client");
    let mut conn = client.get_multiplexed_async_connection().await.expect("conn");
    let spent: Vec<String> = redis::cmd("KEYS").arg("ratelimit:*").query_async(&mut conn).await.expect("keys");
    assert!(spent.is_empty(), "health spent none of the rate limit PR comments use: {spent:?}");
}
