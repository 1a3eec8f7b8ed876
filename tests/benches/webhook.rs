//! The GitHub webhook handler on a real ~27 KB pull_request.opened payload: verify + parse +
//! enqueue to the in-memory queue, per request, beside a bare HMAC-SHA256 of the same bytes.
//! Run: `scripts/bench` (or `cargo bench -p aetherium-tests --bench webhook`).
#![allow(clippy::print_stdout)]

use aetherium::edge::api::{self, Endpoint};
use aetherium_tests::TestApp;
use aetherium_tests::app::GITHUB_SECRET;
use aetherium_tests::fixtures::{self, SECRET, sign};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>, bytes: usize) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    let per_kib = mean.as_nanos() as f64 / (bytes as f64 / 1024.0);
    println!(
        "{name:<40} n={:<6} mean={:>8.2} µs  p50={:>8.2} µs  p99={:>8.2} µs  ({per_kib:.0} ns/KiB)",
        samples.len(),
        mean.as_nanos() as f64 / 1000.0,
        percentile(&samples, 0.50).as_nanos() as f64 / 1000.0,
        percentile(&samples, 0.99).as_nanos() as f64 / 1000.0,
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let body = fixtures::github("pull_request-opened");
    let signature = sign(&body);
    let n: usize = std::env::var("BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    println!("payload: pull_request-opened.json, {} bytes; {n} requests each", body.len());

    let mut hmac = Vec::with_capacity(n);
    let key = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    for _ in 0..n {
        let t = Instant::now();
        let mut mac = key.clone();
        mac.update(black_box(&body));
        black_box(mac.finalize());
        hmac.push(t.elapsed());
    }
    report("bare HMAC-SHA256 (the limit)", hmac, body.len());

    let verifier =
        aetherium::integrations::signature::HmacVerifier::new(&[aetherium::Secret::new(SECRET)]).expect("verifier");
    let mut verify = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        black_box(verifier.verify_github(Some(signature.as_bytes()), black_box(&body))).expect("valid");
        verify.push(t.elapsed());
    }
    report("signature verification", verify, body.len());

    // Each request its own delivery and its own bytes (the pull request's `updated_at`, same
    // width): the ingest refuses the same signed bytes under another delivery id as a replay.
    let template = String::from_utf8(body).expect("UTF-8");
    let stamp = r#""updated_at": "2019-05-15T15:20:33Z""#;
    assert!(template.contains(stamp), "the fixture's pull request has its updated_at");
    let start = chrono::DateTime::parse_from_rfc3339("2019-05-15T15:20:33Z").expect("time");
    let nth = |i: usize| {
        let at = (start + chrono::Duration::seconds(i as i64 + 1)).format("%Y-%m-%dT%H:%M:%SZ");
        let body = Bytes::from(template.replacen(stamp, &format!(r#""updated_at": "{at}""#), 1));
        (sign(&body), body)
    };
    let mut handler = Vec::with_capacity(n);
    rt.block_on(async {
        // What the github-webhook function builds: memory backends, no integration.
        let TestApp { app, queue, .. } = TestApp::with_env(&[GITHUB_SECRET]).await;
        for i in 0..n {
            let (signature, body) = nth(i);
            let req = http::Request::builder()
                .method("POST")
                .uri("/api/v1/webhooks/github")
                .header("x-github-event", "pull_request")
                .header("x-github-delivery", format!("bench-{i}"))
                .header("x-hub-signature-256", &signature)
                .body(body.clone())
                .expect("request");
            let t = Instant::now();
            let resp = api::handle(&app, Endpoint::Webhook("github"), req).await;
            handler.push(t.elapsed());
            assert_eq!(resp.status(), 202);
            if i % 1000 == 999 {
                // Keep the queue small, outside the timed part.
                for m in queue.receive(1000, Duration::ZERO).await.expect("drain") {
                    queue.delete(&m.receipt).await.expect("delete");
                }
            }
        }
    });
    report("webhook handler (verify+parse+enqueue)", handler, template.len());
}
