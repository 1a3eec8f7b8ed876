//! GitHub ingress: real payloads, signed as GitHub signs them, through the handler; every
//! bad input; dedup, rotation, fail-closed, claim checks.

use aetherium::Event;
use aetherium::backends::queue::SqsQueue;
use aetherium::backends::redis_conn::RedisHandle;
use aetherium::backends::store::{MemoryStore, RedisStore, Store};
use aetherium::edge::api::Endpoint;
use aetherium_tests::app::{Answer, GITHUB_SECRET, github_request};
use aetherium_tests::fixtures::{self, SECRET, sign};
use aetherium_tests::{TestApp, free_port};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const WEBHOOK: Endpoint = Endpoint::Webhook("github");

async fn setup_with(env: &[(&str, &str)], store: Arc<dyn Store>) -> TestApp {
    TestApp::builder().env(env).store(store).build().await
}

async fn setup() -> TestApp {
    TestApp::with_env(&[GITHUB_SECRET]).await
}

/// A delivery with each of GitHub's three headers when given.
async fn post(
    t: &TestApp,
    event: Option<&str>,
    delivery: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Answer {
    t.call(WEBHOOK, github_request(event, delivery, signature), body).await
}

#[tokio::test]
async fn a_real_pull_request_opened_is_queued_with_its_routing_fields_and_payload() {
    let s = setup().await;
    let body = fixtures::github("pull_request-opened");
    let (status, answer) = s.github("pull_request", "d1a7c2e0-0000-11ee-8000-000000000001", &body).await.pair();
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["id"], "d1a7c2e0-0000-11ee-8000-000000000001");
    let events = s.queued().await;
    assert_eq!(events.len(), 1);
    let ev = &events[0];
    let raw: Value = serde_json::from_slice(&body).expect("fixture");
    assert_eq!(ev.id, "d1a7c2e0-0000-11ee-8000-000000000001");
    assert_eq!(ev.kind, "github.pull_request.opened");
    assert_eq!(ev.source, "github");
    assert_eq!(ev.data["number"], raw["pull_request"]["number"]);
    assert_eq!(ev.data["url"], raw["pull_request"]["html_url"]);
    assert_eq!(ev.data["title"], raw["pull_request"]["title"]);
    assert_eq!(ev.data["repository"], raw["repository"]["full_name"]);
    assert_eq!(ev.data["head"], raw["pull_request"]["head"]["ref"]);
    assert_eq!(ev.data["base"], raw["pull_request"]["base"]["ref"]);
    assert_eq!(ev.data["sender"], raw["sender"]["login"]);
    assert_eq!(ev.data["payload"], raw, "the raw payload travels with the event");
}

