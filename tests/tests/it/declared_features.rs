//! Declared features, tested whole: derived events run their own routes, N concurrent copies
//! give one effect, every GitHub action is accepted, `integration.webhook_received` is
//! published, what the ingest accepts the dispatcher processes, and the guide's interactive
//! message is configuration. Through the local runner on real Redis, GitHub and Slack on a
//! loopback stand-in.

use aetherium::App;
use aetherium::config::Config;
use aetherium::engine::app::Needs;
use aetherium_tests::fixtures::{SECRET, SLACK_SECRET, github, sign, slack, slack_headers};
use aetherium_tests::github_fake::Comments;
use aetherium_tests::{RedisServer, Running};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use wiremock::MockServer;

const TOKEN: &str = "declared-api-token";

struct Setup {
    running: Running,
    api: MockServer,
    comments: Comments,
    redis: RedisServer,
    _dir: std::path::PathBuf,
}

/// The runner on Redis with `yaml` as its config file.
async fn runner(yaml: &str) -> Setup {
    let redis = RedisServer::start().await;
    let (api, comments) = aetherium_tests::github_fake::github_and_slack().await;
    let dir = std::env::temp_dir().join(format!("aetherium-declared-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("config.yaml");
    std::fs::write(&file, yaml).expect("write config");
    let (uri, url) = (api.uri(), redis.url());
    let env: HashMap<String, String> = [
        ("AETHERIUM_CONFIG", file.to_str().expect("utf8")),
        ("REDIS_URL", &url),
        ("GITHUB_API_URL", &uri),
        ("GITHUB_TOKEN", "ghp_declared"),
        ("GITHUB_WEBHOOK_SECRET", SECRET),
        ("SLACK_API_URL", &uri),
        ("SLACK_RESPONSE_URL_BASE", &uri),
        ("SLACK_BOT_TOKEN", "xoxb-declared"),
        ("SLACK_SIGNING_SECRET", SLACK_SECRET),
        ("AETHERIUM_API_TOKEN", TOKEN),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = Config::load(&move |k| env.get(k).cloned()).expect("config");
    // The built-in integrations the config enables, no custom one, every route checked.
    let app = App::from_config(config).expect("app").build(Needs::all(&[])).await.expect("integrations");
    Setup { running: Running::start(app).await, api, comments, redis, _dir: dir }
}

impl Setup {
    async fn slack_posts(&self) -> Vec<Value> {
        let requests = self.api.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter(|r| r.url.path() == "/chat.postMessage")
            .map(|r| serde_json::from_slice(&r.body).expect("JSON"))
            .collect()
    }

    /// A `redis-cli PSUBSCRIBE <pattern>` of our own.
    async fn listen(&self, pattern: &str) -> futures_util::stream::BoxStream<'static, (String, Value)> {
        let client = redis::Client::open(self.redis.url()).expect("url");
        let (mut sink, stream) = client.get_async_pubsub().await.expect("pubsub").split();
        sink.psubscribe(pattern).await.expect("psubscribe");
        // The sink must live as long as the stream: move it in.
        stream
            .map(move |m| {
                let _keep = &sink;
                (m.get_channel_name().to_owned(), serde_json::from_slice(m.get_payload_bytes()).expect("event JSON"))
            })
            .boxed()
    }
}

async fn github_delivery(running: &Running, event: &str, delivery: &str, body: &[u8]) -> reqwest::Response {
    aetherium::backends::http_client::client()
        .post(running.url("/api/v1/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sign(body))
        .body(body.to_vec())
        .send()
        .await
        .expect("post")
}

async fn slack_request(running: &Running, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    let (ts, sig) = slack_headers(&body, chrono::Utc::now().timestamp());
    aetherium::backends::http_client::client()
        .post(running.url("/api/v1/webhooks/slack"))
        .header("content-type", content_type)
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig)
        .body(body)
        .send()
        .await
        .expect("post")
}

async fn platform_event(running: &Running, body: &Value) -> reqwest::Response {
    let http = aetherium::backends::http_client::client();
    http.post(running.url("/api/v1/events")).bearer_auth(TOKEN).json(body).send().await.expect("post")
}

/// Everything on the bus until it is quiet for `quiet`.
async fn drain(
    bus: &mut futures_util::stream::BoxStream<'static, (String, Value)>,
    quiet: Duration,
) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(quiet, bus.next()).await {
        seen.push(m);
    }
    seen
}

const VM_PER_PR: &str = r##"
routes:
  - name: pr-test-vm
    on: github.pull_request.opened
    publish:
      type: task.created
      data:
        kind: create_vm
        parameters: { name: "pr-{{number}}", vcpus: 2, memory_mb: 2048 }
        pull_request: "{{url}}"
  - name: vm-requested
    on: task.created
    notify: { integration: slack, target: "#vms", message: "VM {{parameters.name}} requested" }
  - name: arrivals
    on: integration.webhook_received
    notify: { integration: slack, target: "#audit", message: "{{source}} {{event_type}} {{id}}" }
"##;

/// The guide's VM-per-PR example: the derived `task.created` reaches the bus once and its own
/// notify route posts once; the webhook's arrival is an event whose route runs too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_event_runs_its_own_routes_once() {
    let s = runner(VM_PER_PR).await;
    let mut bus = s.listen("*").await;
    let body = github("pull_request-opened");
    let number = serde_json::from_slice::<Value>(&body).expect("json")["number"].as_u64().expect("number");
    let delivery = uuid::Uuid::new_v4().to_string();
    assert_eq!(github_delivery(&s.running, "pull_request", &delivery, &body).await.status(), 202);
    // GitHub retries the same delivery: nothing happens twice.
    assert_eq!(github_delivery(&s.running, "pull_request", &delivery, &body).await.status(), 200);

    let seen = drain(&mut bus, Duration::from_secs(3)).await;
    let on = |topic: &str| seen.iter().filter(|(t, _)| t == topic).map(|(_, e)| e.clone()).collect::<Vec<_>>();
    assert_eq!(on("github.pull_request.opened").len(), 1, "{seen:?}");
    let created = on("task.created");
    assert_eq!(created.len(), 1, "{seen:?}");
    assert_eq!(created[0]["data"]["parameters"]["name"], format!("pr-{number}"));
    assert_ne!(created[0]["id"], delivery.as_str(), "the derived event has an id of its own");
    let arrivals = on("integration.webhook_received");
    assert_eq!(arrivals.len(), 1, "{seen:?}");
    assert_eq!(arrivals[0]["data"]["source"], "github");
    assert_eq!(arrivals[0]["data"]["id"], delivery.as_str());
    assert_eq!(arrivals[0]["data"]["event_type"], "pull_request.opened");

    let posts = s.slack_posts().await;
    let to = |channel: &str| posts.iter().filter(|p| p["channel"] == channel).collect::<Vec<_>>();
    assert_eq!(to("#vms").len(), 1, "{posts:?}");
    assert_eq!(to("#vms")[0]["text"], format!("VM pr-{number} requested"));
    assert_eq!(to("#audit").len(), 1, "{posts:?}");
    s.running.stop().await;
}

/// Twenty copies of one delivery at once: one is queued and published, every copy gets 2xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_of_a_delivery_are_published_once() {
    let s = runner("routes: []\n").await;
    let mut bus = s.listen("*").await;

    let body = github("pull_request-opened");
    let delivery = uuid::Uuid::new_v4().to_string();
    let github = futures_util::future::join_all(
        (0..20).map(|_| async { github_delivery(&s.running, "pull_request", &delivery, &body).await.status() }),
    );
    let mention: Value = serde_json::from_slice(&slack("event_callback-app_mention.json")).expect("json");
    let slack_body = mention.to_string().into_bytes();
    let slack_copies = futures_util::future::join_all(
        (0..20).map(|_| async { slack_request(&s.running, "application/json", slack_body.clone()).await.status() }),
    );
    let platform = json!({"id": "concurrent-1", "type": "vm.started", "data": {"vm_id": "v-1", "vm_name": "n"}});
    let platform_copies =
        futures_util::future::join_all((0..20).map(|_| async { platform_event(&s.running, &platform).await.status() }));
    let (github, slack_copies, platform_copies) = tokio::join!(github, slack_copies, platform_copies);

    let count = |codes: &[reqwest::StatusCode], code: u16| codes.iter().filter(|c| c.as_u16() == code).count();
    assert_eq!((count(&github, 202), count(&github, 200)), (1, 19), "GitHub: one queued, the rest duplicates");
    assert_eq!(count(&slack_copies, 200), 20, "Slack: every copy acknowledged");
    assert_eq!((count(&platform_copies, 202), count(&platform_copies, 200)), (1, 19), "events ingest");

    let seen = drain(&mut bus, Duration::from_secs(3)).await;
    let n = |topic: &str| seen.iter().filter(|(t, _)| t == topic).count();
    assert_eq!(n("github.pull_request.opened"), 1, "{seen:?}");
    assert_eq!(n("slack.event.app_mention"), 1, "{seen:?}");
    assert_eq!(n("vm.started"), 1, "{seen:?}");
    s.running.stop().await;
}

