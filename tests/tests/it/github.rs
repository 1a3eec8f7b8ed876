//! The GitHub integration against a real HTTP server standing in for api.github.com:
//! every call's method, path, headers and body; exactly-once comments; retries and rate
//! limits; the GitHub App flow with a key generated here; the PR route.

use aetherium::backends::queue::{MemoryQueue, WorkQueue};
use aetherium::backends::redis_conn::RedisHandle;
use aetherium::backends::store::{MemoryStore, RedisStore, Store};
use aetherium::edge::api::Endpoint;
use aetherium::engine::dispatch::DispatchError;
use aetherium::{Event, Health};
use aetherium_tests::app::Builder;
use aetherium_tests::github_app::{ValidJwt, generate_app_key, mount_mint};
use aetherium_tests::github_fake::Comments;
use aetherium_tests::{RedisServer, TestApp, free_port};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_partial_json, header, header_regex, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "ghp_test_token";
const API: &str = "api-token-xyz";
const COMMENTS: &str = "/repos/Codertocat/Hello-World/issues/2/comments";
const PR_URL: &str = "https://github.com/Codertocat/Hello-World/pull/2";

/// GitHub pointed at `server`, with a token unless `extra` configures a GitHub App.
fn github_at(server: &MockServer, extra: &[(&str, &str)]) -> Builder {
    let uri = server.uri();
    let mut env: Vec<(&str, &str)> = vec![("GITHUB_API_URL", &uri), ("AETHERIUM_API_TOKEN", API)];
    env.extend_from_slice(extra);
    if !extra.iter().any(|(k, _)| k.starts_with("GITHUB_APP")) {
        env.push(("GITHUB_TOKEN", TOKEN));
    }
    TestApp::builder().env(&env).builtin()
}

async fn app_with(server: &MockServer, store: Arc<dyn Store>, extra: &[(&str, &str)]) -> TestApp {
    github_at(server, extra).store(store).build().await
}

async fn app(server: &MockServer) -> TestApp {
    app_with(server, Arc::new(MemoryStore::new()), &[]).await
}

fn task_event(id: &str, kind: &str, extra: Value) -> String {
    let mut data = json!({ "task_id": "T-42", "pull_request": PR_URL });
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    Event::new(kind, "platform", data.as_object().cloned().unwrap_or_default()).with_id(id).to_json()
}

/// Every call must carry GitHub's required headers and our token.
fn github_call(verb: &str, p: &str) -> wiremock::MockBuilder {
    Mock::given(method(verb))
        .and(path(p))
        .and(header("accept", "application/vnd.github+json"))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(header_regex("user-agent", r"^aetherium-integrations/\d+\.\d+\.\d+$"))
}

async fn mount_comments(server: &MockServer, comments: &Comments, bearer: &str) {
    github_call("GET", COMMENTS)
        .and(query_param("per_page", "100"))
        .and(header("authorization", format!("Bearer {bearer}").as_str()))
        .respond_with(comments.clone())
        .mount(server)
        .await;
    github_call("POST", COMMENTS)
        .and(header("authorization", format!("Bearer {bearer}").as_str()))
        .and(header("content-type", "application/json"))
        .respond_with(comments.clone())
        .mount(server)
        .await;
}

#[tokio::test]
async fn task_completed_comments_on_the_pr_once_however_often_it_is_replayed() {
    let server = aetherium_tests::stand_in::start().await;
    let comments = Comments::default();
    mount_comments(&server, &comments, TOKEN).await;
    let d = app(&server).await.app.dispatcher();
    let record = task_event("evt-c1", "task.completed", json!({}));
    for _ in 0..3 {
        d.process(&record).await.expect("dispatched");
    }
    let bodies = comments.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(bodies[0].starts_with("✅ Task T-42 completed successfully!"), "{}", bodies[0]);
    assert!(bodies[0].contains("<!-- aetherium:evt-c1:task-comment:"), "hidden marker: {}", bodies[0]);
}

