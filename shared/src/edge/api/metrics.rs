//! `GET /metrics`: the shared counters in the Prometheus text format.

use super::{ApiError, Response};
use crate::observe::metrics::Metrics;
use bytes::Bytes;

pub async fn handle(metrics: &Metrics) -> Result<Response, ApiError> {
    let text = metrics.render().await.map_err(|e| ApiError::Unavailable(format!("metrics: {e}")))?;
    http::Response::builder()
        .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")
        .body(Bytes::from(text))
        .map_err(|e| ApiError::Internal(e.to_string()))
}
