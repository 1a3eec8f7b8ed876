//! One contract for the event bus, run against the in-memory bus and against Redis.

use aetherium::Event;
use aetherium::backends::bus::{EventBus, Handler, MemoryBus, RedisBus, handler};
use aetherium::backends::redis_conn::RedisHandle;
use aetherium_tests::RedisServer;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(5);

fn event(kind: &str, n: u64) -> Event {
    let data = json!({ "n": n }).as_object().cloned().unwrap_or_default();
    Event::new(kind, "test", data)
}

/// A handler that forwards every event it sees.
fn collector() -> (Handler, mpsc::UnboundedReceiver<Event>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let h = handler(move |e: Event| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(e);
            Ok(())
        }
    });
    (h, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    tokio::time::timeout(WAIT, rx.recv()).await.expect("an event within 5 s").expect("channel open")
}

async fn nothing_more(rx: &mut mpsc::UnboundedReceiver<Event>) {
    if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        panic!("unexpected event {} on {}", e.id, e.kind);
    }
}

async fn exact_topic(bus: Arc<dyn EventBus>) {
    let (h, mut rx) = collector();
    bus.subscribe("vm.created", h).await.expect("subscribe");
    let wanted = event("vm.created", 1);
    bus.publish("vm.started", &event("vm.started", 2)).await.expect("publish");
    bus.publish("vm.created", &wanted).await.expect("publish");
    assert_eq!(next(&mut rx).await, wanted);
    nothing_more(&mut rx).await;
}

async fn glob_pattern(bus: Arc<dyn EventBus>) {
    let (h, mut rx) = collector();
    bus.subscribe("vm.*", h).await.expect("subscribe");
    bus.publish("vm.created", &event("vm.created", 1)).await.expect("publish");
    bus.publish("task.created", &event("task.created", 2)).await.expect("publish");
    bus.publish("vm.stopped", &event("vm.stopped", 3)).await.expect("publish");
    assert_eq!(next(&mut rx).await.kind, "vm.created");
    assert_eq!(next(&mut rx).await.kind, "vm.stopped");
    nothing_more(&mut rx).await;
}

async fn fan_out_to_every_subscriber(bus: Arc<dyn EventBus>) {
    let (a, mut rx_a) = collector();
    let (b, mut rx_b) = collector();
    let (c, mut rx_c) = collector();
    bus.subscribe("task.completed", a).await.expect("a");
    bus.subscribe("task.completed", b).await.expect("b");
    bus.subscribe("task.*", c).await.expect("c");
    let e = event("task.completed", 1);
    bus.publish("task.completed", &e).await.expect("publish");
    assert_eq!(next(&mut rx_a).await, e);
    assert_eq!(next(&mut rx_b).await, e);
    assert_eq!(next(&mut rx_c).await, e);
    nothing_more(&mut rx_a).await;
}

async fn unsubscribe_stops_delivery(bus: Arc<dyn EventBus>) {
    let (h, mut rx) = collector();
    let (keep, mut rx_keep) = collector();
    let id = bus.subscribe("vm.stopped", h).await.expect("subscribe");
    bus.subscribe("vm.stopped", keep).await.expect("subscribe");
    bus.publish("vm.stopped", &event("vm.stopped", 1)).await.expect("publish");
    next(&mut rx).await;
    next(&mut rx_keep).await;
    assert!(bus.unsubscribe(id).await.expect("unsubscribe"));
    assert!(!bus.unsubscribe(id).await.expect("second unsubscribe"), "a second unsubscribe finds nothing");
    bus.publish("vm.stopped", &event("vm.stopped", 2)).await.expect("publish");
    // The remaining subscriber on the same channel still gets it; the removed one does not.
    assert_eq!(next(&mut rx_keep).await.data["n"], 2);
    nothing_more(&mut rx).await;
}

async fn order_within_a_topic(bus: Arc<dyn EventBus>) {
    let (h, mut rx) = collector();
    bus.subscribe("custom.sequence", h).await.expect("subscribe");
    for n in 0..200 {
        bus.publish("custom.sequence", &event("custom.sequence", n)).await.expect("publish");
    }
    for n in 0..200 {
        assert_eq!(next(&mut rx).await.data["n"], n, "event {n} out of order");
    }
}