#[tokio::test]
async fn task_failed_says_why() {
    let server = aetherium_tests::stand_in::start().await;
    let comments = Comments::default();
    mount_comments(&server, &comments, TOKEN).await;
    let d = app(&server).await.app.dispatcher();
    d.process(&task_event("evt-f1", "task.failed", json!({"error": "VM ran out of memory"}))).await.expect("ok");
    d.process(&task_event("evt-f2", "task.failed", json!({}))).await.expect("ok");
    let bodies = comments.bodies();
    assert!(bodies[0].starts_with("❌ Task T-42 failed: VM ran out of memory\n"), "{}", bodies[0]);
    assert!(bodies[1].starts_with("❌ Task T-42 failed\n"), "{}", bodies[1]);
}

#[tokio::test]
async fn events_without_a_pull_request_or_of_other_types_call_nothing() {
    let server = aetherium_tests::stand_in::start().await;
    Mock::given(wiremock::matchers::any()).respond_with(ResponseTemplate::new(500)).expect(0).mount(&server).await;
    let d = app(&server).await.app.dispatcher();
    let no_pr = Event::new("task.completed", "p", json!({"task_id": "x"}).as_object().cloned().unwrap_or_default());
    d.process(&no_pr.to_json()).await.expect("ok");
    d.process(&task_event("evt-s", "task.started", json!({}))).await.expect("ok");
}

#[tokio::test]
async fn a_crash_after_posting_does_not_post_twice() {
    let server = aetherium_tests::stand_in::start().await;
    let comments = Comments::default();
    mount_comments(&server, &comments, TOKEN).await;
    let record = task_event("evt-crash", "task.completed", json!({}));
    // The first dispatcher posts; its marks are lost with it (a fresh store for the second,
    // as after a crash before the event was marked done).
    app(&server).await.app.dispatcher().process(&record).await.expect("posted");
    app(&server).await.app.dispatcher().process(&record).await.expect("found");
    assert_eq!(comments.bodies().len(), 1, "no second comment: {:?}", comments.bodies());
}

/// Anyone can comment on a PR: a marker posted ahead by someone else, in the old unsigned
/// form or with a made-up signature, does not stop our comment.
#[tokio::test]
async fn a_marker_posted_by_someone_else_does_not_suppress_the_comment() {
    let server = aetherium_tests::stand_in::start().await;
    let comments = Comments::default();
    comments.seed("nothing to see\n\n<!-- aetherium:evt-pre:task-comment -->");
    comments.seed("nothing to see\n\n<!-- aetherium:evt-pre:task-comment:000000000000000000000000 -->");
    mount_comments(&server, &comments, TOKEN).await;
    let record = task_event("evt-pre", "task.completed", json!({}));
    app(&server).await.app.dispatcher().process(&record).await.expect("posted");
    let bodies = comments.bodies();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert!(bodies[2].starts_with("✅ Task T-42 completed successfully!"), "{}", bodies[2]);
}

#[tokio::test]
async fn a_5xx_then_success_posts_exactly_one_comment() {
    let server = aetherium_tests::stand_in::start().await;
    let comments = Comments::default();
    github_call("POST", COMMENTS)
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    mount_comments(&server, &comments, TOKEN).await;
    app(&server)
        .await
        .app
        .dispatcher()
        .process(&task_event("evt-5xx", "task.completed", json!({})))
        .await
        .expect("retried inside");
    assert_eq!(comments.bodies().len(), 1);
}

#[tokio::test]
async fn persistent_5xx_fails_the_record_for_a_later_retry() {
    let server = aetherium_tests::stand_in::start().await;
    github_call("GET", COMMENTS).respond_with(ResponseTemplate::new(503)).expect(3).mount(&server).await;
    let err = app(&server)
        .await
        .app
        .dispatcher()
        .process(&task_event("evt-down", "task.completed", json!({})))
        .await
        .expect_err("fails");
    assert!(matches!(err, DispatchError::Retry { after: None, .. }), "{err:?}");
}