/// `repository_dispatch` carries the sender's free-form type; a payload may carry JSON a full
/// parse refuses. Both are accepted, published, and reach the bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signed_delivery_accepted_is_published() {
    let s = runner("routes: []\n").await;
    let mut bus = s.listen("github.*").await;
    // GitHub's documented repository_dispatch payload, with an event_type of our choosing.
    let mut dispatch: Value = serde_json::from_slice(&github("push")).expect("json");
    dispatch = json!({"action": "Deploy Prod: v2.1 (canary)!", "branch": "main",
        "client_payload": {"unit": false}, "repository": dispatch["repository"], "sender": dispatch["sender"]});
    let body = dispatch.to_string().into_bytes();
    let resp = github_delivery(&s.running, "repository_dispatch", &uuid::Uuid::new_v4().to_string(), &body).await;
    assert_eq!(resp.status(), 202);
    let answer: Value = resp.json().await.expect("json");
    assert_eq!(answer["type"], "github.repository_dispatch.deploy_prod_v2_1_canary");

    // A lone surrogate and an out-of-range number inside a real payload.
    let raw = String::from_utf8(github("push")).expect("utf8");
    let odd = raw.replacen('{', r#"{"odd_name":"x\ud800y","odd_size":1e400,"#, 1);
    assert_eq!(
        github_delivery(&s.running, "push", &uuid::Uuid::new_v4().to_string(), odd.as_bytes()).await.status(),
        202
    );

    let seen = drain(&mut bus, Duration::from_secs(3)).await;
    let dispatched = seen.iter().find(|(t, _)| t == "github.repository_dispatch.deploy_prod_v2_1_canary");
    let dispatched = dispatched.unwrap_or_else(|| panic!("{seen:?}"));
    assert_eq!(dispatched.1["data"]["action"], "Deploy Prod: v2.1 (canary)!", "kept verbatim");
    let push = seen.iter().find(|(t, _)| t == "github.push").unwrap_or_else(|| panic!("{seen:?}"));
    assert_eq!(push.1["data"]["payload"]["odd_name"], "x\u{fffd}y");
    assert_eq!(push.1["data"]["payload"]["odd_size"], "1e400");
    s.running.stop().await;
}

