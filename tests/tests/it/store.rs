//! One contract for the key-value store, run against memory and against Redis.

use aetherium::backends::redis_conn::RedisHandle;
use aetherium::backends::store::{MemoryStore, RedisStore, Store, Write};
use std::sync::Arc;
use std::time::Duration;

fn key(name: &str) -> String {
    format!("test:{}:{name}", uuid::Uuid::new_v4())
}

async fn set_if_absent_and_ttl(s: Arc<dyn Store>) {
    let k = key("idem");
    assert!(s.set_if_absent(&k, "1", Duration::from_millis(400)).await.expect("first"));
    assert!(!s.set_if_absent(&k, "2", Duration::from_millis(400)).await.expect("second"));
    assert_eq!(s.get(&k).await.expect("get").as_deref(), Some("1"), "the first writer wins");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(s.get(&k).await.expect("get"), None, "expired");
    assert!(s.set_if_absent(&k, "3", Duration::from_secs(60)).await.expect("after expiry"));
}

async fn concurrent_set_if_absent_has_one_winner(s: Arc<dyn Store>) {
    let k = key("race");
    let tries = (0..20).map(|i| {
        let s = s.clone();
        let k = k.clone();
        tokio::spawn(async move { s.set_if_absent(&k, &i.to_string(), Duration::from_secs(60)).await.expect("set") })
    });
    let wins = futures_util::future::join_all(tries).await.into_iter().filter(|r| *r.as_ref().expect("join")).count();
    assert_eq!(wins, 1);
}

async fn get_set_delete(s: Arc<dyn Store>) {
    let k = key("kv");
    assert_eq!(s.get(&k).await.expect("get"), None);
    s.set(&k, "v1", None).await.expect("set");
    s.set(&k, "v2 ✅", Some(Duration::from_secs(60))).await.expect("overwrite");
    assert_eq!(s.get(&k).await.expect("get").as_deref(), Some("v2 ✅"));
    assert!(s.delete(&k).await.expect("delete"));
    assert!(!s.delete(&k).await.expect("delete again"));
    let short = key("short");
    s.set(&short, "x", Some(Duration::from_millis(200))).await.expect("set");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(s.get(&short).await.expect("get"), None, "set with a TTL expires");
}

async fn counters(s: Arc<dyn Store>) {
    let k = key("count");
    assert_eq!(s.incr_window(&k, 1, Duration::from_secs(60)).await.expect("incr"), 1);
    assert_eq!(s.incr_window(&k, 5, Duration::from_secs(60)).await.expect("incr"), 6);
    assert_eq!(s.incr_window(&k, -2, Duration::from_secs(60)).await.expect("incr"), 4);
    let h = key("hcount");
    assert_eq!(s.hash_incr(&h, "a", 2).await.expect("hincr"), 2);
    assert_eq!(s.hash_incr(&h, "a", 3).await.expect("hincr"), 5);
    assert_eq!(s.hash_incr(&h, "b", 1).await.expect("hincr"), 1);
    assert_eq!(s.hash_all(&h).await.expect("all"), vec![("a".into(), "5".into()), ("b".into(), "1".into())]);
}

/// A tally hash lives its TTL from its first field; later counts do not extend it.
async fn hash_tally_counts_and_expires(s: Arc<dyn Store>) {
    let h = key("tally");
    let ttl = Duration::from_millis(700);
    assert_eq!(s.hash_incr_window(&h, "a", 1, ttl).await.expect("hincr"), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.hash_incr_window(&h, "a", 2, ttl).await.expect("hincr"), 3);
    assert_eq!(s.hash_incr_window(&h, "b", 1, ttl).await.expect("hincr"), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.hash_all(&h).await.expect("all"), vec![], "expired 700 ms after the first count");
}

async fn capped_log_newest_first(s: Arc<dyn Store>) {
    let k = key("log");
    for i in 0..10 {
        s.log_append(&k, &format!("entry {i}"), 5).await.expect("append");
    }
    let all = s.log_recent(&k, 100).await.expect("recent");
    assert_eq!(all, (5..10).rev().map(|i| format!("entry {i}")).collect::<Vec<_>>(), "capped at 5, newest first");
    assert_eq!(s.log_recent(&k, 2).await.expect("recent"), vec!["entry 9", "entry 8"]);
    assert!(s.log_recent(&key("none"), 10).await.expect("empty").is_empty());
}