#[tokio::test]
async fn a_429_retry_after_delays_the_records_retry() {
    let server = aetherium_tests::stand_in::start().await;
    github_call("GET", COMMENTS).respond_with(ResponseTemplate::new(200).set_body_json(json!([]))).mount(&server).await;
    github_call("POST", COMMENTS)
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "30")
                .set_body_json(json!({"message": "slow down"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let queue = Arc::new(MemoryQueue::new(Duration::from_millis(100), 5));
    let d = github_at(&server, &[]).queue(queue.clone()).build().await.app.dispatcher();
    queue.send(&task_event("evt-429", "task.completed", json!({}))).await.expect("send");
    let msg = queue.receive(1, Duration::from_secs(1)).await.expect("receive").remove(0);
    let err = d.process(&msg.body).await.expect_err("rate limited");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    d.delay_retry(&msg, &err).await;
    assert!(
        queue.receive(1, Duration::from_millis(500)).await.expect("receive").is_empty(),
        "hidden for 30 s, not 100 ms"
    );
}

#[tokio::test]
async fn exhausted_rate_limit_headers_are_honoured() {
    let server = aetherium_tests::stand_in::start().await;
    let reset = chrono::Utc::now().timestamp() + 120;
    github_call("GET", COMMENTS)
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                .set_body_json(json!({"message": "API rate limit exceeded"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = app(&server)
        .await
        .app
        .dispatcher()
        .process(&task_event("evt-rl", "task.completed", json!({})))
        .await
        .expect_err("limited");
    let after = err.retry_after().expect("a delay");
    assert!((110..=121).contains(&after.as_secs()), "{after:?}");
}

#[tokio::test]
async fn other_4xx_are_permanent_and_logged_not_retried() {
    let server = aetherium_tests::stand_in::start().await;
    github_call("GET", COMMENTS).respond_with(ResponseTemplate::new(200).set_body_json(json!([]))).mount(&server).await;
    github_call("POST", COMMENTS)
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"message": "Resource not accessible by integration"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let app = app(&server).await;
    let d = app.app.dispatcher();
    let record = task_event("evt-403", "task.completed", json!({}));
    d.process(&record).await.expect("a permanent failure completes the record");
    d.process(&record).await.expect("and is not retried");
    let log = aetherium::observe::activity::ActivityLog::new(app.store.clone()).recent(10).await.expect("log");
    assert!(
        log.iter().any(|e| e.component == "github"
            && e.level == aetherium::observe::activity::Level::Error
            && e.message.contains("Resource not accessible")),
        "{log:?}"
    );
}

async fn two_dispatchers_on_the_same_event_post_one_comment(redis: RedisServer) {
    let server = aetherium_tests::stand_in::start().await;
    let comments = Comments::default();
    mount_comments(&server, &comments, TOKEN).await;
    let store = || -> Arc<dyn Store> { Arc::new(RedisStore::new(RedisHandle::open(&redis.url()).expect("url"))) };
    // Two Lambda instances: separate apps, one shared Redis.
    let (a, b) = (
        app_with(&server, store(), &[]).await.app.dispatcher(),
        app_with(&server, store(), &[]).await.app.dispatcher(),
    );
    let record = task_event("evt-race", "task.completed", json!({}));
    let (ra, rb) = tokio::join!(a.process(&record), b.process(&record));
    // The loser is told to retry; its retry finds the event done.
    for (d, r) in [(&a, ra), (&b, rb)] {
        if r.is_err() {
            d.process(&record).await.expect("the retry succeeds");
        }
    }
    assert_eq!(comments.bodies().len(), 1, "{:?}", comments.bodies());
}

#[tokio::test]
async fn send_notification_and_create_artifact_call_the_right_endpoints() {
    let server = aetherium_tests::stand_in::start().await;
    github_call("POST", "/repos/octo/repo/issues/7/comments")
        .and(body_partial_json(json!({"body": "Deployed 🚀"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .expect(1)
        .mount(&server)
        .await;
    github_call("POST", "/repos/myorg/myrepo/pulls")
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_partial_json(json!({"title": "Implement feature X", "body": "Automated PR from Aetherium", "head": "feature/x", "base": "main"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"number": 1347, "html_url": "https://github.com/myorg/myrepo/pull/1347"})))
        .expect(1)
        .mount(&server)
        .await;
    let app = app(&server).await;
    let github = app.app.integration("github").expect("registered");
    github.send_notification(&aetherium::Notification::message("octo/repo#7", "Deployed 🚀")).await.expect("notify");
    let content = json!({"owner": "myorg", "repo": "myrepo", "title": "Implement feature X", "body": "Automated PR from Aetherium", "head": "feature/x", "base": "main"});
    let pr = github
        .create_artifact(&aetherium::Artifact {
            kind: "pull_request".into(),
            content: content.as_object().cloned().unwrap_or_default(),
        })
        .await
        .expect("created");
    assert_eq!(pr.id, Some(1347));
    assert_eq!(pr.url.as_deref(), Some("https://github.com/myorg/myrepo/pull/1347"));
}

#[tokio::test]
async fn health_is_a_cheap_authenticated_call() {
    let server = aetherium_tests::stand_in::start().await;
    github_call("GET", "/rate_limit")
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"resources": {}})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    github_call("GET", "/rate_limit")
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})))
        .mount(&server)
        .await;
    let app = app(&server).await;
    let github = app.app.integration("github").expect("registered");
    assert_eq!(github.health().await, Health::Healthy);
    assert_eq!(github.health().await.to_string(), "unhealthy: bad credentials (401)");
    let off = TestApp::builder().builtin().build().await.app;
    assert!(off.integration("github").is_none(), "not configured: not registered, reported disabled");
    let report = off.health().check(Duration::from_secs(1)).await;
    assert_eq!(report.components["github"], "disabled");
}

// ---- the PR route ----

/// A platform service's POST, with its `Authorization` header as given.
async fn post_pr(t: &TestApp, auth: Option<&str>, body: Value) -> (u16, Value) {
    let mut b = http::Request::builder().method("POST");
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    let answer = t.call(Endpoint::GithubPr, b, body.to_string().as_bytes()).await;
    (answer.status, serde_json::from_slice(&answer.body).expect("json"))
}

fn guide_pr() -> Value {
    json!({"owner": "myorg", "repo": "myrepo", "title": "Implement feature X", "body": "Automated PR from Aetherium", "head": "feature/x", "base": "main"})
}

#[tokio::test]
async fn pr_route_creates_and_answers_201_with_number_and_url() {
    let server = aetherium_tests::stand_in::start().await;
    github_call("POST", "/repos/myorg/myrepo/pulls")
        .and(body_partial_json(
            guide_pr()
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.remove("owner");
                    o.remove("repo");
                    Value::Object(o)
                })
                .unwrap_or_default(),
        ))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"number": 3, "html_url": "https://github.com/myorg/myrepo/pull/3"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (status, body) = post_pr(&app(&server).await, Some(&format!("Bearer {API}")), guide_pr()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"number": 3, "url": "https://github.com/myorg/myrepo/pull/3"}));
}

