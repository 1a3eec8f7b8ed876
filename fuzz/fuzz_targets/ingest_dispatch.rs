//! The ingest against the dispatcher (differential): whatever body the GitHub webhook
//! accepts, the record it queues is one the dispatcher processes (after its lossy repair of
//! JSON a full parse refuses), with the same id and topic. Neither side may panic. The body
//! passes the same gate the webhook uses, signed as GitHub signs it.
#![no_main]

#[path = "common.rs"]
mod common;

use aetherium::Event;
use aetherium::edge::api::gate::{self, Signer};
use aetherium::integrations::github::webhook::normalize;
use aetherium::integrations::github::signature::sign_github;
use aetherium::model::json_repair::repair;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let app = common::app();
    let signature = sign_github(common::GITHUB_SECRET, data);
    let Ok(req) = http::Request::builder()
        .method("POST")
        .header("x-hub-signature-256", signature)
        .body(bytes::Bytes::copy_from_slice(data))
    else {
        return;
    };
    let verified = common::runtime().block_on(gate::verify(&app, Signer::Github, &req));
    let Ok(verified) = verified else { return };
    let Ok(n) = normalize("push", "fuzz-delivery", verified) else { return };
    let record = repair(&n.record).unwrap_or(n.record);
    let event = Event::from_json(&record).unwrap_or_else(|e| panic!("accepted at the door, refused after: {e}"));
    assert_eq!((event.id.as_str(), event.kind.as_str()), ("fuzz-delivery", n.topic.as_str()));
});
