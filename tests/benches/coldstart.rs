//! The cold-start budget: per function, init time from process start to its first request
//! for work against a Lambda Runtime API emulator, and the peak memory of a webhook request.
//! Binaries come from `BENCH_BIN_DIR` (release builds). Run: `scripts/bench`.
#![allow(clippy::print_stdout)]

use aetherium_tests::fixtures::envelope;
use aetherium_tests::runtime_api::{Function, RuntimeApi};
use std::time::{Duration, Instant};

/// The floor first: a hello-world function built the same way.
const FUNCTIONS: &[&str] = &[
    "hello-lambda",
    "github-webhook",
    "slack-webhook",
    "events",
    "github-pr",
    "dispatcher",
    "health",
    "logs-query",
    "metrics",
];

const ENV: &[(&str, &str)] = &[
    ("GITHUB_WEBHOOK_SECRET", "aetherium-example-secret"),
    ("AETHERIUM_API_TOKEN", "aetherium-example-token"),
    ("SLACK_SIGNING_SECRET", "aetherium-example-slack-secret"),
    ("GITHUB_TOKEN", "ghp_example"),
    ("SLACK_BOT_TOKEN", "xoxb-example"),
    ("AETHERIUM_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/aetherium-work"),
    // As deployed: the YAML compiled in is parsed at init.
    ("AETHERIUM_CONFIG", "embedded"),
];

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Init times of `runs` cold starts of `binary` with `env`, sorted: process start to its
/// first request for work.
async fn cold_starts(dir: &str, binary: &str, env: &[(&str, &str)], runs: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let api = RuntimeApi::start().await;
        let func = Function::spawn_from(dir, binary, &api, env);
        let deadline = Instant::now() + Duration::from_secs(10);
        let ready = loop {
            if let Some(t) = api.first_next() {
                break t;
            }
            assert!(Instant::now() < deadline, "{binary} did not start");
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        samples.push(ready.duration_since(func.started));
    }
    samples.sort();
    samples
}

/// Start to the first invocation's answer: what a cold request waits, init and the first
/// invocation together (a function whose secrets are references reads them on that first
/// invocation, since the extension serves only then, so init alone would flatter it).
async fn first_answers(dir: &str, binary: &str, env: &[(&str, &str)], payload: &str, runs: usize) -> Vec<Duration> {
    // The in-memory queue: a first answer must not wait on a queue this machine cannot reach.
    let env: Vec<(&str, &str)> = env.iter().copied().filter(|(k, _)| *k != "AETHERIUM_QUEUE_URL").collect();
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let api = RuntimeApi::start().await;
        let func = Function::spawn_from(dir, binary, &api, &env);
        let outcome = api.invoke(payload).await;
        samples.push(func.started.elapsed());
        assert!(matches!(outcome, aetherium_tests::runtime_api::Outcome::Response(_)), "{binary}: {outcome:?}");
    }
    samples.sort();
    samples
}

/// One table row: p50, p90, max and p50 above the floor.
fn row(what: &str, samples: &[Duration], floor: f64) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p50 = ms(samples[samples.len() / 2]);
    println!(
        "| {what} | {p50:.1} | {:.1} | {:.1} | {:+.1} |",
        ms(samples[samples.len() * 9 / 10]),
        ms(samples[samples.len() - 1]),
        p50 - floor
    );
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let dir = std::env::var("BENCH_BIN_DIR").expect("BENCH_BIN_DIR: the release binaries' folder");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        println!("| function | init p50 (ms) | init p90 (ms) | init max (ms) | p50 above the floor (ms) |");
        println!("|---|---|---|---|---|");
        let mut floor = None;
        for f in FUNCTIONS {
            let samples = cold_starts(&dir, f, ENV, runs).await;
            // The first row is the floor itself.
            let base = *floor.get_or_insert_with(|| samples[samples.len() / 2].as_secs_f64() * 1000.0);
            row(f, &samples, base);
        }

        // The same cold start with its secrets read through the Parameters and Secrets
        // extension (a loopback stand-in answering as the extension does).
        let extension = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::method("GET"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "Parameter": {"Value": "aetherium-example-secret"}, "SecretString": "aetherium-example-token"})))
            .mount(&extension)
            .await;
        let port = extension.address().port().to_string();
        let mut env: Vec<(&str, &str)> = ENV.to_vec();
        env.retain(|(k, _)| !matches!(*k, "GITHUB_WEBHOOK_SECRET" | "AETHERIUM_API_TOKEN"));
        env.extend([
            ("GITHUB_WEBHOOK_SECRET", "ssm:/aetherium/github-webhook-secret"),
            ("AETHERIUM_API_TOKEN", "secretsmanager:aetherium/api-token"),
            ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port.as_str()),
            ("AWS_SESSION_TOKEN", "bench"),
        ]);
        // Init alone, then what the first request waits: the references are read on it.
        let samples = cold_starts(&dir, "github-webhook", &env, runs).await;
        row(
            "github-webhook, 2 secrets through the Parameters and Secrets extension (stand-in), init only",
            &samples,
            floor.unwrap_or(0.0),
        );
        let hello = first_answers(&dir, "hello-lambda", ENV, "{}", runs).await;
        let hello_p50 = hello[hello.len() / 2].as_secs_f64() * 1000.0;
        row("hello-lambda, start to its first answer (the floor of the next two rows)", &hello, hello_p50);
        let delivery = envelope("github-webhook/pull_request-opened.json");
        let plain = first_answers(&dir, "github-webhook", ENV, &delivery, runs).await;
        row("github-webhook, plain environment, start to its first answer", &plain, hello_p50);
        let through = first_answers(&dir, "github-webhook", &env, &delivery, runs).await;
        row("github-webhook, 2 secrets through the extension, start to its first answer", &through, hello_p50);

        // Peak memory of the GitHub webhook handling a real ~27 KB delivery (in-memory queue
        // would hide nothing here: the queue URL is unreachable, so we measure the memory
        // queue instead by leaving AETHERIUM_QUEUE_URL out).
        let env: Vec<(&str, &str)> = ENV.iter().copied().filter(|(k, _)| *k != "AETHERIUM_QUEUE_URL").collect();
        let api = RuntimeApi::start().await;
        let func = Function::spawn_from(&dir, "github-webhook", &api, &env);
        let outcome = api.invoke(&envelope("github-webhook/pull_request-opened.json")).await;
        assert!(
            matches!(outcome, aetherium_tests::runtime_api::Outcome::Response(ref b) if b.contains("202")),
            "{outcome:?}"
        );
        let hwm = vm_hwm_kib(func.pid()).unwrap_or(0);
        println!();
        println!(
            "github-webhook peak memory (VmHWM) after one pull_request.opened delivery: {:.1} MiB",
            hwm as f64 / 1024.0
        );
    });
}
