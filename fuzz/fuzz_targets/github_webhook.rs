//! The GitHub webhook: arbitrary signed bodies never panic the handler; any change to a
//! signed real delivery (body or signature) is never accepted.
#![no_main]

#[path = "common.rs"]
mod common;

use aetherium::edge::api::Endpoint;
use libfuzzer_sys::fuzz_target;

const PAYLOAD: &[u8] = include_bytes!("../../tests/fixtures/github/pull_request-opened.json");

fn request(body: Vec<u8>, sig: &[u8], event: &str) -> Option<aetherium::edge::api::Request> {
    http::Request::builder()
        .method("POST")
        .header("x-github-event", event)
        .header("x-github-delivery", "fuzz-delivery")
        .header("x-hub-signature-256", http::HeaderValue::from_bytes(sig).ok()?)
        .body(bytes::Bytes::from(body))
        .ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let app = common::app();
    if mode % 2 == 0 {
        // Anything, correctly signed: parsing must never panic, and a 2xx only for JSON objects.
        let sig = aetherium::integrations::github::signature::sign_github(common::GITHUB_SECRET, rest);
        let events = ["pull_request", "issue_comment", "push", "ping", "star"];
        let event = events[mode as usize / 2 % events.len()];
        if let Some(req) = request(rest.to_vec(), sig.as_bytes(), event) {
            let status = common::status(&app, Endpoint::Webhook("github"), req);
            assert!(matches!(status, 200 | 202 | 400 | 413), "status {status}");
        }
    } else {
        let mut body = PAYLOAD.to_vec();
        let mut sig = aetherium::integrations::github::signature::sign_github(common::GITHUB_SECRET, PAYLOAD).into_bytes();
        if !common::mutate(&mut [&mut body, &mut sig], rest) {
            return;
        }
        if let Some(req) = request(body, &sig, "pull_request") {
            let status = common::status(&app, Endpoint::Webhook("github"), req);
            assert!(!(200..300).contains(&status), "a mutated delivery was accepted ({status})");
        }
    }
});
