//! A hello-world function on the same runtime, profile and tokio flavour as ours: what a
//! Lambda costs before any of our work (scripts/bench's floor).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(|_: lambda_runtime::LambdaEvent<serde_json::Value>| async {
        Ok::<_, lambda_runtime::Error>(serde_json::json!({"statusCode": 200, "body": "hello"}))
    }))
    .await
}