#[tokio::test]
async fn pr_route_passes_on_githubs_422_and_404() {
    let server = aetherium_tests::stand_in::start().await;
    github_call("POST", "/repos/myorg/myrepo/pulls")
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Validation Failed",
            "errors": [{"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for myorg:feature/x."}]
        })))
        .mount(&server)
        .await;
    github_call("POST", "/repos/myorg/nope/pulls")
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&server)
        .await;
    let app = app(&server).await;
    let (status, body) = post_pr(&app, Some(&format!("Bearer {API}")), guide_pr()).await;
    assert_eq!(status, 422);
    assert!(body["error"].as_str().is_some_and(|e| e.contains("A pull request already exists")), "{body}");
    let mut missing = guide_pr();
    missing["repo"] = "nope".into();
    let (status, body) = post_pr(&app, Some(&format!("Bearer {API}")), missing).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn pr_route_answers_502_when_github_is_unreachable() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let env = [("GITHUB_API_URL", dead.as_str()), ("GITHUB_TOKEN", TOKEN), ("AETHERIUM_API_TOKEN", API)];
    let app = TestApp::builder().env(&env).builtin().build().await;
    let (status, body) = post_pr(&app, Some(&format!("Bearer {API}")), guide_pr()).await;
    assert_eq!(status, 502, "{body}");
}

