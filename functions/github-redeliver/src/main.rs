//! GitHub redelivery, on an EventBridge schedule: failed webhook deliveries sent again.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    aetherium::edge::lambda::run_redeliver().await
}