async fn a_failing_or_panicking_handler_stops_nothing(bus: Arc<dyn EventBus>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let flaky = handler(move |e: Event| {
        let tx = tx.clone();
        async move {
            match e.data["n"].as_u64() {
                Some(1) => panic!("handler panics on purpose"),
                Some(2) => Err("handler fails on purpose".into()),
                _ => {
                    let _ = tx.send(e);
                    Ok(())
                }
            }
        }
    });
    let (other, mut rx_other) = collector();
    bus.subscribe("task.failed", flaky).await.expect("subscribe");
    bus.subscribe("task.failed", other).await.expect("subscribe");
    for n in 1..=3 {
        bus.publish("task.failed", &event("task.failed", n)).await.expect("publish");
    }
    assert_eq!(next(&mut rx).await.data["n"], 3, "the subscription survives its own panic and error");
    for n in 1..=3 {
        assert_eq!(next(&mut rx_other).await.data["n"], n, "other handlers are unaffected");
    }
}

fn memory() -> Arc<dyn EventBus> {
    Arc::new(MemoryBus::new())
}

fn redis(server: &RedisServer) -> Arc<dyn EventBus> {
    Arc::new(RedisBus::new(RedisHandle::open(&server.url()).expect("url")))
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory_bus {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::memory()).await;
                }
            )*
        }
        mod redis_bus {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = aetherium_tests::RedisServer::start_shape(aetherium_tests::redis_server::Shape::Standalone).await;
                    super::$case(super::redis(&server)).await;
                }
            )*
        }
        mod one_node_cluster_bus {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = aetherium_tests::RedisServer::start_shape(aetherium_tests::redis_server::Shape::OneNodeCluster).await;
                    super::$case(super::redis(&server)).await;
                }
            )*
        }
        mod three_masters_bus {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = aetherium_tests::RedisServer::start_shape(aetherium_tests::redis_server::Shape::ThreeMasters).await;
                    super::$case(super::redis(&server)).await;
                }
            )*
        }
    };
}

contract!(
    exact_topic,
    glob_pattern,
    fan_out_to_every_subscriber,
    unsubscribe_stops_delivery,
    order_within_a_topic,
    a_failing_or_panicking_handler_stops_nothing,
);

