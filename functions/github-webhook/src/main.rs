//! POST /api/v1/webhooks/github, on a Lambda function URL.

use aetherium::edge::api::Endpoint;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    aetherium::edge::lambda::run_http(Endpoint::Webhook("github"), &[]).await
}
