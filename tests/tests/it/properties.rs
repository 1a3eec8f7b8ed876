//! Properties: any bit flip or truncation of a signed request is rejected, the dispatcher's
//! envelope parse agrees with the full parse, and N replays of one event cause one side effect.

use aetherium::backends::queue::{MemoryQueue, WorkQueue};
use aetherium::backends::store::MemoryStore;
use aetherium::edge::api::Endpoint;
use aetherium::engine::clock::Clock;
use aetherium::engine::routes::{Action, Routes, Rule};
use aetherium::{Event, IntegrationError, backends::bus::MemoryBus, engine::dispatch::Dispatcher};
use aetherium_tests::TestApp;
use aetherium_tests::app::{self, GITHUB_SECRET, github_request};
use aetherium_tests::fixtures::{self, SLACK_SECRET};
use async_trait::async_trait;
use proptest::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Both webhooks keyed, the clock fixed at the Slack fixture's timestamp; a handle on the
/// concrete queue so a case can see it stayed empty.
async fn app() -> (TestApp, Arc<MemoryQueue>) {
    let queue = Arc::new(MemoryQueue::default());
    let t = TestApp::builder()
        .env(&[GITHUB_SECRET, app::SLACK_SECRET])
        .queue(queue.clone())
        .clock(Clock::fixed(1_795_672_800))
        .build()
        .await;
    (t, queue)
}

fn slack(ts: &str, sig: &str) -> http::request::Builder {
    http::Request::builder()
        .method("POST")
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig)
}

/// What a mutation may touch: the body, the signature header, or (Slack) the timestamp.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBody { byte: usize, bit: u8 },
    FlipSignature { byte: usize, bit: u8 },
    Truncate { keep: usize },
    FlipTimestamp { byte: usize, bit: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(byte, bit)| Mutation::FlipBody { byte, bit }),
        (any::<usize>(), 0u8..8).prop_map(|(byte, bit)| Mutation::FlipSignature { byte, bit }),
        any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
        (any::<usize>(), 0u8..8).prop_map(|(byte, bit)| Mutation::FlipTimestamp { byte, bit }),
    ]
}

fn flip(data: &mut [u8], byte: usize, bit: u8) {
    let i = byte % data.len();
    data[i] ^= 1 << bit;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn a_mutated_github_delivery_is_never_accepted(m in mutation()) {
        let body = fixtures::github("pull_request-opened");
        let sig = fixtures::sign(&body);
        let (mut body2, mut sig2) = (body.clone(), sig.clone().into_bytes());
        match m {
            Mutation::FlipBody { byte, bit } => flip(&mut body2, byte, bit),
            Mutation::FlipSignature { byte, bit } | Mutation::FlipTimestamp { byte, bit } => flip(&mut sig2, byte, bit),
            Mutation::Truncate { keep } => body2.truncate(keep % body.len()),
        }
        let Ok(sig2) = String::from_utf8(sig2) else { return Ok(()) };
        if http::HeaderValue::from_str(&sig2).is_err() {
            return Ok(());
        }
        let (status, queue) = runtime().block_on(async {
            let (t, queue) = app().await;
            let req = github_request(Some("pull_request"), Some("prop-1"), Some(&sig2));
            (t.call(Endpoint::Webhook("github"), req, &body2).await.status, queue)
        });
        prop_assert_eq!(status, 401);
        prop_assert!(queue.is_empty());
    }

    #[test]
    fn a_mutated_slack_request_is_never_accepted(m in mutation()) {
        let body = fixtures::slack("event_callback-app_mention.json");
        let ts = "1795672800".to_owned();
        let sig = aetherium::integrations::slack::signature::sign_slack(SLACK_SECRET, 1_795_672_800, &body);
        let (mut body2, mut sig2, mut ts2) = (body.clone(), sig.clone().into_bytes(), ts.clone().into_bytes());
        match m {
            Mutation::FlipBody { byte, bit } => flip(&mut body2, byte, bit),
            Mutation::FlipSignature { byte, bit } => flip(&mut sig2, byte, bit),
            Mutation::FlipTimestamp { byte, bit } => flip(&mut ts2, byte, bit),
            Mutation::Truncate { keep } => body2.truncate(keep % body.len()),
        }
        let (Ok(sig2), Ok(ts2)) = (String::from_utf8(sig2), String::from_utf8(ts2)) else { return Ok(()) };
        if http::HeaderValue::from_str(&sig2).is_err() || http::HeaderValue::from_str(&ts2).is_err() {
            return Ok(());
        }
        let (status, queue) = runtime().block_on(async {
            let (t, queue) = app().await;
            (t.call(Endpoint::Webhook("slack"), slack(&ts2, &sig2), &body2).await.status, queue)
        });
        prop_assert_eq!(status, 401);
        prop_assert!(queue.is_empty());
    }
}

