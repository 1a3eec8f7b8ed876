//! What Lambda bills: each function's own CPU per warm invocation. Each release binary runs
//! behind the Runtime API emulator, as inside Lambda; after a warm-up, N invocations of a real
//! payload, and the process's utime+stime (/proc/<pid>/stat) divided by N. Beside it, the
//! hello-world `lambda_runtime` function built the same way: the floor. Binaries come from
//! `BENCH_BIN_DIR` (release builds). Run: `scripts/bench`.
#![allow(clippy::print_stdout)]

use aetherium_tests::RedisServer;
use aetherium_tests::fixtures::envelope;
use aetherium_tests::runtime_api::{Function, Outcome, RuntimeApi};
use serde_json::{Value, json};
use std::time::Duration;

const SECRETS: &[(&str, &str)] = &[
    ("GITHUB_WEBHOOK_SECRET", "aetherium-example-secret"),
    ("AETHERIUM_API_TOKEN", "aetherium-example-token"),
    ("SLACK_SIGNING_SECRET", "aetherium-example-slack-secret"),
    ("AETHERIUM_CONFIG", "embedded"),
    // The template's level: a log line per request is part of what Lambda bills.
    ("RUST_LOG", "info"),
];

/// Nanoseconds of CPU the process's threads have run, from each one's schedstat (clock ticks
/// in /proc/<pid>/stat are 10 ms: too coarse for a few hundred µs an invocation).
fn cpu_ns(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks");
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .sum()
}

/// Own CPU per invocation, in µs, over `payloads` after `warm` warm-up invocations.
async fn measure(binary: &str, env: &[(&str, &str)], payloads: &[String], warm: usize) -> f64 {
    let dir = std::env::var("BENCH_BIN_DIR").expect("BENCH_BIN_DIR: the release binaries' folder");
    let api = RuntimeApi::start().await;
    let f = Function::spawn_from(&dir, binary, &api, env);
    for p in payloads.iter().cycle().take(warm) {
        check(binary, &api.invoke(p).await);
    }
    let before = cpu_ns(f.pid());
    for p in &payloads[warm.min(payloads.len() - 1)..] {
        check(binary, &api.invoke(p).await);
    }
    let after = cpu_ns(f.pid());
    let n = payloads.len() - warm.min(payloads.len() - 1);
    (after - before) as f64 / 1e3 / n as f64
}

fn check(binary: &str, outcome: &Outcome) {
    let Outcome::Response(body) = outcome else { panic!("{binary} failed: {outcome:?}") };
    let v: Value = serde_json::from_str(body).expect("json");
    if let Some(status) = v["statusCode"].as_u64() {
        assert!(status < 300, "{binary} answered {status}: {body}");
    } else {
        assert_eq!(v["batchItemFailures"], json!([]), "{binary}: {body}");
    }
}

