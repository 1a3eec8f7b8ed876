//! A private `redis-server` per test, on its own port, killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Start `redis-server` (or `$REDIS_SERVER`) on a free port, without persistence, and
    /// wait until it answers PING.
    pub async fn start() -> Self {
        let mut server = Self { port: crate::free_port(), child: None };
        server.spawn().await;
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    async fn spawn(&mut self) {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
        let child = Command::new(&binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `{binary}` ({e}); run the suite with scripts/test, which installs it")
            });
        self.child = Some(child);
        let client = redis::Client::open(self.url()).expect("redis url");
        let ready = crate::wait::until(Duration::from_secs(10), || {
            let client = client.clone();
            async move {
                let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                redis::cmd("PING").query_async::<String>(&mut conn).await.ok()
            }
        })
        .await;
        assert!(ready.is_some(), "redis-server on port {} did not answer PING within 10 s", self.port);
    }

    /// Kill the server (SIGKILL: no goodbye to clients, as in a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same port, empty.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
