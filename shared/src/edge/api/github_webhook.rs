//! `POST /api/v1/webhooks/github`: verify, normalise, dedup by delivery id, enqueue, 202.

use super::gate::{self, Signer};
use super::ingest::{self, Queued};
use super::{ApiError, Request, Response, json};
use crate::engine::app::App;
use crate::integrations::github::webhook::{self, WebhookError};
use http::StatusCode;
use serde_json::json;

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

pub async fn handle(app: &App, req: Request) -> Result<Response, ApiError> {
    let verified = gate::verify(app, Signer::Github, &req).await?;

    let event =
        header(&req, "x-github-event").ok_or_else(|| ApiError::BadRequest("X-GitHub-Event is missing".into()))?;
    if !webhook::event_name_ok(event) {
        return Err(ApiError::BadRequest("X-GitHub-Event must be lower-case letters, digits and _".into()));
    }
    let delivery =
        header(&req, "x-github-delivery").ok_or_else(|| ApiError::BadRequest("X-GitHub-Delivery is missing".into()))?;
    if delivery.len() > 128 || !delivery.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(ApiError::BadRequest("X-GitHub-Delivery must be a GUID".into()));
    }

    let normalized = webhook::normalize(event, delivery, verified).map_err(|e| {
        ApiError::BadRequest(match e {
            WebhookError::NotJson(_) => "the body is not a JSON object".to_owned(),
            other => other.to_string(),
        })
    })?;
    if event == "ping" {
        return Ok(json(StatusCode::OK, &json!({ "status": "pong", "id": delivery })));
    }

    if ingest::enqueue_once(app, "github", delivery, &normalized.record).await? == Queued::Duplicate {
        return Ok(json(StatusCode::OK, &json!({ "id": delivery, "status": "duplicate" })));
    }
    tracing::info!(delivery, topic = %normalized.topic, "webhook queued");
    Ok(json(StatusCode::ACCEPTED, &json!({ "id": delivery, "type": normalized.topic, "status": "queued" })))
}
