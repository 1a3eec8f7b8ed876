//! `POST /api/v1/webhooks/github`: verify, normalise, dedup by delivery id, enqueue, 202.

use super::ingest::{self, Queued};
use super::{ApiError, Request, Response, json};
use crate::activity::ActivityLog;
use crate::app::App;
use crate::github::webhook::{self, WebhookError};
use crate::signature::SignatureError;
use http::StatusCode;
use serde_json::json;
fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

pub async fn handle(app: &App, req: Request) -> Result<Response, ApiError> {
    let limit = app.config.max_body_bytes;
    if req.body().len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let verifier = app
        .github_webhook
        .as_ref()
        .ok_or(ApiError::Misconfigured { setting: "GITHUB_WEBHOOK_SECRET (integrations.github.webhook_secret)" })?;

    // Nothing is parsed before the signature over the raw bytes checks out.
    let signature = req.headers().get("x-hub-signature-256").map(|v| v.as_bytes());
    let verified = match signature {
        None if req.headers().contains_key("x-hub-signature") => Err(SignatureError::LegacyOnly),
        sig => verifier.verify_github(sig, req.body()),
    };
    if let Err(reason) = verified {
        tracing::warn!(%reason, "webhook signature rejected");
        ActivityLog::new(app.store.clone()).rejected("github", &format!("webhook signature rejected: {reason}")).await;
        return Err(ApiError::Unauthorized(match reason {
            SignatureError::LegacyOnly => "X-Hub-Signature-256 is required; sha1 X-Hub-Signature is not accepted",
            SignatureError::Missing => "X-Hub-Signature-256 is missing",
            _ => "X-Hub-Signature-256 is not a valid signature of this body",
        }));
    }

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

    let normalized = webhook::normalize(event, delivery, req.body()).map_err(|e| {
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
