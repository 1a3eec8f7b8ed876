//! `POST /api/v1/events`: the authenticated ingest of platform events.

use super::ingest::{self, Queued};
use super::{ApiError, Request, Response, auth, json};
use crate::backends::queue::claim;
use crate::engine::app::App;
use crate::model::event::{Event, topics};
use chrono::{DateTime, SubsecRound, Utc};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Incoming {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    timestamp: Option<String>,
    source: Option<String>,
    data: Option<Value>,
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

fn validate(incoming: Incoming) -> Result<Event, ApiError> {
    let kind = incoming.kind.ok_or_else(|| bad("`type` is required, for example \"task.completed\""))?;
    topics::validate(&kind, topics::PLATFORM_FAMILIES).map_err(|e| bad(format!("`type`: {e}")))?;
    let data = match incoming.data {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(bad("`data` must be a JSON object")),
    };
    let id = match incoming.id {
        None => uuid::Uuid::new_v4().to_string(),
        Some(id) if (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()) => id,
        Some(_) => return Err(bad("`id` must be 1 to 128 printable ASCII characters without spaces")),
    };
    let timestamp = match incoming.timestamp {
        None => Utc::now().trunc_subsecs(3),
        Some(t) => DateTime::parse_from_rfc3339(&t)
            .map_err(|_| bad("`timestamp` must be RFC 3339, for example 2026-11-26T12:00:00Z"))?
            .with_timezone(&Utc),
    };
    let source = incoming.source.unwrap_or_else(|| "platform".to_owned());
    if source.is_empty() || source.len() > 64 {
        return Err(bad("`source` must be 1 to 64 characters"));
    }
    Ok(Event { id, kind, timestamp, source, data })
}

pub async fn handle(app: &App, req: Request) -> Result<Response, ApiError> {
    auth::internal(app.config.api_token.as_ref(), app.config.iam_url, &req)?;
    let body = req.body();
    if body.len() > app.config.max_body_bytes {
        return Err(ApiError::PayloadTooLarge { limit: app.config.max_body_bytes });
    }
    let incoming: Incoming =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not a valid event object: {e}")))?;
    let sender_id = incoming.id.is_some();
    let event = validate(incoming)?;
    if !sender_id {
        // An id we just made up cannot repeat: no dedup round trip.
        claim::enqueue(app.queue.as_ref(), app.store.as_ref(), &event.to_json())
            .await
            .map_err(|e| ApiError::Unavailable(format!("enqueue failed: {e}")))?;
    } else if ingest::enqueue_once(app, "platform", &event.id, &event.to_json()).await? == Queued::Duplicate {
        let body = serde_json::json!({ "id": event.id, "type": event.kind, "status": "duplicate" });
        return Ok(json(StatusCode::OK, &body));
    }
    tracing::info!(event_id = %event.id, topic = %event.kind, "platform event queued");
    Ok(json(StatusCode::ACCEPTED, &serde_json::json!({ "id": event.id, "type": event.kind })))
}