#[derive(Debug, Default)]
struct Counter(AtomicUsize);

#[async_trait]
impl Action for Counter {
    fn name(&self) -> &str {
        "count"
    }
    async fn run(&self, _: &Event) -> Result<(), IntegrationError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A real event record: GitHub's pull_request.opened example as an event's data.
fn record() -> String {
    let payload: serde_json::Value = serde_json::from_slice(&fixtures::github("pull_request-opened")).expect("fixture");
    let data = payload.as_object().cloned().unwrap_or_default();
    Event::new("github.pull_request.opened", "github", data).with_id("evt-prop").to_json()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// The dispatcher routes on the envelope alone; it must accept and reject exactly the
    /// records a full parse would.
    #[test]
    fn the_envelope_parse_agrees_with_the_full_parse_on_any_mutation(m in mutation()) {
        let mut bytes = record().into_bytes();
        match m {
            Mutation::Truncate { keep } => bytes.truncate(keep % bytes.len()),
            Mutation::FlipBody { byte, bit } | Mutation::FlipSignature { byte, bit } | Mutation::FlipTimestamp { byte, bit } => {
                // Most flips land in the 27 KB payload; aim a third of them at the envelope.
                let byte = if bit % 3 == 0 { byte % 200 } else { byte };
                flip(&mut bytes, byte, bit)
            }
        }
        let Ok(text) = String::from_utf8(bytes) else { return Ok(()) };
        let (head, full) = (aetherium::model::event::EventHead::from_json(&text), Event::from_json(&text));
        prop_assert_eq!(head.is_ok(), full.is_ok(), "{:?} / {:?}", head.as_ref().err(), full.as_ref().err());
        if let (Ok(head), Ok(full)) = (head, full) {
            prop_assert_eq!(head.id.as_ref(), full.id.as_str());
            prop_assert_eq!(head.kind.as_ref(), full.kind.as_str());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    #[test]
    fn n_replays_of_one_event_cause_one_side_effect(n in 1usize..20, concurrent in any::<bool>()) {
        let counter = Arc::new(Counter::default());
        let store = Arc::new(MemoryStore::new());
        let q = Arc::new(MemoryQueue::default());
        let routes = Routes::new(vec![Rule::new("task.*", counter.clone())]).expect("routes");
        let d = Dispatcher::new(Arc::new(MemoryBus::new()), store, q.clone(), routes);
        let record = Event::new("task.completed", "p", serde_json::Map::new()).to_json();
        runtime().block_on(async {
            if concurrent {
                // Racing replays: the losers are told to retry, and their retries find it done.
                let results = futures_util::future::join_all((0..n).map(|_| d.process(&record))).await;
                for r in results {
                    if r.is_err() {
                        d.process(&record).await.expect("retry");
                    }
                }
            } else {
                for _ in 0..n {
                    d.process(&record).await.expect("process");
                }
            }
            assert!(q.receive(1, Duration::ZERO).await.expect("receive").is_empty());
        });
        prop_assert_eq!(counter.0.load(Ordering::SeqCst), 1);
    }
}
