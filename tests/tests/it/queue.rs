//! One contract for the work queue, run against the in-memory queue and against SQS
//! (moto's server mode, started by scripts/test).

use aetherium::backends::queue::{MemoryQueue, SqsQueue, WorkQueue};
use aetherium_tests::sqs;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Receive until `n` messages arrived (SQS may hand them out over several calls).
async fn receive_n(q: &dyn WorkQueue, n: usize) -> Vec<aetherium::backends::queue::QueueMessage> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.len() < n && tokio::time::Instant::now() < deadline {
        got.extend(q.receive(10, Duration::from_secs(1)).await.expect("receive"));
    }
    assert_eq!(got.len(), n, "expected {n} messages");
    got
}

async fn send_receive_delete_round_trip(q: Arc<dyn WorkQueue>) {
    let bodies: BTreeSet<String> = (0..3).map(|i| format!(r#"{{"n":{i},"text":"héllo ✅"}}"#)).collect();
    for b in &bodies {
        assert!(!q.send(b).await.expect("send").is_empty(), "send returns a message id");
    }
    let got = receive_n(q.as_ref(), 3).await;
    assert_eq!(got.iter().map(|m| m.body.clone()).collect::<BTreeSet<_>>(), bodies, "bodies arrive byte for byte");
    assert!(got.iter().all(|m| m.receive_count == 1));
    for m in &got {
        q.delete(&m.receipt).await.expect("delete");
    }
    let after = q.receive(10, Duration::from_secs(1)).await.expect("receive");
    assert!(after.is_empty(), "deleted messages do not come back: {after:?}");
}

async fn an_unacknowledged_message_comes_back(q: Arc<dyn WorkQueue>) {
    q.send("retry me").await.expect("send");
    let first = receive_n(q.as_ref(), 1).await.remove(0);
    // Hidden while in flight.
    assert!(q.receive(10, Duration::from_millis(200)).await.expect("receive").is_empty());
    q.retry_after(&first.receipt, Duration::ZERO).await.expect("retry_after");
    let again = receive_n(q.as_ref(), 1).await.remove(0);
    assert_eq!(again.body, "retry me");
    assert_eq!(again.id, first.id);
    assert_eq!(again.receive_count, 2, "the receive count goes up");
    q.delete(&again.receipt).await.expect("delete");
}

/// More bodies than one `SendMessageBatch` takes: each stored, once, byte for byte, with an
/// id of its own, in the order given.
async fn a_batch_is_stored_entry_by_entry(q: Arc<dyn WorkQueue>) {
    let bodies: Vec<String> = (0..23).map(|i| format!(r#"{{"n":{i},"text":"déjà ✅ \"quoted\""}}"#)).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let sent = q.send_batch(&refs).await;
    assert_eq!(sent.len(), 23, "one result per body");
    let ids: BTreeSet<String> = sent.into_iter().map(|r| r.expect("stored")).collect();
    assert_eq!(ids.len(), 23, "each its own message id");
    let got = receive_n(q.as_ref(), 23).await;
    assert_eq!(got.iter().map(|m| m.id.clone()).collect::<BTreeSet<_>>(), ids, "the ids are the messages'");
    let mut received: Vec<String> = got.iter().map(|m| m.body.clone()).collect();
    let mut want = bodies.clone();
    received.sort();
    want.sort();
    assert_eq!(received, want, "each body once, byte for byte");
    for m in &got {
        q.delete(&m.receipt).await.expect("delete");
    }
}

async fn health_is_ok(q: Arc<dyn WorkQueue>) {
    q.health().await.expect("healthy");
}

fn memory() -> Arc<dyn WorkQueue> {
    Arc::new(MemoryQueue::new(Duration::from_secs(30), 5))
}

async fn sqs_queue() -> Arc<dyn WorkQueue> {
    let client = sqs::client();
    let url = sqs::create_queue(&client, &[("VisibilityTimeout", "30")]).await;
    Arc::new(SqsQueue::with_client(client, url))
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory_queue {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::memory()).await;
                }
            )*
        }
        mod sqs_queue {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::sqs_queue().await).await;
                }
            )*
        }
    };
}

contract!(
    send_receive_delete_round_trip,
    an_unacknowledged_message_comes_back,
    a_batch_is_stored_entry_by_entry,
    health_is_ok
);

#[tokio::test]
async fn sqs_queue_that_does_not_exist_is_unhealthy_and_refuses_sends() {
    let q = SqsQueue::with_client(sqs::client(), format!("{}/123456789012/no-such-queue", sqs::endpoint()));
    assert!(q.health().await.is_err());
    assert!(q.send("x").await.is_err());
}

#[tokio::test]
async fn sqs_endpoint_down_is_an_error_not_a_hang() {
    let dead = format!("http://127.0.0.1:{}", aetherium_tests::free_port());
    let q = SqsQueue::with_client(sqs::client_at(&dead), format!("{dead}/1/q"));
    let sent = tokio::time::timeout(Duration::from_secs(30), q.send("x")).await.expect("answers within 30 s");
    assert!(matches!(sent, Err(aetherium::BackendError::Unavailable { .. })), "{sent:?}");
}

#[tokio::test(start_paused = true)]
async fn memory_queue_dead_letters_after_max_receives() {
    let q = MemoryQueue::new(Duration::from_secs(1), 2);
    q.send("poison").await.expect("send");
    for _ in 0..2 {
        let m = q.receive(1, Duration::from_secs(5)).await.expect("receive");
        assert_eq!(m.len(), 1);
        // Not deleted: it fails.
    }
    let m = q.receive(1, Duration::from_secs(3)).await.expect("receive");
    assert!(m.is_empty());
    assert_eq!(q.dead_letters(), vec!["poison".to_owned()]);
    assert!(q.is_empty());
}
