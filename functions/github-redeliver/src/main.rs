//! GitHub redelivery, on an EventBridge schedule: failed webhook deliveries sent again.

/// The custom integrations this function can build from the config (its routes are checked
/// at start like every function's, though it runs none).
const INTEGRATIONS: &[&dyn aetherium::model::integration::IntegrationFactory] = &[&aetherium_webhook::WebhookFactory];

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    aetherium::edge::lambda::run_redeliver(INTEGRATIONS).await
}