#[tokio::test]
async fn every_fixture_gets_its_topic() {
    let s = setup().await;
    let cases = [
        ("pull_request", "pull_request-opened", "github.pull_request.opened"),
        ("issue_comment", "issue_comment-created", "github.issue_comment.created"),
        ("push", "push", "github.push"),
        ("create", "create", "github.create"),
        ("star", "star-created", "github.star.created"),
    ];
    for (i, (event, fixture, topic)) in cases.iter().enumerate() {
        let (status, answer) = s.github(event, &format!("delivery-{i}"), &fixtures::github(fixture)).await.pair();
        assert_eq!(status, 202, "{fixture}: {answer}");
        assert_eq!(answer["type"], *topic, "{fixture}");
    }
    let events = s.queued().await;
    assert_eq!(
        events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        cases.iter().map(|c| c.2).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_merged_close_is_typed_merged() {
    let s = setup().await;
    let mut pr: Value = serde_json::from_slice(&fixtures::github("pull_request-opened")).expect("fixture");
    pr["action"] = "closed".into();
    pr["pull_request"]["merged"] = true.into();
    pr["pull_request"]["state"] = "closed".into();
    let body = serde_json::to_vec(&pr).expect("json");
    let (status, answer) = s.github("pull_request", "merged-1", &body).await.pair();
    assert_eq!((status, answer["type"].as_str()), (202, Some("github.pull_request.merged")));
    pr["pull_request"]["merged"] = false.into();
    let body = serde_json::to_vec(&pr).expect("json");
    let (_, answer) = s.github("pull_request", "closed-1", &body).await.pair();
    assert_eq!(answer["type"], "github.pull_request.closed");
}

#[tokio::test]
async fn issue_comment_and_push_carry_what_subscribers_need() {
    let s = setup().await;
    let comment = fixtures::github("issue_comment-created");
    let push = fixtures::github("push");
    s.github("issue_comment", "c-1", &comment).await.pair();
    s.github("push", "p-1", &push).await.pair();
    let events = s.queued().await;
    let (c, p) = (&events[0], &events[1]);
    let rc: Value = serde_json::from_slice(&comment).expect("json");
    assert_eq!(c.data["body"], rc["comment"]["body"]);
    assert_eq!(c.data["number"], rc["issue"]["number"]);
    assert_eq!(c.data["url"], rc["issue"]["html_url"]);
    assert_eq!(c.data["is_pull_request"], rc["issue"].get("pull_request").is_some());
    let rp: Value = serde_json::from_slice(&push).expect("json");
    assert_eq!(p.data["ref"], rp["ref"]);
    assert_eq!(p.data["before"], rp["before"]);
    assert_eq!(p.data["after"], rp["after"]);
    assert_eq!(p.data["commits"], rp["commits"].as_array().map(Vec::len).unwrap_or(0));
    assert_eq!(p.data["compare"], rp["compare"]);
}

#[tokio::test]
async fn ping_is_answered_and_not_queued() {
    let s = setup().await;
    let (status, answer) = s.github("ping", "ping-1", &fixtures::github("ping")).await.pair();
    assert_eq!(status, 200, "{answer}");
    assert!(s.queued().await.is_empty());
}

#[tokio::test]
async fn every_bad_input_is_refused_with_its_status_and_nothing_is_queued() {
    let s = setup_with(&[("GITHUB_WEBHOOK_SECRET", SECRET)], Arc::new(MemoryStore::new())).await;
    let body = fixtures::github("pull_request-opened");
    let good = sign(&body);
    let other_body = sign(b"{}");
    let truncated = &good[..good.len() - 1];
    let wrong_secret = aetherium::integrations::github::signature::sign_github("not-the-secret", &body);
    let not_json = b"this verifies but is not JSON".to_vec();
    let ev = Some("pull_request");
    let id = Some("bad-1");
    let one_byte_off = {
        let mut b = body.clone();
        b[100] ^= 1;
        b
    };
    let legacy = "sha1=0123456789abcdef0123456789abcdef01234567";
    let (not_json_sig, array_sig) = (sign(&not_json), sign(b"[1]"));
    let cases: Vec<(&str, http::request::Builder, &[u8], u16)> = vec![
        ("no signature", github_request(ev, id, None), &body, 401),
        ("empty signature", github_request(ev, id, Some("")), &body, 401),
        ("no sha256= prefix", github_request(ev, id, Some(&good[7..])), &body, 401),
        ("truncated signature", github_request(ev, id, Some(truncated)), &body, 401),
        ("signature of another body", github_request(ev, id, Some(&other_body)), &body, 401),
        ("wrong secret", github_request(ev, id, Some(&wrong_secret)), &body, 401),
        ("body changed by one byte", github_request(ev, id, Some(&good)), &one_byte_off, 401),
        ("legacy sha1 only", github_request(ev, id, None).header("x-hub-signature", legacy), &body, 401),
        ("verifies but not JSON", github_request(ev, id, Some(&not_json_sig)), &not_json, 400),
        ("JSON but not an object", github_request(ev, id, Some(&array_sig)), b"[1]", 400),
        ("no X-GitHub-Event", github_request(None, id, Some(&good)), &body, 400),
        ("no X-GitHub-Delivery", github_request(ev, None, Some(&good)), &body, 400),
        ("event name not a topic segment", github_request(Some("Pull Request"), id, Some(&good)), &body, 400),
    ];
    for (name, req, body, want) in cases {
        let (status, answer) = s.call(WEBHOOK, req, body).await.pair();
        assert_eq!(status, want, "{name}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{name}: the error is named: {answer}");
    }
    assert!(s.queued().await.is_empty(), "nothing was queued");
    assert_eq!(s.store.get("delivery:github:bad-1").await.expect("get"), None, "nothing was recorded");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let s = TestApp::builder().yaml("webhooks:\n  max_body_bytes: 2048\n").env(&[GITHUB_SECRET]).build().await;
    let body = fixtures::github("pull_request-opened");
    let (status, answer) = s.github("pull_request", "big-1", &body).await.pair();
    assert_eq!(status, 413, "{answer}");
    assert!(s.queued().await.is_empty());
}

#[tokio::test]
async fn no_secret_configured_fails_closed() {
    let s = setup_with(&[], Arc::new(MemoryStore::new())).await;
    let body = fixtures::github("pull_request-opened");
    let (status, answer) = s.github("pull_request", "x-1", &body).await.pair();
    assert_eq!(status, 500, "{answer}");
    let status = post(&s, Some("pull_request"), Some("x-2"), None, &body).await.status;
    assert_eq!(status, 500, "even unsigned requests get no 2xx");
    assert!(s.queued().await.is_empty());
}

#[tokio::test]
async fn the_previous_secret_is_accepted_during_rotation() {
    let s = setup_with(
        &[("GITHUB_WEBHOOK_SECRET", "new-secret"), ("GITHUB_WEBHOOK_SECRET_PREVIOUS", SECRET)],
        Arc::new(MemoryStore::new()),
    )
    .await;
    let body = fixtures::github("push");
    let (status, _) = s.github("push", "rot-1", &body).await.pair();
    assert_eq!(status, 202, "signed with the previous secret");
    let new_sig = aetherium::integrations::github::signature::sign_github("new-secret", &body);
    let status = post(&s, Some("push"), Some("rot-2"), Some(&new_sig), &body).await.status;
    assert_eq!(status, 202, "signed with the new secret");
    let old = aetherium::integrations::github::signature::sign_github("retired-secret", &body);
    let status = post(&s, Some("push"), Some("rot-3"), Some(&old), &body).await.status;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_redelivery_is_acknowledged_and_not_queued_again() {
    let s = setup().await;
    let body = fixtures::github("pull_request-opened");
    assert_eq!(s.github("pull_request", "same-1", &body).await.pair().0, 202);
    let (status, answer) = s.github("pull_request", "same-1", &body).await.pair();
    assert_eq!((status, answer["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(s.queued().await.len(), 1);
}

#[tokio::test]
async fn a_failed_enqueue_is_503_and_not_recorded_so_redelivery_works() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let dead = format!("http://127.0.0.1:{}", free_port());
    let down = Arc::new(SqsQueue::with_client(aetherium_tests::sqs::client_at(&dead), format!("{dead}/1/q")));
    let app = TestApp::builder().env(&[GITHUB_SECRET]).queue(down).store(store.clone()).build().await;
    let body = fixtures::github("pull_request-opened");
    let (status, answer) = app.github("pull_request", "retry-1", &body).await.pair();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(store.get("delivery:github:retry-1").await.expect("get"), None, "not recorded as delivered");
    // GitHub redelivers once the queue is back.
    let s = setup_with(&[("GITHUB_WEBHOOK_SECRET", SECRET)], store).await;
    let (status, _) = s.github("pull_request", "retry-1", &body).await.pair();
    assert_eq!(status, 202, "the redelivery is queued, not answered as a duplicate");
    assert_eq!(s.queued().await.len(), 1);
}

#[tokio::test]
async fn a_dedup_store_outage_still_queues_the_event() {
    let down: Arc<dyn Store> =
        Arc::new(RedisStore::new(RedisHandle::open(&format!("redis://127.0.0.1:{}/0", free_port())).expect("url")));
    let s = setup_with(&[("GITHUB_WEBHOOK_SECRET", SECRET)], down).await;
    let (status, answer) = s.github("push", "nostore-1", &fixtures::github("push")).await.pair();
    assert_eq!(status, 202, "{answer}");
    assert_eq!(s.queued().await.len(), 1);
}

#[tokio::test]
async fn an_event_over_the_queue_limit_travels_by_claim_check() {
    let s = setup().await;
    let mut pr: Value = serde_json::from_slice(&fixtures::github("pull_request-opened")).expect("fixture");
    pr["pull_request"]["body"] = "a very long description ✅ ".repeat(12_000).into();
    let body = serde_json::to_vec(&pr).expect("json");
    assert!(body.len() > s.queue.max_message_bytes());
    let (status, answer) = s.github("pull_request", "large-1", &body).await.pair();
    assert_eq!(status, 202, "{answer}");
    let msgs = s.queue.receive(10, Duration::from_millis(50)).await.expect("receive");
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].body.len() < 1024, "the queue carries a reference, not the payload");
    let record =
        aetherium::backends::queue::claim::resolve(s.store.as_ref(), &msgs[0].body).await.expect("claim resolves");
    let ev = Event::from_json(&record).expect("event");
    assert_eq!(ev.data["payload"], pr);
}

/// Every example of every event in GitHub's published corpus (@octokit/webhooks-examples,
/// installed by scripts/test), plus free-form `repository_dispatch` types: each is accepted,
/// queued on the topic its event and action name, and the queued record dispatches.
#[tokio::test]
async fn every_example_github_publishes_is_accepted_queued_and_dispatched() {
    let index = std::env::var("AETHERIUM_GITHUB_EXAMPLES")
        .expect("AETHERIUM_GITHUB_EXAMPLES names GitHub's examples corpus; run the suite with scripts/test");
    let corpus: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&index).expect("the examples corpus")).expect("corpus JSON");
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for event in &corpus {
        let name = event["name"].as_str().expect("event name");
        for example in event["examples"].as_array().expect("examples") {
            cases.push((name.to_owned(), serde_json::to_vec(example).expect("bytes")));
        }
    }
    for free_form in ["on-demand-test", "Deploy Prod: v2.1 (canary)!", "release.v1.2.3", "UPPER lower", "…☃…"] {
        let body = serde_json::json!({"action": free_form, "branch": "main", "client_payload": {}});
        cases.push(("repository_dispatch".into(), serde_json::to_vec(&body).expect("bytes")));
    }
    assert!(cases.len() > 300, "the corpus has every example: {}", cases.len());

    let s = setup().await;
    let dispatcher = s.app.dispatcher();
    let mut seen = std::collections::HashSet::new();
    for (i, (event, body)) in cases.iter().enumerate() {
        let delivery = format!("example-{i}");
        let (status, answer) = s.github(event, &delivery, body).await.pair();
        let raw: Value = serde_json::from_slice(body).expect("json");
        if event == "ping" {
            assert_eq!(status, 200, "{event} #{i}: {answer}");
            continue;
        }
        // The corpus repeats a few examples byte for byte: under a new delivery id those bytes
        // are a replay of the first, and are not queued again.
        if !seen.insert(body.clone()) {
            assert_eq!((status, answer["status"].as_str()), (200, Some("duplicate")), "{event} #{i}: {answer}");
            continue;
        }
        assert_eq!(status, 202, "{event} #{i} ({:?}): {answer}", raw.get("action"));
        let want = match raw["action"].as_str() {
            Some("closed") if raw["pull_request"]["merged"] == true => "github.pull_request.merged".to_owned(),
            Some(action) => format!("github.{event}.{}", aetherium::model::event::topics::segment(action)),
            None => format!("github.{event}"),
        };
        assert_eq!(answer["type"], want.as_str(), "{event} #{i}");
        aetherium::model::event::topics::validate(&want, aetherium::model::event::topics::FAMILIES)
            .expect("a valid topic");
        let msgs = s.queue.receive(1, Duration::from_millis(50)).await.expect("receive");
        let queued = Event::from_json(&msgs[0].body).expect("the record is an event");
        assert_eq!(queued.data.get("action"), raw.get("action"), "the action is kept verbatim");
        let done = dispatcher.process(&msgs[0].body).await.unwrap_or_else(|e| panic!("{event} #{i}: {e}"));
        assert_eq!(done.topic, want);
        s.queue.delete(&msgs[0].receipt).await.expect("delete");
    }
}

/// A captured signed delivery replayed under fresh delivery ids, all at once, is queued once:
/// the copies are answered as duplicates, and the refusals are tallied. GitHub's own
/// redelivery (same id, same bytes) is the duplicate it always was.
#[tokio::test]
async fn a_signed_body_replayed_under_fresh_delivery_ids_is_queued_once() {
    let s = setup().await;
    let body = fixtures::github("pull_request-opened");
    // The original and three replays arrive together: one is queued, whichever wins.
    let ids = ["guid-original", "guid-replay-1", "guid-replay-2", "guid-replay-3"];
    let answers = futures_util::future::join_all(ids.iter().map(|id| s.github("pull_request", id, &body))).await;
    let mut first = None;
    for (id, answer) in ids.iter().zip(answers) {
        let (status, answer) = answer.pair();
        match status {
            202 => assert!(first.replace(*id).is_none(), "only one is queued: {answer}"),
            _ => assert_eq!((status, answer["status"].as_str()), (200, Some("duplicate")), "{id}: {answer}"),
        }
    }
    let first = first.expect("one was queued");
    let (status, answer) = s.github("pull_request", first, &body).await.pair();
    assert_eq!((status, answer["status"].as_str()), (200, Some("duplicate")), "a redelivery: {answer}");
    let queued = s.queued().await;
    assert_eq!(queued.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), [first]);
    let tallied = s.app.activity().rejections().await.expect("tally");
    assert!(tallied.iter().any(|e| e.message.contains("replay refused") && e.count == Some(3)), "{tallied:?}");
}

/// A body sent under an `X-GitHub-Event` it was not made for (a pull_request payload relabelled
/// `deployment`) is refused with 400 naming what it lacks; nothing is queued.
#[tokio::test]
async fn a_body_relabelled_as_another_event_is_refused() {
    let s = setup().await;
    let body = fixtures::github("pull_request-opened");
    for (event, field) in [("deployment", "`deployment`"), ("issues", "`issue`"), ("push", "`ref`")] {
        let answer = s.github(event, &format!("guid-relabel-{event}"), &body).await;
        let text = answer.text();
        assert_eq!(answer.status, 400, "{event}: {text}");
        assert!(text.contains(&format!("a `{event}` delivery without {field}")), "{event}: {text}");
    }
    assert!(s.queued().await.is_empty());
    let (status, _) = s.github("pull_request", "guid-right", &body).await.pair();
    assert_eq!(status, 202, "the body under its own event is taken");
}