#[tokio::test]
async fn pr_route_bad_input_and_no_auth_never_call_github() {
    let server = aetherium_tests::stand_in::start().await;
    Mock::given(wiremock::matchers::any()).respond_with(ResponseTemplate::new(201)).expect(0).mount(&server).await;
    let app = app(&server).await;
    for auth in [None, Some("Bearer wrong")] {
        assert_eq!(post_pr(&app, auth, guide_pr()).await.0, 401);
    }
    let bearer = format!("Bearer {API}");
    for (field, value, want) in [
        ("owner", Value::Null, "`owner` is required"),
        ("repo", json!(""), "`repo` must be 1 to 100"),
        ("title", json!(42), "`title` must be a string"),
        ("head", Value::Null, "`head` is required"),
        ("base", json!(" "), "`base` must be 1 to 255"),
        ("owner", json!("../etc"), "`owner` may hold only"),
        // GitHub has no account `a.b`: refused here, not sent on to come back a 502.
        ("owner", json!("a.b"), "`owner` may hold only"),
        ("repo", json!(".."), "`repo` may hold only"),
        ("body", json!(["x"]), "`body` must be a string"),
        ("draft", json!(true), "unknown field `draft`"),
    ] {
        let mut req = guide_pr();
        if value.is_null() {
            req.as_object_mut().map(|o| o.remove(field));
        } else {
            req[field] = value;
        }
        let (status, body) = post_pr(&app, Some(&bearer), req).await;
        assert_eq!(status, 400, "{field}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains(want)), "{field}: {body}");
    }
}

// ---- GitHub App ----

#[tokio::test]
async fn github_app_flow_discovers_the_installation_mints_a_token_caches_it_and_refreshes_on_401() {
    app_flow(Arc::new(MemoryStore::new())).await;
}

/// The token cache on each Redis shape.
async fn github_app_token_cache_in_redis(redis: RedisServer) {
    app_flow(Arc::new(RedisStore::new(RedisHandle::open(&redis.url()).expect("url")))).await;
}

async fn app_flow(store: Arc<dyn Store>) {
    let key = generate_app_key();
    let server = aetherium_tests::stand_in::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/Codertocat/Hello-World/installation"))
        .and(ValidJwt::of(&key))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 77})))
        .expect(1)
        .mount(&server)
        .await;
    mount_mint(&server, &key, "ghs_installation_1").await;
    let comments = Comments::default();
    mount_comments(&server, &comments, "ghs_installation_1").await;

    let app_key = [("GITHUB_APP_ID", "12345"), ("GITHUB_APP_PRIVATE_KEY", key.pem.as_str())];
    let d = app_with(&server, store.clone(), &app_key).await.app.dispatcher();
    d.process(&task_event("evt-app-1", "task.completed", json!({}))).await.expect("first comment");
    d.process(&task_event("evt-app-2", "task.completed", json!({}))).await.expect("second: cached token");
    assert_eq!(comments.bodies().len(), 2);
    let shared = store.get("github:token:77").await.expect("get").expect("the token is shared through the store");
    assert!(!shared.contains("ghs_installation_1"), "the shared Redis holds it sealed, not in plaintext: {shared}");
    // One discovery and one mint for both comments.
    server.verify().await;

    // Revoke token 1: its next use gets 401, and one refresh mints token 2.
    server.reset().await;
    github_call("GET", COMMENTS)
        .and(header("authorization", "Bearer ghs_installation_1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})))
        .expect(1)
        .mount(&server)
        .await;
    mount_mint(&server, &key, "ghs_installation_2").await;
    mount_comments(&server, &comments, "ghs_installation_2").await;
    d.process(&task_event("evt-app-3", "task.completed", json!({}))).await.expect("refreshed once");
    assert_eq!(comments.bodies().len(), 3);
    server.verify().await;
}

#[tokio::test]
async fn an_unreadable_app_key_is_a_startup_error_naming_the_setting() {
    for pem in ["not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"] {
        let builder = TestApp::builder().env(&[("GITHUB_APP_ID", "1"), ("GITHUB_APP_PRIVATE_KEY", pem)]).builtin();
        let text = builder.try_build().await.expect_err("refused");
        assert!(text.contains("GITHUB_APP_PRIVATE_KEY") && !text.contains("AAAA"), "{text}");
    }
}

async fn the_rate_limit_is_shared_by_every_instance_through_redis(redis: RedisServer) {
    let store = || -> Arc<dyn Store> { Arc::new(RedisStore::new(RedisHandle::open(&redis.url()).expect("url"))) };
    let (a, b) = (
        aetherium::backends::ratelimit::RateLimiter::new(store(), "github", 5, Duration::ZERO),
        aetherium::backends::ratelimit::RateLimiter::new(store(), "github", 5, Duration::ZERO),
    );
    // Start just after a second boundary so all attempts fall in one window.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time");
    tokio::time::sleep(Duration::from_nanos(1_000_000_000 - u64::from(now.subsec_nanos())) + Duration::from_millis(20))
        .await;
    let mut granted = 0;
    for i in 0..8 {
        let limiter = if i % 2 == 0 { &a } else { &b };
        if limiter.acquire().await.is_ok() {
            granted += 1;
        }
    }
    assert_eq!(granted, 5, "five per second across both instances");
}

#[tokio::test]
async fn a_github_enterprise_base_url_and_pr_host_work() {
    let server = aetherium_tests::stand_in::start().await;
    let ghes_base = format!("{}/api/v3", server.uri());
    let host = server.uri().trim_start_matches("http://").to_owned();
    let comments = Comments::default();
    Mock::given(method("GET"))
        .and(path(format!("/api/v3{COMMENTS}")))
        .respond_with(comments.clone())
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v3{COMMENTS}")))
        .respond_with(comments.clone())
        .mount(&server)
        .await;
    let env = [("GITHUB_API_URL", ghes_base.as_str()), ("GITHUB_TOKEN", TOKEN)];
    let app = TestApp::builder().env(&env).builtin().build().await.app;
    let data = json!({"task_id": "T-9", "pull_request": format!("https://{host}/Codertocat/Hello-World/pull/2")});
    let ev = Event::new("task.completed", "p", data.as_object().cloned().unwrap_or_default());
    app.dispatcher().process(&ev.to_json()).await.expect("comment via the Enterprise API path");
    assert_eq!(comments.bodies().len(), 1);
    let foreign = json!({"task_id": "T-9", "pull_request": "https://evil.example.com/a/b/pull/1"});
    let ev = Event::new("task.completed", "p", foreign.as_object().cloned().unwrap_or_default());
    app.dispatcher().process(&ev.to_json()).await.expect("a foreign host is refused permanently, not retried");
    assert_eq!(comments.bodies().len(), 1);
}

aetherium_tests::per_shape!(
    github_app_token_cache_in_redis,
    two_dispatchers_on_the_same_event_post_one_comment,
    the_rate_limit_is_shared_by_every_instance_through_redis,
);

/// The stand-ins are as strict as GitHub's front: a bodiless POST without `Content-Length`
/// (what reqwest sends when told nothing) is answered 411, as octocrab#463 met it on the
/// token endpoint; the same POST saying `Content-Length: 0` reaches the route.
#[tokio::test]
async fn the_stand_in_refuses_a_bodiless_post_without_a_length_as_github_does() {
    let server = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(201)).mount(&server).await;
    let http = reqwest::Client::new();
    let url = format!("{}/app/installations/77/access_tokens", server.uri());
    let bare = http.post(&url).send().await.expect("sent");
    assert_eq!(bare.status(), 411, "no Content-Length, no Transfer-Encoding");
    let framed = http.post(&url).header("content-length", "0").send().await.expect("sent");
    assert_eq!(framed.status(), 201);
    let with_body = http.post(&url).json(&json!({})).send().await.expect("sent");
    assert_eq!(with_body.status(), 201, "a body's length is sent with it");
}
