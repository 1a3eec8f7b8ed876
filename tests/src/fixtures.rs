//! Real GitHub payloads (from GitHub's published examples) and signing helpers.

use std::path::PathBuf;

pub const SECRET: &str = "test-webhook-secret";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

/// The raw bytes of `tests/fixtures/github/<name>.json`.
pub fn github(name: &str) -> Vec<u8> {
    let path = root().join("tests/fixtures/github").join(format!("{name}.json"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The text of a file under `events/`.
pub fn envelope(path: &str) -> String {
    let path = root().join("events").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("envelope {}: {e}", path.display()))
}

pub fn sign(body: &[u8]) -> String {
    aetherium::integrations::github::signature::sign_github(SECRET, body)
}

pub const SLACK_SECRET: &str = "test-slack-signing-secret";

/// The raw bytes of `tests/fixtures/slack/<name>`.
pub fn slack(name: &str) -> Vec<u8> {
    let path = root().join("tests/fixtures/slack").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Slack's documented slash command body (`slash_command.txt`) with `command` and `text` set,
/// and a `trigger_id` of its own.
pub fn slash_command_body(command: &str, text: &str) -> Vec<u8> {
    // Slack gives each invocation its own trigger_id: two calls here are two invocations, not
    // a request and its replay.
    static INVOCATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = INVOCATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let doc = String::from_utf8(slack("slash_command.txt")).expect("utf8");
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form_urlencoded::parse(doc.as_bytes()).into_owned().map(|(k, v)| match k.as_str() {
            "command" => (k, command.to_owned()),
            "text" => (k, text.to_owned()),
            "trigger_id" => (k, format!("{v}.{n}")),
            _ => (k, v),
        }))
        .finish()
        .into_bytes()
}

/// Slack's signature headers for `body` at `timestamp`.
pub fn slack_headers(body: &[u8], timestamp: i64) -> (String, String) {
    (timestamp.to_string(), aetherium::integrations::slack::signature::sign_slack(SLACK_SECRET, timestamp, body))
}
