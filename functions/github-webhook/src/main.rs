//! POST /api/v1/webhooks/github, on a Lambda function URL.

use aetherium::api::Route;

/// The custom integrations this function can build from the config.
const INTEGRATIONS: &[&dyn aetherium::integration::IntegrationFactory] = &[&aetherium_webhook::WebhookFactory];

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    aetherium::lambda::run_http(Route::GithubWebhook, INTEGRATIONS).await
}
