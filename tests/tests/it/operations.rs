//! Operations: the activity log and its query route, metrics, declarative routes, and a
//! custom integration enabled from the config alone.

use aetherium::Event;
use aetherium::backends::redis_conn::RedisHandle;
use aetherium::backends::store::{MemoryStore, RedisStore, Store};
use aetherium::edge::api::Endpoint;
use aetherium_tests::github_fake::Comments;
use aetherium_tests::{RedisServer, TestApp};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, ResponseTemplate};

const TOKEN: &str = "ops-token";

/// The app every function would build from `yaml` and `env` (with the API token), every
/// integration included; the start-up error otherwise.
async fn app_from_yaml(yaml: &str, env: &[(&str, &str)], store: Arc<dyn Store>) -> Result<TestApp, String> {
    TestApp::builder()
        .yaml(yaml)
        .env(&[("AETHERIUM_API_TOKEN", TOKEN)])
        .env(env)
        .store(store)
        .all_integrations()
        .try_build()
        .await
}

async fn call(t: &TestApp, route: Endpoint, method: &str, auth: Option<&str>, body: &str) -> (u16, String) {
    let mut b = http::Request::builder().method(method);
    if let Some(a) = auth {
        b = b.header("authorization", format!("Bearer {a}"));
    }
    let answer = t.call(route, b, body.as_bytes()).await;
    (answer.status, answer.text())
}

fn event(kind: &str, data: Value) -> Event {
    Event::new(kind, "platform", data.as_object().cloned().unwrap_or_default())
}

// ---- activity log ----

