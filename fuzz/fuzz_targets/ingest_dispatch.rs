//! The ingest against the dispatcher (differential): whatever body the GitHub webhook
//! accepts, the record it queues is one the dispatcher processes (after its lossy repair of
//! JSON a full parse refuses), with the same id and topic. Neither side may panic. The body
//! passes the same check the webhook's source makes, signed as GitHub signs it.
#![no_main]

#[path = "common.rs"]
mod common;

use aetherium::Event;
use aetherium::integrations::github::GithubSource;
use aetherium::integrations::source::WebhookSource;
use aetherium::integrations::github::webhook::normalize;
use aetherium::integrations::github::signature::sign_github;
use aetherium::model::json_repair::repair;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = GithubSource::from_config(&common::config().github);
    let signature = sign_github(common::GITHUB_SECRET, data);
    let Ok(req) = http::Request::builder()
        .method("POST")
        .header("x-hub-signature-256", signature)
        .body(bytes::Bytes::copy_from_slice(data))
    else {
        return;
    };
    let Ok(verified) = source.verify(req.headers(), req.body(), common::NOW) else { return };
    let Ok(n) = normalize("push", "fuzz-delivery", verified) else { return };
    let record = repair(&n.json).unwrap_or(n.json);
    let event = Event::from_json(&record).unwrap_or_else(|e| panic!("accepted at the door, refused after: {e}"));
    assert_eq!((event.id.as_str(), event.kind.as_str()), ("fuzz-delivery", n.kind.as_str()));
});