/// The guide's Approve/Reject message, from configuration alone, and the click's route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interactive_message_is_configuration_and_a_click_runs_its_route() {
    let sample = std::fs::read_to_string(aetherium_tests::fixtures::root().join("config/aetherium.yaml"))
        .expect("the sample config");
    let s = runner(&sample).await;
    let mut bus = s.listen("custom.*").await;
    let task = json!({"id": "T-interactive", "type": "task.completed",
        "data": {"task_id": "T-42", "pull_request": "https://github.com/o/r/pull/1"}});
    assert_eq!(platform_event(&s.running, &task).await.status(), 202);
    let posted = aetherium_tests::wait::until(Duration::from_secs(10), || async {
        let posts = s.slack_posts().await;
        posts.into_iter().find(|p| p["channel"] == "#deployments")
    })
    .await
    .expect("the approve-deploy message");
    let buttons = &posted["blocks"][1]["elements"];
    let value_of = |id: &str| {
        let b = buttons.as_array().and_then(|a| a.iter().find(|b| b["action_id"] == id)).cloned();
        b.unwrap_or_else(|| panic!("button {id} in {posted}"))["value"].clone()
    };
    assert_eq!((value_of("approve"), value_of("reject")), (json!("T-42"), json!("T-42")), "{posted}");

    // The sample keeps the guide's PR comment on the completed task.
    let commented = aetherium_tests::wait::until(Duration::from_secs(10), || async {
        s.comments.bodies().into_iter().find(|b| b.contains("T-42") && b.contains("completed successfully"))
    })
    .await;
    assert!(commented.is_some(), "{:?}", s.comments.bodies());

    // A signed click on Approve, as Slack sends it.
    let mut payload: Value = serde_json::from_slice(&slack("block_actions.json")).expect("json");
    payload["actions"][0]["action_id"] = "approve".into();
    payload["actions"][0]["value"] = value_of("approve");
    payload["response_url"] = format!("{}/actions/T0/1/xyz", s.api.uri()).into();
    let form = form_urlencoded::Serializer::new(String::new()).append_pair("payload", &payload.to_string()).finish();
    let resp = slack_request(&s.running, "application/x-www-form-urlencoded", form.into_bytes()).await;
    assert_eq!(resp.status(), 200);

    let (topic, event) = tokio::time::timeout(Duration::from_secs(10), bus.next())
        .await
        .expect("the approval's route published within 10 s")
        .expect("open");
    assert_eq!(topic, "custom.deploy_approved");
    assert_eq!(event["data"]["task_id"], "T-42");
    s.running.stop().await;
}