/// `n` copies of a function URL sample, each a distinct delivery, signed as its sender would:
/// its own delivery id, and its own bytes (the pull request's `updated_at`, same width), since
/// the ingest refuses the same signed bytes under another delivery id as a replay.
fn github_deliveries(n: usize) -> Vec<String> {
    let doc: Value = serde_json::from_str(&envelope("github-webhook/pull_request-opened.json")).expect("json");
    let body = doc["body"].as_str().expect("a text body").to_owned();
    let stamp = r#""updated_at": "2019-05-15T15:20:33Z""#;
    assert!(body.contains(stamp), "the sample's pull request has its updated_at");
    // A fresh stretch of time per call: the runs share a Redis, and a body sent in an earlier
    // run would be a replay in this one.
    let offset = i64::from(uuid::Uuid::new_v4().as_u128() as u32 % 900_000_000);
    let start =
        chrono::DateTime::parse_from_rfc3339("2019-05-15T15:20:33Z").expect("time") + chrono::Duration::seconds(offset);
    (0..n)
        .map(|i| {
            let mut d = doc.clone();
            let at = (start + chrono::Duration::seconds(i as i64 + 1)).format("%Y-%m-%dT%H:%M:%SZ");
            let varied = body.replacen(stamp, &format!(r#""updated_at": "{at}""#), 1);
            d["headers"]["x-hub-signature-256"] =
                aetherium::integrations::github::signature::sign_github(EXAMPLE_SECRET, varied.as_bytes()).into();
            d["headers"]["x-github-delivery"] = format!("bench-{i}-{}", uuid::Uuid::new_v4()).into();
            d["body"] = varied.into();
            d.to_string()
        })
        .collect()
}

/// The secret the samples in events/ are signed with (README; never for a deployment).
const EXAMPLE_SECRET: &str = "aetherium-example-secret";

fn slack_signed(file: &str, n: usize, vary: impl Fn(&mut Value, usize)) -> Vec<String> {
    let doc: Value = serde_json::from_str(&envelope(file)).expect("json");
    (0..n)
        .map(|i| {
            let mut d = doc.clone();
            vary(&mut d, i);
            let body = aetherium_tests::samples::body(&d);
            let now = chrono::Utc::now().timestamp();
            d["headers"]["x-slack-request-timestamp"] = now.to_string().into();
            d["headers"]["x-slack-signature"] =
                aetherium::integrations::slack::signature::sign_slack("aetherium-example-slack-secret", now, &body)
                    .into();
            d.to_string()
        })
        .collect()
}

fn platform_events(n: usize) -> Vec<String> {
    let doc: Value = serde_json::from_str(&envelope("events/task-completed.json")).expect("json");
    (0..n)
        .map(|i| {
            let mut d = doc.clone();
            d["body"] = json!({"id": format!("bench-{i}-{}", uuid::Uuid::new_v4()), "type": "task.completed",
                "data": {"task_id": format!("T-{i}")}})
            .to_string()
            .into();
            d.to_string()
        })
        .collect()
}

/// `n` copies of one request (a read: repeating it is what its callers do).
fn same(envelope: &str, n: usize) -> Vec<String> {
    vec![envelope.to_owned(); n]
}

/// Batches of ten `custom.bench` records, each posted by a notify route to its own (stand-in)
/// Slack channel: the per-channel pacing is not what is measured.
fn sqs_batches(n: usize) -> Vec<String> {
    (0..n)
        .map(|b| {
            let records: Vec<Value> = (0..10)
                .map(|r| {
                    let id = format!("bench-{b}-{r}-{}", uuid::Uuid::new_v4());
                    let event = json!({"id": id, "type": "custom.bench", "timestamp": "2026-11-28T09:00:00Z",
                        "source": "platform", "data": {"n": format!("{b}-{r}")}});
                    json!({"messageId": id, "receiptHandle": id, "body": event.to_string(),
                        "attributes": {"ApproximateReceiveCount": "1"}, "eventSource": "aws:sqs"})
                })
                .collect();
            json!({ "Records": records }).to_string()
        })
        .collect()
}

/// A function, what is invoked, its environment, and the payloads (warm-up first).
/// The payloads are made anew for each run: a repeated delivery id would take the duplicate path.
type Payloads = Box<dyn Fn() -> Vec<String>>;
type Row = (&'static str, &'static str, Vec<(String, String)>, Payloads);

/// A keep-alive stand-in for SQS's JSON protocol: `SendMessage` answered as SQS does.
async fn sqs_stand_in() -> String {
    let app = axum::Router::new().fallback(|| async {
        let body = json!({"MessageId": uuid::Uuid::new_v4().to_string(), "MD5OfMessageBody": "00000000000000000000000000000000"});
        ([("content-type", "application/x-amz-json-1.0")], body.to_string())
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    url
}

/// A stand-in slack.com answering chat.postMessage.
async fn slack_stand_in() -> String {
    let app = axum::Router::new()
        .fallback(|| async { ([("content-type", "application/json")], r#"{"ok":true,"ts":"1700000000.000100"}"#) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    url
}

fn main() {
    let n: usize = std::env::var("BENCH_INVOCATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let warm = 50;
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let redis = RedisServer::start().await;
        let redis_url = redis.url();
        let sqs = sqs_stand_in().await;
        let slack = slack_stand_in().await;
        let moto = std::env::var("AETHERIUM_TEST_SQS_ENDPOINT").ok();
        let moto_queue = match &moto {
            Some(_) => Some(aetherium_tests::sqs::create_queue_with_dlq(&aetherium_tests::sqs::client(), 30, 5).await.0),
            None => None,
        };
        let stand_in_queue = format!("{sqs}/123456789012/bench");
        let with = |extra: &[(&'static str, String)]| -> Vec<(String, String)> {
            let mut env: Vec<(String, String)> = SECRETS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            env.extend([
                ("AWS_ACCESS_KEY_ID".to_owned(), "bench".to_owned()),
                ("AWS_SECRET_ACCESS_KEY".to_owned(), "bench".to_owned()),
            ]);
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
            env
        };
        let redis_and_sqs = with(&[
            ("REDIS_URL", redis_url.clone()),
            ("AETHERIUM_QUEUE_URL", stand_in_queue.clone()),
            ("AWS_ENDPOINT_URL", sqs.clone()),
        ]);
        let sdk_send = {
            let mut env = redis_and_sqs.clone();
            env.push(("AETHERIUM_SQS_SEND".to_owned(), "sdk".to_owned()));
            env
        };
        let routes = std::env::temp_dir().join(format!("aetherium-lambda-cpu-{}.yaml", std::process::id()));
        std::fs::write(
            &routes,
            "default_routes: false\nroutes:\n  - name: bench\n    on: custom.bench\n    notify: { integration: slack, target: \"#bench-{{n}}\", message: \"event {{n}}\" }\n",
        )
        .expect("routes");
        let rows: Vec<Row> = vec![
            ("hello-lambda", "the floor: hello world, 27.6 KB delivery as its event", with(&[]), Box::new(move || github_deliveries(n + warm))),
            ("github-webhook", "27.6 KB pull_request.opened, in-memory queue and store", with(&[]), Box::new(move || github_deliveries(n + warm))),
            (
                "github-webhook",
                "the same, Redis dedup",
                with(&[("REDIS_URL", redis_url.clone())]),
                Box::new(move || github_deliveries(n + warm)),
            ),
            (
                "github-webhook",
                "the same, Redis and SQS (keep-alive stand-in), our signed SendMessage",
                redis_and_sqs.clone(),
                Box::new(move || github_deliveries(n + warm)),
            ),
            (
                "github-webhook",
                "the same, aws-sdk-sqs SendMessage (AETHERIUM_SQS_SEND=sdk)",
                sdk_send.clone(),
                Box::new(move || github_deliveries(n + warm)),
            ),
            (
                "slack-webhook",
                "slash command answered inline (/aetherium-status)",
                with(&[("REDIS_URL", redis_url.clone())]),
                Box::new(move || slack_signed("slack-webhook/slash-command-base64.json", n + warm, |_, _| {})),
            ),
            (
                "slack-webhook",
                "app_mention event, Redis and SQS (stand-in)",
                redis_and_sqs.clone(),
                Box::new(move || slack_signed("slack-webhook/app-mention.json", n + warm, |d, i| {
                    let mut body: Value = serde_json::from_str(d["body"].as_str().unwrap_or("{}")).expect("json");
                    body["event_id"] = format!("Ev-bench-{i}-{}", uuid::Uuid::new_v4()).into();
                    d["body"] = body.to_string().into();
                    d["isBase64Encoded"] = false.into();
                })),
            ),
            (
                "events",
                "platform event, Redis and SQS (stand-in), our signed SendMessage",
                redis_and_sqs.clone(),
                Box::new(move || platform_events(n + warm)),
            ),
            (
                "events",
                "the same, aws-sdk-sqs SendMessage (AETHERIUM_SQS_SEND=sdk)",
                sdk_send.clone(),
                Box::new(move || platform_events(n + warm)),
            ),
            (
                "health",
                "GET /api/v1/health, Redis (results cached as deployed)",
                with(&[("REDIS_URL", redis_url.clone())]),
                Box::new(move || same(&envelope("health/get.json"), n + warm)),
            ),
            (
                "metrics",
                "GET /metrics (Prometheus text from Redis)",
                with(&[("REDIS_URL", redis_url.clone())]),
                Box::new(move || same(&envelope("metrics/get.json"), n + warm)),
            ),
            (
                "logs-query",
                "POST /api/v1/logs/query (the activity log in Redis)",
                with(&[("REDIS_URL", redis_url.clone())]),
                Box::new(move || same(&envelope("logs-query/query.json"), n + warm)),
            ),
            (
                "dispatcher",
                "SQS batch of 10 records, a Slack notify route each (stand-in), Redis; per batch",
                with(&[
                    ("AETHERIUM_CONFIG", routes.to_string_lossy().into_owned()),
                    ("REDIS_URL", redis_url.clone()),
                    ("SLACK_BOT_TOKEN", "xoxb-bench".to_owned()),
                    ("SLACK_API_URL", slack.clone()),
                ]),
                Box::new(move || sqs_batches(n / 10 + warm / 10)),
            ),
        ];
        let mut rows = rows;
        if let (Some(endpoint), Some(queue)) = (&moto, &moto_queue) {
            rows.insert(
                5,
                (
                    "github-webhook",
                    "the same, Redis and SQS on moto (the deployed shape)",
                    with(&[
                        ("REDIS_URL", redis_url.clone()),
                        ("AETHERIUM_QUEUE_URL", queue.clone()),
                        ("AWS_ENDPOINT_URL", endpoint.clone()),
                    ]),
                    Box::new(move || github_deliveries(n + warm)),
                ),
            );
        }
        println!("| function | invocation | own CPU per invocation (µs) | above the floor (µs) | billed at 128 / 256 / 512 MB (ms) |");
        println!("|---|---|---|---|---|");
        let mut floor = None;
        // BENCH_ONLY=<binary>: that function's rows (and the floor), for a profiler to watch.
        let only = std::env::var("BENCH_ONLY").ok();
        let rows = rows.iter().filter(|r| only.as_deref().is_none_or(|o| r.0 == o || r.0 == "hello-lambda"));
        for (binary, what, env, make) in rows {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let batch_warm = if *binary == "dispatcher" { warm / 10 } else { warm };
            // The median of `rounds` runs, each a fresh process: one run on a shared machine
            // varies by a fifth.
            let mut runs = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                runs.push(measure(binary, &env, &make(), batch_warm).await);
            }
            runs.sort_by(f64::total_cmp);
            let us = runs[runs.len() / 2];
            let base = *floor.get_or_insert(us);
            // At M MB a function gets M/1769 of a vCPU: its CPU time stretches by 1769/M.
            let billed = |mb: f64| us * 1769.0 / mb / 1000.0;
            println!(
                "| {binary} | {what} | {us:.0} | {:+.0} | {:.1} / {:.1} / {:.1} |",
                us - base,
                billed(128.0),
                billed(256.0),
                billed(512.0)
            );
        }
        drop(redis);
    });
    // Let the runtime's tasks end with it.
    std::thread::sleep(Duration::from_millis(100));
}
