//! POST /api/v1/webhooks/slack, on a Lambda function URL.

use aetherium::api::Route;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    aetherium::lambda::run_http(Route::SlackWebhook).await
}
