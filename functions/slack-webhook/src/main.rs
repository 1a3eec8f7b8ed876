//! POST /api/v1/webhooks/slack, on a Lambda function URL.

use aetherium::edge::api::Endpoint;

/// The custom integrations this function can build from the config.
const INTEGRATIONS: &[&dyn aetherium::model::integration::IntegrationFactory] = &[&aetherium_webhook::WebhookFactory];

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    aetherium::edge::lambda::run_http(Endpoint::Webhook("slack"), INTEGRATIONS).await
}
