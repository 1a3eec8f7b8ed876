//! The README's run command: the real `aetherium-local` binary on the embedded defaults.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn the_binary_serves_health_generates_secrets_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aetherium-local"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AETHERIUM_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn aetherium-local");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a banner").expect("utf8");
    let base = first.rsplit(' ').next().expect("url").to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{first}");
    let banner: Vec<String> =
        lines.by_ref().map(|l| l.expect("line")).take_while(|l| !l.starts_with("Ready.")).collect();
    let banner = banner.join("\n");
    assert!(banner.contains("event bus: memory") && banner.contains("queue: memory"), "{banner}");
    for var in ["GITHUB_WEBHOOK_SECRET", "SLACK_SIGNING_SECRET", "AETHERIUM_API_TOKEN"] {
        assert!(banner.contains(&format!("{var} was not set; generated")), "{var} missing from:\n{banner}");
    }

    let resp = aetherium::backends::http_client::client()
        .get(format!("{base}/api/v1/health"))
        .send()
        .await
        .expect("GET health");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["status"], "ok");

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "did not stop within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut logs).expect("stderr");
    assert!(logs.contains("shut down cleanly"), "{logs}");
}