async fn hashes(s: Arc<dyn Store>) {
    let k = key("vms");
    s.hash_set(&k, "vm-2", r#"{"name":"b"}"#).await.expect("set");
    s.hash_set(&k, "vm-1", r#"{"name":"a"}"#).await.expect("set");
    s.hash_set(&k, "vm-1", r#"{"name":"a2"}"#).await.expect("overwrite");
    assert_eq!(s.hash_get(&k, "vm-1").await.expect("get").as_deref(), Some(r#"{"name":"a2"}"#));
    assert_eq!(s.hash_get(&k, "vm-9").await.expect("get"), None);
    let all = s.hash_all(&k).await.expect("all");
    assert_eq!(all.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(), vec!["vm-1", "vm-2"]);
    assert!(s.hash_delete(&k, "vm-1").await.expect("del"));
    assert!(!s.hash_delete(&k, "vm-1").await.expect("del again"));
    assert!(s.hash_delete(&k, "vm-2").await.expect("del"));
    assert!(s.hash_all(&k).await.expect("all").is_empty());
}

async fn wrong_type_is_an_error_not_a_panic(s: Arc<dyn Store>) {
    let k = key("typed");
    s.hash_set(&k, "f", "v").await.expect("hash");
    assert!(s.get(&k).await.is_err());
    assert!(s.incr_window(&k, 1, Duration::from_secs(60)).await.is_err());
}

async fn set_if_absent_or_get_claims_once_and_reports_the_holder(s: Arc<dyn Store>) {
    let k = key("claim");
    assert_eq!(s.set_if_absent_or_get(&k, "running", Duration::from_millis(400)).await.expect("claim"), None);
    assert_eq!(
        s.set_if_absent_or_get(&k, "mine", Duration::from_secs(60)).await.expect("second").as_deref(),
        Some("running"),
        "the holder's value, and nothing set"
    );
    assert_eq!(s.get(&k).await.expect("get").as_deref(), Some("running"));
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(s.set_if_absent_or_get(&k, "again", Duration::from_secs(60)).await.expect("after expiry"), None);
    let shared = key("claim-race");
    let tries = (0..20).map(|i| {
        let (s, k) = (s.clone(), shared.clone());
        tokio::spawn(async move {
            s.set_if_absent_or_get(&k, &i.to_string(), Duration::from_secs(60)).await.expect("claim")
        })
    });
    let winners =
        futures_util::future::join_all(tries).await.into_iter().filter(|r| r.as_ref().expect("join").is_none()).count();
    assert_eq!(winners, 1, "one claim wins a race");
    let hashed = key("claim-typed");
    s.hash_set(&hashed, "f", "v").await.expect("hash");
    assert!(s.set_if_absent_or_get(&hashed, "x", Duration::from_secs(1)).await.is_err(), "a hash is not a claim");
}

async fn apply_writes_a_batch_in_order(s: Arc<dyn Store>) {
    let (k, gone, h, log) = (key("batch"), key("batch-gone"), key("batch-hash"), key("batch-log"));
    s.set(&gone, "x", None).await.expect("set");
    s.apply(&[
        Write::Set { key: k.clone(), value: "running".into(), ttl: None },
        Write::Set { key: k.clone(), value: "done".into(), ttl: Some(Duration::from_millis(300)) },
        Write::Delete { key: gone.clone() },
        Write::HashIncr { key: h.clone(), field: "a".into(), by: 2 },
        Write::HashIncr { key: h.clone(), field: "a".into(), by: 3 },
        Write::LogAppend { key: log.clone(), entry: "one".into(), cap: 2 },
        Write::LogAppend { key: log.clone(), entry: "two".into(), cap: 2 },
        Write::LogAppend { key: log.clone(), entry: "three".into(), cap: 2 },
    ])
    .await
    .expect("apply");
    assert_eq!(s.get(&k).await.expect("get").as_deref(), Some("done"), "the later write wins");
    assert_eq!(s.get(&gone).await.expect("get"), None);
    assert_eq!(s.hash_get(&h, "a").await.expect("hget").as_deref(), Some("5"));
    assert_eq!(s.log_recent(&log, 10).await.expect("log"), vec!["three", "two"], "capped, newest first");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(s.get(&k).await.expect("get"), None, "a TTL in a batch applies");
    s.apply(&[]).await.expect("an empty batch is a no-op");
}

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::memory()).await;
                }
            )*
        }
        mod redis_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = aetherium_tests::RedisServer::start_shape(aetherium_tests::redis_server::Shape::Standalone).await;
                    super::$case(std::sync::Arc::new(super::RedisStore::new(super::RedisHandle::open(&server.url()).expect("url")))).await;
                }
            )*
        }
        mod one_node_cluster_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = aetherium_tests::RedisServer::start_shape(aetherium_tests::redis_server::Shape::OneNodeCluster).await;
                    super::$case(std::sync::Arc::new(super::RedisStore::new(super::RedisHandle::open(&server.url()).expect("url")))).await;
                }
            )*
        }
        mod three_masters_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = aetherium_tests::RedisServer::start_shape(aetherium_tests::redis_server::Shape::ThreeMasters).await;
                    super::$case(std::sync::Arc::new(super::RedisStore::new(super::RedisHandle::open(&server.url()).expect("url")))).await;
                }
            )*
        }
    };
}

contract!(
    set_if_absent_and_ttl,
    concurrent_set_if_absent_has_one_winner,
    get_set_delete,
    counters,
    hash_tally_counts_and_expires,
    capped_log_newest_first,
    hashes,
    wrong_type_is_an_error_not_a_panic,
    set_if_absent_or_get_claims_once_and_reports_the_holder,
    apply_writes_a_batch_in_order,
);

async fn redis_store_recovers_after_a_restart(mut server: aetherium_tests::RedisServer) {
    let store = RedisStore::new(RedisHandle::open(&server.url()).expect("url"));
    store.set("k", "v", None).await.expect("set");
    server.kill();
    assert!(store.get("k").await.is_err(), "an error while Redis is down, not a hang or a stale answer");
    server.restart().await;
    let back = aetherium_tests::wait::until(Duration::from_secs(10), || {
        let store = store.clone();
        async move { store.set("k2", "v2", None).await.ok() }
    })
    .await;
    assert!(back.is_some(), "the store reconnects after Redis comes back");
    assert_eq!(store.get("k2").await.expect("get").as_deref(), Some("v2"));
}

aetherium_tests::per_shape!(redis_store_recovers_after_a_restart);
