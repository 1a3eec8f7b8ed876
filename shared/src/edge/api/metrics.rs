//! `GET /metrics`: the shared counters in the Prometheus text format.

use super::{ApiError, Request, Response, auth};
use crate::engine::app::App;
use crate::observe::metrics::Metrics;
use bytes::Bytes;

pub async fn handle(app: &App, req: Request) -> Result<Response, ApiError> {
    auth::internal(app.config.api_token.as_ref(), app.config.iam_url, &req)?;
    let text =
        Metrics::new(app.store.clone()).render().await.map_err(|e| ApiError::Unavailable(format!("metrics: {e}")))?;
    http::Response::builder()
        .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")
        .body(Bytes::from(text))
        .map_err(|e| ApiError::Internal(e.to_string()))
}
