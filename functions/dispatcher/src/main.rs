//! The dispatcher: SQS batches of queued events in, partial batch failures out.

/// The custom integrations this function can build from the config.
const INTEGRATIONS: &[&dyn aetherium::model::integration::IntegrationFactory] = &[&aetherium_webhook::WebhookFactory];

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    aetherium::edge::lambda::run_dispatcher(INTEGRATIONS).await
}
