//! The ecosystem's own local loop: `cargo lambda watch` (cargo-lambda's function URL emulator
//! and Runtime API, from PyPI; scripts/test installs it) serving every function, with every
//! sample in events/ sent as an HTTP client would send it to a function URL.

use aetherium_tests::samples::{self, EXAMPLE_ENV, expected_status, fresh};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `cargo lambda watch` in its own process group (it starts `cargo run` per function),
/// killed with all of it on drop.
struct Watch {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Watch {
    async fn start(env: &[(&str, &str)]) -> Self {
        let cargo_lambda = std::env::var("CARGO_LAMBDA")
            .expect("CARGO_LAMBDA names the cargo-lambda binary; run the suite with scripts/test, which installs it");
        let dir = std::env::temp_dir().join(format!("aetherium-watch-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let env_file = dir.join("env");
        let lines: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        std::fs::write(&env_file, lines.join("\n") + "\n").expect("env file");
        let log = dir.join("watch.log");
        let port = aetherium_tests::free_port();
        let child = Command::new("setsid")
            .arg(cargo_lambda)
            .args(["lambda", "watch", "--ignore-changes", "-A", "127.0.0.1", "-P", &port.to_string()])
            .arg("--env-file")
            .arg(&env_file)
            .current_dir(aetherium_tests::fixtures::root())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::from(std::fs::File::create(&log).expect("log")))
            .stderr(Stdio::from(std::fs::File::create(dir.join("watch.err")).expect("log")))
            .spawn()
            .expect("start cargo lambda watch");
        let up = aetherium_tests::wait::until(Duration::from_secs(60), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(drop)
        })
        .await;
        assert!(up.is_some(), "cargo lambda watch did not listen on {port} within 60 s");
        Self { child, port, log }
    }

    fn url(&self, function: &str, path: &str) -> String {
        format!("http://127.0.0.1:{}/lambda-url/{function}{path}", self.port)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A function URL request as an HTTP client makes it, from a sample envelope.
fn request(http: &reqwest::Client, watch: &Watch, file: &str, doc: &Value, query: &str) -> reqwest::RequestBuilder {
    let method = doc["requestContext"]["http"]["method"].as_str().unwrap_or("GET");
    let path = doc["rawPath"].as_str().unwrap_or("/");
    let url = watch.url(samples::function(file), &format!("{path}{query}"));
    let mut req = http.request(method.parse().expect("method"), url);
    for (k, v) in doc["headers"].as_object().into_iter().flatten() {
        // The emulator is the host: the envelope's own host and length do not carry over.
        if !matches!(k.as_str(), "host" | "content-length") {
            req = req.header(k.as_str(), v.as_str().unwrap_or_default());
        }
    }
    req.body(samples::body(doc))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_answers_every_sample_under_cargo_lambda_watch() {
    let github = samples::github_stand_in().await;
    let uri = github.uri();
    let mut env = EXAMPLE_ENV.to_vec();
    env.extend([("GITHUB_API_URL", uri.as_str()), ("GITHUB_TOKEN", "ghp_example")]);
    let watch = Watch::start(&env).await;
    // The first request to a function starts it (`cargo run`, already built by scripts/test).
    aetherium::backends::http_client::install_crypto_provider();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(300)).build().expect("client");
    let logs = || std::fs::read_to_string(&watch.log).unwrap_or_default();

    for file in samples::all() {
        let doc: Value = serde_json::from_str(&fresh(&file)).expect("json");
        let function = samples::function(&file);
        if function == "bus-bridge" {
            // It needs a Redis: the_bridge_sample_under_cargo_lambda_watch_queues_a_publish.
            continue;
        }
        if !samples::is_url_function(function) {
            // An SQS batch or a schedule's event: through the emulator's Invoke API.
            let url = format!("http://127.0.0.1:{}/2015-03-31/functions/{function}/invocations", watch.port);
            let resp = http.post(url).json(&doc).send().await.expect("invoke");
            assert_eq!(resp.status(), 200, "{file}: {}", logs());
            samples::check_event_answer(&file, &resp.json().await.expect("json"));
            continue;
        }
        let resp = request(&http, &watch, &file, &doc, "").send().await.expect("send");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status, expected_status(&file), "{file}: {text}\n{}", logs());
        if samples::function(&file) == "metrics" {
            assert!(text.contains("# TYPE event_bus_messages_published_total counter"), "{file}: {text}");
        } else {
            serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{file}: not JSON ({e}): {text}"));
        }
    }

    // A query string reaches the handler, and a bad signature is refused with our answer.
    let file = "github-webhook/pull_request-opened.json";
    let mut doc: Value = serde_json::from_str(&fresh(file)).expect("json");
    doc["headers"]["x-hub-signature-256"] = format!("sha256={}", "0".repeat(64)).into();
    let resp = request(&http, &watch, file, &doc, "?source=cargo-lambda&x=1").send().await.expect("send");
    assert_eq!(resp.status(), 401);
    let answer: Value = resp.json().await.expect("our JSON error");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("signature")), "{answer}");
}

/// The bus-bridge sample through `cargo lambda watch`'s Invoke API, with a Redis to listen on
/// (the one setting it needs beyond the others'): a PUBLISH during the run is heard and queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_sample_under_cargo_lambda_watch_queues_a_publish() {
    let redis = aetherium_tests::RedisServer::start().await;
    let url = redis.url();
    let mut env = EXAMPLE_ENV.to_vec();
    env.extend([("REDIS_URL", url.as_str()), ("AETHERIUM_BRIDGE_LISTEN_SECONDS", "2")]);
    let watch = Watch::start(&env).await;
    aetherium::backends::http_client::install_crypto_provider();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(300)).build().expect("client");
    let files: Vec<String> = samples::all().into_iter().filter(|f| samples::function(f) == "bus-bridge").collect();
    assert!(!files.is_empty(), "events/bus-bridge/ holds the schedule's event");
    for file in files {
        let doc: Value = serde_json::from_str(&fresh(&file)).expect("json");
        let url = format!("http://127.0.0.1:{}/2015-03-31/functions/bus-bridge/invocations", watch.port);
        let run = async {
            let resp = http.post(&url).json(&doc).send().await.expect("invoke");
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            assert_eq!(status, 200, "{file}: {text}\n{}", std::fs::read_to_string(&watch.log).unwrap_or_default());
            serde_json::from_str::<Value>(&text).expect("the run's report")
        };
        samples::check_bridge_run(&file, &redis, run).await;
    }
}