#[tokio::test]
async fn logs_query_filters_by_component_and_level_newest_first() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let log = aetherium::observe::activity::ActivityLog::new(store.clone());
    use aetherium::observe::activity::Level::*;
    for (c, l, m) in
        [("github", Info, "one"), ("slack", Error, "two"), ("github", Error, "three"), ("github", Debug, "four")]
    {
        log.record(c, l, m, None).await;
    }
    let app = app_from_yaml("", &[], store).await.expect("app");
    let (status, body) = call(
        &app,
        Endpoint::LogsQuery,
        "POST",
        Some(TOKEN),
        r#"{"component": "github", "level": "info", "limit": 100}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    let messages: Vec<&str> =
        v["entries"].as_array().expect("entries").iter().filter_map(|e| e["message"].as_str()).collect();
    assert_eq!(messages, vec!["three", "one"], "newest first, debug filtered out, slack filtered out");
    let (_, body) = call(&app, Endpoint::LogsQuery, "POST", Some(TOKEN), r#"{"limit": 1}"#).await;
    assert_eq!(serde_json::from_str::<Value>(&body).expect("json")["entries"][0]["message"], "four");
    let (_, body) = call(&app, Endpoint::LogsQuery, "POST", Some(TOKEN), r#"{"since": "2999-01-01T00:00:00Z"}"#).await;
    assert_eq!(serde_json::from_str::<Value>(&body).expect("json")["count"], 0);
}

/// `logs/query` with an `event_id` follows one event, oldest first: the ingest's arrival and
/// queueing, the dispatcher's publication and its route's outcome, and nothing of another
/// event handled alongside it. `delivery_id` is the same filter.
#[tokio::test]
async fn logs_query_follows_one_event_from_arrival_to_its_routes() {
    let (github, comments) = aetherium_tests::github_fake::github_and_slack().await;
    let uri = github.uri();
    let t = TestApp::builder()
        .env(&[("AETHERIUM_API_TOKEN", TOKEN), ("GITHUB_API_URL", &uri), ("GITHUB_TOKEN", "ghp")])
        .builtin()
        .build()
        .await;
    for id in ["follow-1", "other-2"] {
        let body = json!({"id": id, "type": "task.completed", "data": {"task_id": id, "pull_request": "https://github.com/o/r/pull/1"}});
        assert_eq!(call(&t, Endpoint::Events, "POST", Some(TOKEN), &body.to_string()).await.0, 202);
    }
    let dispatcher = t.app.dispatcher();
    for msg in t.queue.receive(10, Duration::from_millis(100)).await.expect("receive") {
        assert!(dispatcher.settle(&msg).await, "dispatched");
    }
    assert_eq!(comments.bodies().len(), 2);
    for filter in ["event_id", "delivery_id"] {
        let (status, body) =
            call(&t, Endpoint::LogsQuery, "POST", Some(TOKEN), &json!({ filter: "follow-1" }).to_string()).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        let entries = v["entries"].as_array().expect("entries");
        assert!(entries.iter().all(|e| e["event_id"] == "follow-1"), "only that event: {body}");
        let story: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e["component"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("")))
            .collect();
        assert_eq!(
            story,
            vec![
                ("ingest", "received task.completed from platform"),
                ("ingest", "queued"),
                ("dispatcher", "published on the bus as task.completed"),
                ("github", "comment on o/r#1: ok"),
                ("dispatcher", "route github.handle on task.completed: ok"),
            ],
            "in order: {body}"
        );
    }
}

#[tokio::test]
async fn logs_query_refuses_bad_queries_and_missing_auth() {
    let app = app_from_yaml("", &[], Arc::new(MemoryStore::new())).await.expect("app");
    assert_eq!(call(&app, Endpoint::LogsQuery, "POST", None, "{}").await.0, 401);
    assert_eq!(call(&app, Endpoint::LogsQuery, "POST", Some("nope"), "{}").await.0, 401);
    for (body, want) in [
        ("{not json", "not a valid query"),
        (r#"{"level": "loud"}"#, "`level` `loud` is not one of"),
        (r#"{"limit": 0}"#, "`limit` must be 1 to 1000"),
        (r#"{"limit": 5000}"#, "`limit` must be 1 to 1000"),
        (r#"{"since": "last week"}"#, "`since` must be RFC 3339"),
        (r#"{"component": "github", "lvl": "info"}"#, "unknown field `lvl`"),
    ] {
        let (status, text) = call(&app, Endpoint::LogsQuery, "POST", Some(TOKEN), body).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(want), "{body}: {text}");
    }
}

#[tokio::test]
async fn a_rejected_webhook_is_in_the_activity_log_with_its_reason() {
    let app =
        app_from_yaml("", &[("GITHUB_WEBHOOK_SECRET", "s3cret")], Arc::new(MemoryStore::new())).await.expect("app");
    let req = http::Request::builder()
        .method("POST")
        .header("x-github-event", "push")
        .header("x-github-delivery", "d-1")
        .header("x-hub-signature-256", format!("sha256={}", "0".repeat(64)));
    assert_eq!(app.call(Endpoint::Webhook("github"), req, b"{}").await.status, 401);
    let (_, body) =
        call(&app, Endpoint::LogsQuery, "POST", Some(TOKEN), r#"{"component": "github", "level": "warn"}"#).await;
    assert!(body.contains("webhook signature rejected: the signature does not match"), "{body}");
}

// ---- metrics ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_counted_across_instances_and_served_as_prometheus_text() {
    let redis = RedisServer::start().await;
    let github = aetherium_tests::stand_in::start().await;
    let comments = Comments::default();
    for verb in ["GET", "POST"] {
        Mock::given(method(verb))
            .and(path("/repos/o/r/issues/1/comments"))
            .respond_with(comments.clone())
            .mount(&github)
            .await;
    }
    let uri = github.uri();
    let store = || -> Arc<dyn Store> { Arc::new(RedisStore::new(RedisHandle::open(&redis.url()).expect("url"))) };
    let env = [("GITHUB_API_URL", uri.as_str()), ("GITHUB_TOKEN", "ghp_m")];
    let a = app_from_yaml("", &env, store()).await.expect("a");
    let b = app_from_yaml("", &env, store()).await.expect("b");
    let task = |id: &str| {
        event("task.completed", json!({"task_id": id, "pull_request": "https://github.com/o/r/pull/1"})).to_json()
    };
    a.app.dispatcher().process(&task("1")).await.expect("a");
    b.app.dispatcher().process(&task("2")).await.expect("b");
    a.app
        .dispatcher()
        .process(&event("vm.created", json!({"vm_id": "v", "vm_name": "n"})).to_json())
        .await
        .expect("vm");

    assert_eq!(call(&a, Endpoint::Metrics, "GET", None, "").await.0, 401);
    let (status, text) = call(&b, Endpoint::Metrics, "GET", Some(TOKEN), "").await;
    assert_eq!(status, 200);
    for line in [
        "# TYPE event_bus_messages_published_total counter",
        "event_bus_messages_published_total{topic=\"task.completed\"} 2",
        "event_bus_messages_published_total{topic=\"vm.created\"} 1",
        "event_bus_messages_consumed_total{topic=\"task.completed\",integration=\"github\"} 2",
        "integration_requests_total{integration=\"github\",method=\"comment\",outcome=\"ok\"} 2",
        "integration_requests_total{integration=\"github\",method=\"list_comments\",outcome=\"ok\"} 2",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
    }
}

// ---- declarative routes ----

const ROUTES: &str = r##"
integrations:
  github:
    enabled: true
  slack:
    enabled: true
routes:
  - name: deploy-notes
    on: custom.deployed
    notify: { integration: slack, target: "#deployments", message: "Deployed {{service}} {{version}} 🚀" }
  - name: release-pr
    on: custom.release_ready
    artifact:
      integration: github
      type: pull_request
      content: { owner: acme, repo: "{{repo}}", title: "Release {{version}}", head: "release/{{version}}", base: main, body: "Automated" }
  - name: pr-vm
    on: github.pull_request.opened
    publish:
      type: task.created
      data: { kind: create_vm, parameters: { name: "pr-{{number}}", vcpus: 2, memory_mb: 2048 }, pull_request: "{{url}}" }
  - name: slack.vm_created
    on: vm.created
    notify: { integration: slack, target: "#infra", message: "VM {{vm_name}} is up" }
"##;

#[tokio::test]
async fn every_kind_of_route_does_what_it_says() {
    let server = aetherium_tests::stand_in::start().await;
    let uri = server.uri();
    for (channel, text) in [("#deployments", "Deployed api 1.2.3 🚀"), ("#infra", "VM web-1 is up")] {
        Mock::given(method("POST"))
            .and(path("/slack/chat.postMessage"))
            .and(body_partial_json(json!({"channel": channel, "text": text})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/repos/acme/widgets/pulls"))
        .and(body_partial_json(
            json!({"title": "Release 1.2.3", "head": "release/1.2.3", "base": "main", "body": "Automated"}),
        ))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"number": 9, "html_url": "https://github.com/acme/widgets/pull/9"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let slack_api = format!("{uri}/slack");
    let env = [
        ("GITHUB_API_URL", uri.as_str()),
        ("GITHUB_TOKEN", "ghp"),
        ("SLACK_API_URL", slack_api.as_str()),
        ("SLACK_BOT_TOKEN", "xoxb"),
    ];
    let app = app_from_yaml(ROUTES, &env, Arc::new(MemoryStore::new())).await.expect("valid routes");
    let d = app.app.dispatcher();
    d.process(&event("custom.deployed", json!({"service": "api", "version": "1.2.3"})).to_json())
        .await
        .expect("notify");
    d.process(&event("custom.release_ready", json!({"repo": "widgets", "version": "1.2.3"})).to_json())
        .await
        .expect("artifact");
    // The configured `slack.vm_created` replaces the default of the same name.
    d.process(&event("vm.created", json!({"vm_id": "v-9", "vm_name": "web-1"})).to_json()).await.expect("notify");

    let opened =
        event("github.pull_request.opened", json!({"number": 42, "url": "https://github.com/acme/widgets/pull/42"}))
            .with_id("gh-delivery-1");
    d.process(&opened.to_json()).await.expect("publish");
    d.process(&opened.to_json()).await.expect("replay");
    let derived: Vec<Event> = app
        .queue
        .receive(10, Duration::from_millis(50))
        .await
        .expect("receive")
        .iter()
        .map(|m| Event::from_json(&m.body).expect("event"))
        .collect();
    assert_eq!(derived.len(), 1, "published once");
    assert_eq!(derived[0].kind, "task.created");
    assert_eq!(
        derived[0].id,
        aetherium::engine::routes::derived_id("gh-delivery-1", "pr-vm"),
        "its own id, the same on a retry"
    );
    assert_eq!(derived[0].data["parameters"], json!({"name": "pr-42", "vcpus": 2, "memory_mb": 2048}));
    assert_eq!(derived[0].data["pull_request"], "https://github.com/acme/widgets/pull/42");
}

#[tokio::test]
async fn bad_routes_are_refused_at_start_naming_the_route() {
    for (yaml, want) in [
        (
            "routes:\n  - name: r1\n    on: vm.created\n    notify: { integration: jira, target: x, message: y }\n",
            "routes[0] (r1): integration `jira` is not enabled",
        ),
        (
            "routes:\n  - name: r2\n    on: weather.sunny\n    handle: github\n",
            "routes[0] (r2): `on: weather.sunny` is not in a known topic family",
        ),
        (
            "integrations:\n  slack:\n    enabled: true\nroutes:\n  - name: r3\n    on: vm.created\n    notify: { integration: slack, target: x, message: \"{{oops\" }\n",
            "routes[0] (r3): notify.message",
        ),
        ("routes:\n  - name: r4\n    on: vm.created\n", "routes[0] (r4): give exactly one of"),
        (
            "routes:\n  - name: r5\n    on: vm.created\n    publish: { type: github.fake }\n",
            "routes[0] (r5): publish.type",
        ),
        ("routes:\n  - on: vm.created\n    hande: github\n", "unknown field `hande`"),
    ] {
        let err = app_from_yaml(yaml, &[], Arc::new(MemoryStore::new())).await.expect_err(yaml);
        assert!(err.contains(want), "{yaml}\n=> {err}");
    }
}

#[tokio::test]
async fn default_routes_can_be_switched_off() {
    let app = app_from_yaml("default_routes: false\n", &[("SLACK_BOT_TOKEN", "x")], Arc::new(MemoryStore::new()))
        .await
        .expect("app");
    app.app
        .dispatcher()
        .process(&event("vm.created", json!({"vm_id": "v", "vm_name": "n"})).to_json())
        .await
        .expect("ok");
    assert!(app.store.hash_all("vms").await.expect("vms").is_empty(), "no default VM registry route");
}

// ---- a custom integration from config alone ----

struct StandardWebhooksSignature(&'static str);

impl wiremock::Match for StandardWebhooksSignature {
    fn matches(&self, req: &wiremock::Request) -> bool {
        let h = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let ts: i64 = h("webhook-timestamp").parse().unwrap_or(0);
        (chrono::Utc::now().timestamp() - ts).abs() < 300
            && aetherium_webhook::verify(self.0, &h("webhook-id"), ts, &req.body, &h("webhook-signature"))
    }
}

const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test]
async fn a_custom_webhook_integration_delivers_signed_events() {
    let server = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/aetherium"))
        .and(StandardWebhooksSignature(HOOK_SECRET))
        .and(body_partial_json(json!({"type": "task.completed", "data": {"task_id": "T-7"}})))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks/aetherium"))
        .and(StandardWebhooksSignature(HOOK_SECRET))
        .and(body_partial_json(json!({"type": "task.completed", "data": {"task_id": "T-7"}})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let yaml = format!(
        "integrations:\n  audit-hook:\n    type: webhook\n    url: {}/hooks/aetherium\n    secret: ${{AUDIT_SECRET}}\nroutes:\n  - on: task.*\n    handle: audit-hook\n",
        server.uri()
    );
    let app = app_from_yaml(&yaml, &[("AUDIT_SECRET", HOOK_SECRET)], Arc::new(MemoryStore::new())).await.expect("app");
    assert!(app.app.integration("audit-hook").is_some());
    let record = event("task.completed", json!({"task_id": "T-7"})).to_json();
    let d = app.app.dispatcher();
    assert!(d.process(&record).await.is_err(), "the receiver's 503 is retried later");
    d.process(&record).await.expect("delivered on the retry");
    d.process(&record).await.expect("and not again");
}

#[tokio::test]
async fn a_custom_integration_of_an_unknown_type_or_bad_options_stops_the_start() {
    let err = app_from_yaml("integrations:\n  jira:\n    api_key: x\n", &[], Arc::new(MemoryStore::new()))
        .await
        .expect_err("unknown");
    assert!(err.contains("integrations.jira: no integration of type `jira`"), "{err}");
    let err = app_from_yaml("integrations:\n  hook:\n    type: webhook\n    url: ftp://x\n    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", &[], Arc::new(MemoryStore::new()))
        .await
        .expect_err("bad url");
    assert!(err.contains("integrations.hook: `url` `ftp://x` is not an http(s) URL"), "{err}");
}

/// Topics a sender makes up do not each become a counter for good: 200 repository_dispatch
/// types and 200 custom topics no route names add two series, `github.repository_dispatch`
/// and `custom.other`, where they added 400 before. A route's exact topic keeps its name.
#[tokio::test]
async fn made_up_topics_fold_into_a_bounded_set_of_series() {
    let yaml = "routes:\n  - name: mine\n    on: custom.mine\n    publish:\n      type: custom.mine_done\n";
    let t = app_from_yaml(yaml, &[], Arc::new(MemoryStore::new())).await.expect("app");
    let d = t.app.dispatcher();
    let fields = || async { t.store.hash_all(aetherium::observe::metrics::KEY).await.expect("counters").len() };
    d.process(&event("vm.created", json!({})).to_json()).await.expect("dispatched");
    let before = fields().await;
    for i in 0..200 {
        for kind in [format!("github.repository_dispatch.build-{i}"), format!("custom.deploy_{i}")] {
            d.process(&event(&kind, json!({})).to_json()).await.expect("dispatched");
        }
    }
    d.process(&event("custom.mine", json!({})).to_json()).await.expect("dispatched");
    let text = t.app.metrics().render().await.expect("metrics");
    assert!(fields().await <= before + 4, "bounded: {text}");
    for line in [
        "event_bus_messages_published_total{topic=\"github.repository_dispatch\"} 200",
        "event_bus_messages_published_total{topic=\"custom.other\"} 200",
        "event_bus_messages_published_total{topic=\"custom.mine\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
}
