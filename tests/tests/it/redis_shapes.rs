//! The whole product through the local runner's HTTP port on each Redis shape a user
//! deploys: standalone, a one-node cluster (ElastiCache Serverless) and three masters.
//! GitHub and Slack are one real HTTP stand-in on loopback.

use aetherium::App;
use aetherium::backends::redis_conn::RedisHandle;
use aetherium::backends::store::{RedisStore, Store};
use aetherium::engine::app::Needs;
use aetherium_tests::app::FACTORIES;
use aetherium_tests::fixtures::{SLACK_SECRET, github, sign};
use aetherium_tests::github_fake::slack_posts;
use aetherium_tests::redis_server::Shape;
use aetherium_tests::{RedisServer, Running, config};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

const TOKEN: &str = "e2e-api-token";

/// Post a platform event; `status` is 202 for a new id, 200 for a copy of one already queued.
async fn event(http: &reqwest::Client, running: &Running, body: Value, status: u16) {
    let resp = http.post(running.url("/api/v1/events")).bearer_auth(TOKEN).json(&body).send().await.expect("post");
    assert_eq!(resp.status(), status, "{}", resp.text().await.unwrap_or_default());
}

async fn whole_product(redis: RedisServer) {
    let (captured, _guard) = aetherium_tests::logs::capture(tracing::Level::INFO);
    let (api, comments) = aetherium_tests::github_fake::github_and_slack().await;
    let uri = api.uri();
    let url = redis.url();
    let config = config(&[
        ("REDIS_URL", &url),
        ("GITHUB_API_URL", &uri),
        ("GITHUB_TOKEN", "ghp_e2e"),
        ("GITHUB_WEBHOOK_SECRET", aetherium_tests::fixtures::SECRET),
        ("SLACK_API_URL", &uri),
        ("SLACK_BOT_TOKEN", "xoxb-e2e"),
        ("SLACK_SIGNING_SECRET", SLACK_SECRET),
        ("SLACK_NOTIFY_CHANNEL", "#platform"),
        ("AETHERIUM_API_TOKEN", TOKEN),
    ]);
    // Built as the runner builds it (local/src/main.rs): backends from the config, then every
    // integration it enables, routes checked.
    let app = App::from_config(config).expect("app").build(Needs::all(FACTORIES)).await.expect("integrations");
    app.preflight().await.expect("a reachable Redis passes the start-up check");
    let running = Running::start(app).await;
    let http = aetherium::backends::http_client::client();

    // `redis-cli SUBSCRIBE` on the last node: classic pub/sub reaches every node.
    let last = redis.node_urls().pop().expect("a node");
    let (mut sink, mut bus) = redis::Client::open(last).expect("url").get_async_pubsub().await.expect("pubsub").split();
    sink.psubscribe("github.*").await.expect("psubscribe");

    // A signed GitHub delivery reaches the bus.
    let body = github("pull_request-opened");
    let resp = http
        .post(running.url("/api/v1/webhooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
        .header("x-hub-signature-256", sign(&body))
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 202);
    let msg = tokio::time::timeout(Duration::from_secs(10), bus.next()).await.expect("on the bus").expect("open");
    assert_eq!(msg.get_channel_name(), "github.pull_request.opened");

    // vm.created: one Slack message; task.completed: one PR comment.
    event(
        &http,
        &running,
        json!({"id": "e2e-vm", "type": "vm.created", "data": {"vm_id": "vm-7", "vm_name": "web-7"}}),
        202,
    )
    .await;
    let pr = "https://github.com/o/r/pull/1";
    event(
        &http,
        &running,
        json!({"id": "e2e-task", "type": "task.completed", "data": {"task_id": "T-7", "pull_request": pr}}),
        202,
    )
    .await;
    let both = aetherium_tests::wait::until(Duration::from_secs(20), || {
        let (api, comments) = (&api, &comments);
        async move { (!slack_posts(api).await.is_empty() && !comments.bodies().is_empty()).then_some(()) }
    })
    .await;
    assert!(both.is_some(), "a Slack message and a PR comment within 20 s");
    // Redeliveries of both: answered as duplicates, still one effect each.
    event(
        &http,
        &running,
        json!({"id": "e2e-vm", "type": "vm.created", "data": {"vm_id": "vm-7", "vm_name": "web-7"}}),
        200,
    )
    .await;
    event(
        &http,
        &running,
        json!({"id": "e2e-task", "type": "task.completed", "data": {"task_id": "T-7", "pull_request": pr}}),
        200,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let posts = slack_posts(&api).await;
    assert_eq!(posts.len(), 1, "exactly one Slack message: {posts:?}");
    assert!(posts[0]["text"].as_str().is_some_and(|t| t.contains("web-7")), "{:?}", posts[0]);
    assert_eq!(comments.bodies().len(), 1, "exactly one PR comment: {:?}", comments.bodies());

    // /aetherium-vm-list reads the registry the dispatcher keeps.
    let (status, answer) = running.slash("/aetherium-vm-list").await;
    assert_eq!(status, 200);
    assert!(answer["text"].as_str().is_some_and(|t| t.contains("web-7 (vm-7)")), "{answer}");

    // /metrics serves the counters.
    let resp = http.get(running.url("/metrics")).bearer_auth(TOKEN).send().await.expect("metrics");
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("text");
    for line in [
        "event_bus_messages_published_total{topic=\"vm.created\"} 1",
        "event_bus_messages_published_total{topic=\"task.completed\"} 1",
        "event_bus_messages_consumed_total{topic=\"task.completed\",integration=\"github\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
    }

    running.stop().await;
    let logs = captured.text();
    for bad in ["record failed", "will be retried", "CROSSSLOT", "MOVED", "CLUSTERDOWN", "panicked"] {
        assert!(!logs.contains(bad), "the runner logged `{bad}`:\n{logs}");
    }
    assert!(logs.contains("event dispatched"), "the capture saw the dispatcher:\n{logs}");
}

// Current-thread runtimes: every task of the runner logs into this test's capture.
#[tokio::test]
async fn whole_product_on_standalone_redis() {
    whole_product(RedisServer::start_shape(Shape::Standalone).await).await;
}

#[tokio::test]
async fn whole_product_on_a_one_node_cluster() {
    whole_product(RedisServer::start_shape(Shape::OneNodeCluster).await).await;
}

#[tokio::test]
async fn whole_product_on_three_masters() {
    whole_product(RedisServer::start_shape(Shape::ThreeMasters).await).await;
}

/// A cluster has only database 0: a runner configured with another stops at start-up with
/// a message naming the setting; standalone keeps honouring it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_other_than_0_is_a_start_up_error_on_a_cluster_only() {
    for shape in [Shape::OneNodeCluster, Shape::Standalone] {
        let redis = RedisServer::start_shape(shape).await;
        let url = redis.url().replace("/0", "/1");
        let app = App::from_config(config(&[("REDIS_URL", &url)])).expect("no I/O at build");
        // The store `App::from_config` builds from this URL, built the same way.
        let store = RedisStore::new(RedisHandle::open(&url).expect("no I/O at build"));
        let checked = app.preflight().await;
        match shape {
            Shape::Standalone => {
                checked.expect("database 1 on standalone");
                store.set("k", "v", None).await.expect("set in db 1");
                let mut plain = redis::Client::open(url.as_str())
                    .expect("url")
                    .get_multiplexed_async_connection()
                    .await
                    .expect("conn");
                let v: Option<String> = redis::cmd("GET").arg("k").query_async(&mut plain).await.expect("get");
                assert_eq!(v.as_deref(), Some("v"), "written to database 1");
            }
            _ => {
                let message = checked.expect_err("database 1 on a cluster").to_string();
                assert!(message.contains("events.redis.db") && message.contains("cluster mode"), "{message}");
                let at_use = store.get("k").await.expect_err("every use fails the same way").to_string();
                assert!(at_use.contains("events.redis.db"), "{at_use}");
            }
        }
    }
}
