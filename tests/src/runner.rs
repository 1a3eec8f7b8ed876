//! The local runner in-process on a free port, stopped cleanly at the end of a test.

use aetherium::App;
use aetherium::config::Config;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::oneshot;

#[derive(Debug)]
pub struct Running {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub async fn start(app: App) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let done = tokio::spawn(aetherium_local::run(app, listener, async {
            let _ = rx.await;
        }));
        Self { base, stop: Some(tx), done }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Slack's documented slash command as `command` (no text), signed now with
    /// [`crate::fixtures::SLACK_SECRET`], sent to the Slack webhook: the status and the answer.
    pub async fn slash(&self, command: &str) -> (u16, serde_json::Value) {
        let body = crate::fixtures::slash_command_body(command, "");
        let (ts, sig) = crate::fixtures::slack_headers(&body, chrono::Utc::now().timestamp());
        let resp = aetherium::backends::http_client::client()
            .post(self.url("/api/v1/webhooks/slack"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", sig)
            .body(body)
            .send()
            .await
            .expect("post");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("a JSON answer"))
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        tokio::time::timeout(Duration::from_secs(10), self.done)
            .await
            .expect("stops within 10 s")
            .expect("join")
            .expect("clean");
    }
}

/// A config from the given environment only (no process environment).
pub fn config(env: &[(&str, &str)]) -> Config {
    let map: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::load(&move |k| map.get(k).cloned()).expect("config")
}
