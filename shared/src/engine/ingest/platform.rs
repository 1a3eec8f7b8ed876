//! A platform event as `POST /api/v1/events` takes it: the guide's envelope, checked field
//! by field, each problem named.

use super::IngestError;
use crate::model::event::{Event, topics};
use chrono::{DateTime, SubsecRound, Utc};
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

fn bad(msg: impl Into<String>) -> IngestError {
    IngestError::Invalid(msg.into())
}

/// The event `body` describes, and whether its sender gave the id (and may send it again).
pub fn parse(body: &[u8]) -> Result<(Event, bool), IngestError> {
    let incoming: Incoming =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not a valid event object: {e}")))?;
    let kind = incoming.kind.ok_or_else(|| bad("`type` is required, for example \"task.completed\""))?;
    topics::validate(&kind, topics::PLATFORM_FAMILIES).map_err(|e| bad(format!("`type`: {e}")))?;
    let data = match incoming.data {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(bad("`data` must be a JSON object")),
    };
    let given = incoming.id.is_some();
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
    Ok((Event { id, kind, timestamp, source, data }, given))
}
