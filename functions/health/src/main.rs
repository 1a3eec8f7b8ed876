//! The health function: wires config and backends, then serves `GET /api/v1/health`.

use aetherium::api::Route;
use aetherium::config::Config;
use aetherium::{App, lambda, telemetry};
use lambda_http::{Error, service_fn};
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init(true);
    let app = Arc::new(App::from_config(Config::from_env()?)?);
    lambda_http::run(service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Error>(lambda::respond(&app, Route::Health, req).await) }
    }))
    .await
}
