//! `GET /api/v1/health`: 200 when ok, 503 when degraded. The body names components and
//! their state, never a secret, token or address.

use super::{ApiError, Response, json};
use crate::engine::health::HealthCheck;
use crate::observe::health::DEFAULT_DEADLINE;
use http::StatusCode;

pub async fn handle(health: &HealthCheck) -> Result<Response, ApiError> {
    let report = health.check(DEFAULT_DEADLINE).await;
    let status = if report.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Ok(json(status, &report))
}
