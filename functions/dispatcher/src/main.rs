//! The dispatcher: SQS batches of queued events in, partial batch failures out.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    aetherium::lambda::run_dispatcher().await
}
