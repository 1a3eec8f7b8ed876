//! `POST /api/v1/events`: the authenticated ingest of platform events (the caller was
//! authenticated by [`super::handle`]).

use super::{ApiError, Request, Response, accepted};
use crate::engine::ingest::Ingest;

pub async fn handle(ingest: &Ingest, req: Request) -> Result<Response, ApiError> {
    Ok(accepted(ingest.platform(req.body()).await?))
}
