//! The bus bridge: every minute, listen on the Redis bus for a little over a minute and queue
//! what the platform publishes.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    aetherium::edge::lambda::run_bridge().await
}
