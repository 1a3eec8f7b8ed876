//! The Slack webhook: arbitrary signed bodies (JSON or form) never panic the handler; any
//! change to a signed real request (body, signature or timestamp) is never accepted.
#![no_main]

#[path = "common.rs"]
mod common;

use aetherium::edge::api::Endpoint;
use libfuzzer_sys::fuzz_target;

const EVENT: &[u8] = include_bytes!("../../tests/fixtures/slack/event_callback-app_mention.json");

fn request(body: Vec<u8>, ts: &[u8], sig: &[u8], json: bool) -> Option<aetherium::edge::api::Request> {
    let ct = if json { "application/json" } else { "application/x-www-form-urlencoded" };
    http::Request::builder()
        .method("POST")
        .header("content-type", ct)
        .header("x-slack-request-timestamp", http::HeaderValue::from_bytes(ts).ok()?)
        .header("x-slack-signature", http::HeaderValue::from_bytes(sig).ok()?)
        .body(bytes::Bytes::from(body))
        .ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let app = common::app();
    let ts = common::NOW.to_string().into_bytes();
    if mode % 2 == 0 {
        let sig = aetherium::integrations::slack::signature::sign_slack(common::SLACK_SECRET, common::NOW, rest);
        if let Some(req) = request(rest.to_vec(), &ts, sig.as_bytes(), mode % 4 == 0) {
            let status = common::status(&app, Endpoint::Webhook("slack"), req);
            assert!(matches!(status, 200 | 400 | 413 | 503), "status {status}");
        }
    } else {
        let mut body = EVENT.to_vec();
        let mut sig = aetherium::integrations::slack::signature::sign_slack(common::SLACK_SECRET, common::NOW, EVENT).into_bytes();
        let mut ts = ts;
        if !common::mutate(&mut [&mut body, &mut sig, &mut ts], rest) {
            return;
        }
        if let Some(req) = request(body, &ts, &sig, true) {
            let status = common::status(&app, Endpoint::Webhook("slack"), req);
            assert!(!(200..300).contains(&status), "a mutated request was accepted ({status})");
        }
    }
});