/// The sample config comments on failed tasks too (it no longer replaces the default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_config_keeps_the_guides_pr_comments() {
    let sample = std::fs::read_to_string(aetherium_tests::fixtures::root().join("config/aetherium.yaml"))
        .expect("the sample config");
    let s = runner(&sample).await;
    let failed = json!({"id": "T-failed", "type": "task.failed",
        "data": {"task_id": "T-9", "error": "boom", "pull_request": "https://github.com/o/r/pull/1"}});
    assert_eq!(platform_event(&s.running, &failed).await.status(), 202);
    let commented = aetherium_tests::wait::until(Duration::from_secs(10), || async {
        s.comments.bodies().into_iter().find(|b| b.contains("T-9"))
    })
    .await;
    assert!(commented.is_some(), "a comment on the failed task: {:?}", s.comments.bodies());
    s.running.stop().await;
}

/// Publish routes that feed each other forever are refused at start-up, naming the loop.
#[test]
fn a_publish_loop_is_a_start_up_error() {
    let dir = std::env::temp_dir().join(format!("aetherium-loop-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("loop.yaml");
    std::fs::write(
        &file,
        "routes:\n  - name: a\n    on: custom.ping\n    publish: { type: custom.pong }\n  - name: b\n    on: custom.*\n    publish: { type: custom.ping }\n",
    )
    .expect("write");
    let path = file.to_str().expect("utf8").to_owned();
    let err = Config::load(&move |k| (k == "AETHERIUM_CONFIG").then(|| path.clone())).expect_err("a loop");
    let text = err.to_string();
    assert!(text.contains("loop") && text.contains("a → b → a"), "{text}");
}