/// `redis-cli SUBSCRIBE` on every node of the deployment hears a publish: classic pub/sub
/// is cluster-wide, and the replay stream gets the event too.
async fn publish_uses_the_topic_as_channel_and_appends_to_the_stream(server: RedisServer) {
    let bus = redis(&server);
    let mut listeners = Vec::new();
    for url in server.node_urls() {
        let client = redis::Client::open(url).expect("url");
        let (mut sink, stream) = client.get_async_pubsub().await.expect("pubsub").split();
        sink.subscribe("github.pull_request.opened").await.expect("subscribe");
        listeners.push((sink, stream));
    }

    let e = event("github.pull_request.opened", 7);
    bus.publish("github.pull_request.opened", &e).await.expect("publish");

    use futures_util::StreamExt;
    for (_, stream) in &mut listeners {
        let msg = tokio::time::timeout(WAIT, stream.next()).await.expect("message on every node").expect("stream open");
        assert_eq!(msg.get_channel_name(), "github.pull_request.opened");
        let got: serde_json::Value = serde_json::from_slice(msg.get_payload_bytes()).expect("JSON payload");
        assert_eq!(got["id"], e.id.as_str());
        assert_eq!(got["type"], "github.pull_request.opened");
        assert!(got["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }

    // A cluster-aware reader, as the stream may live on any node.
    let reader = RedisHandle::open(&server.url()).expect("url");
    let entries: Vec<(String, Vec<(String, String)>)> =
        reader.query(redis::cmd("XRANGE").arg("aetherium:{events}").arg("-").arg("+")).await.expect("xrange");
    assert_eq!(entries.len(), 1);
    let fields: std::collections::HashMap<_, _> = entries[0].1.iter().cloned().collect();
    assert_eq!(fields["topic"], "github.pull_request.opened");
    assert_eq!(Event::from_json(&fields["event"]).expect("event"), e);
}

/// The node the listener is connected to restarts (every node, standalone); exact and
/// pattern subscriptions resume.
async fn subscriptions_survive_a_node_restart(mut server: RedisServer) {
    let bus = redis(&server);
    let (exact, mut rx_exact) = collector();
    let (glob, mut rx_glob) = collector();
    bus.subscribe("vm.created", exact).await.expect("subscribe");
    bus.subscribe("vm.*", glob).await.expect("psubscribe");
    bus.publish("vm.created", &event("vm.created", 1)).await.expect("publish");
    assert_eq!(next(&mut rx_exact).await.data["n"], 1);
    assert_eq!(next(&mut rx_glob).await.data["n"], 1);

    // The listener subscribed through the URL's node.
    server.restart_node(0).await;

    // Publish until the listener has resubscribed; every publish that lands must arrive.
    let after = event("vm.created", 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut delivered = None;
    while delivered.is_none() && tokio::time::Instant::now() < deadline {
        if bus.publish("vm.created", &after).await.is_ok() {
            delivered = tokio::time::timeout(Duration::from_millis(200), rx_exact.recv()).await.ok().flatten();
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(delivered.map(|e| e.id), Some(after.id.clone()), "the exact subscription resumed after the restart");
    let via_glob = tokio::time::timeout(WAIT, async {
        loop {
            let e = rx_glob.recv().await.expect("open");
            if e.id == after.id {
                return e;
            }
        }
    })
    .await;
    assert!(via_glob.is_ok(), "the pattern subscription resumed after the restart");
}

async fn redis_down_is_reported_by_health_and_publish(mut server: RedisServer) {
    let bus = redis(&server);
    bus.health().await.expect("healthy while up");
    server.kill();
    assert!(bus.health().await.is_err(), "health fails while Redis is down");
    assert!(bus.publish("vm.created", &event("vm.created", 1)).await.is_err(), "publish fails while Redis is down");
}

aetherium_tests::per_shape!(
    publish_uses_the_topic_as_channel_and_appends_to_the_stream,
    subscriptions_survive_a_node_restart,
    redis_down_is_reported_by_health_and_publish,
);

/// The platform's cache user, as the template defines it, applied to a real redis-server: it
/// publishes on any topic, appends to the inbox stream and reads the event stream, and can
/// touch none of the functions' keys (the sealed GitHub tokens, the dedup marks, the activity
/// log), nor write any other key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platforms_bus_user_reaches_the_bus_and_nothing_else() {
    let text = std::fs::read_to_string(aetherium_tests::fixtures::root().join("template.yaml")).expect("template");
    let t: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("yaml");
    let access = t["Resources"]["CacheBusUser"]["Properties"]["AccessString"].as_str().expect("an access string");
    let redis = RedisServer::start().await;
    let mut setuser = vec!["ACL", "SETUSER", "bus", ">bus-password"];
    setuser.extend(access.split_whitespace());
    assert_eq!(redis.cli(0, &setuser).trim(), "OK", "{access}");
    redis.cli(0, &["SET", "github:token:77", "v1:sealed"]);
    let url = redis.url().replacen("redis://", "redis://bus:bus-password@", 1);
    let client = redis::Client::open(url).expect("url");
    let bus = client.get_multiplexed_async_connection().await.expect("the bus user connects");
    let run = |cmd: redis::Cmd| {
        let mut bus = bus.clone();
        async move { cmd.query_async::<redis::Value>(&mut bus).await }
    };
    for allowed in [
        redis::cmd("PUBLISH").arg("vm.created").arg(r#"{"type":"vm.created","data":{}}"#).clone(),
        redis::cmd("XADD").arg("aetherium:{inbox}").arg("*").arg("event").arg("{}").clone(),
        redis::cmd("XRANGE").arg("aetherium:{events}").arg("-").arg("+").clone(),
        redis::cmd("PING").clone(),
    ] {
        run(allowed.clone()).await.unwrap_or_else(|e| panic!("{:?} is allowed: {e}", allowed.get_packed_command()));
    }
    for refused in [
        redis::cmd("GET").arg("github:token:77").clone(),
        redis::cmd("SET").arg("delivery:github:x").arg("queued").clone(),
        redis::cmd("XADD").arg("other-stream").arg("*").arg("a").arg("b").clone(),
        redis::cmd("LRANGE").arg("activity:log").arg("0").arg("-1").clone(),
        redis::cmd("KEYS").arg("*").clone(),
        redis::cmd("FLUSHALL").clone(),
    ] {
        let err = run(refused.clone()).await.expect_err("refused");
        assert!(err.to_string().contains("NOPERM") || err.code() == Some("NOPERM"), "{err}");
    }
}
