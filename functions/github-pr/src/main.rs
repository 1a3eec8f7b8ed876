//! POST /api/v1/integrations/github/pr, on a Lambda function URL.

use aetherium::edge::api::Endpoint;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    aetherium::edge::lambda::run_http(Endpoint::GithubPr, &[]).await
}
