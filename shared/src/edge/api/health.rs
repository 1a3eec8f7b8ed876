//! `GET /api/v1/health`: 200 when ok, 503 when degraded. The body names components and
//! their state, never a secret, token or address.

use super::{ApiError, Request, Response, json};
use crate::engine::app::App;
use crate::observe::health::{DEFAULT_DEADLINE, check};
use http::StatusCode;

pub async fn handle(app: &App, _req: Request) -> Result<Response, ApiError> {
    let report = check(app, DEFAULT_DEADLINE).await;
    let status = if report.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Ok(json(status, &report))
}
