//! `POST /api/v1/webhooks/<source>`: every signed webhook, whichever source signs it. The
//! ingest verifies, parses and queues; this maps what it answers to HTTP.

use super::{ApiError, Request, Response, accepted};
use crate::engine::ingest::Ingest;

pub async fn handle(ingest: &Ingest, source: &str, req: Request) -> Result<Response, ApiError> {
    Ok(accepted(ingest.webhook(source, req.headers(), req.body()).await?))
}
