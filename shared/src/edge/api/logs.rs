//! `POST /api/v1/logs/query` (also `/logs/query`): the activity log, filtered, newest first;
//! one event's entries (`event_id`) oldest first.

use super::{ApiError, Request, Response, json};
use crate::observe::activity::{self, ActivityLog, Level};
use chrono::DateTime;
use http::StatusCode;
use serde::Deserialize;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Query {
    component: Option<String>,
    level: Option<String>,
    limit: Option<i64>,
    since: Option<String>,
    /// One event's entries, oldest first: a platform event's id, or a webhook's delivery id.
    #[serde(alias = "delivery_id")]
    event_id: Option<String>,
}

fn level(name: &str) -> Result<Level, ApiError> {
    match name {
        "debug" => Ok(Level::Debug),
        "info" => Ok(Level::Info),
        "warn" | "warning" => Ok(Level::Warn),
        "error" => Ok(Level::Error),
        other => Err(ApiError::BadRequest(format!("`level` `{other}` is not one of debug, info, warn, error"))),
    }
}

pub async fn handle(log: &ActivityLog, req: Request) -> Result<Response, ApiError> {
    let q: Query = if req.body().iter().all(u8::is_ascii_whitespace) {
        Query::default()
    } else {
        serde_json::from_slice(req.body())
            .map_err(|e| ApiError::BadRequest(format!("the body is not a valid query: {e}")))?
    };
    let min = q.level.as_deref().map(level).transpose()?.unwrap_or(Level::Debug);
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT as i64).contains(&n) => n as usize,
        Some(n) => return Err(ApiError::BadRequest(format!("`limit` must be 1 to {MAX_LIMIT}, not {n}"))),
    };
    let since = q
        .since
        .as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| ApiError::BadRequest("`since` must be RFC 3339, for example 2026-11-26T00:00:00Z".into()))
        })
        .transpose()?;
    let unavailable = |e| ApiError::Unavailable(format!("activity log: {e}"));
    let mut entries = log.recent(activity::CAP).await.map_err(unavailable)?;
    // The tallies of rejected requests, kept apart, join in time order (newest first; the
    // sort is stable, so entries of one millisecond keep their order).
    entries.extend(log.rejections().await.map_err(unavailable)?);
    entries.sort_by(|a, b| b.timestamp.cmp(&a.timestamp));
    if let Some(id) = &q.event_id {
        // One event read as a story: received, queued, published, each route's outcome.
        entries.retain(|e| e.event_id.as_deref() == Some(id.as_str()));
        entries.reverse();
    }
    let selected: Vec<_> = entries
        .into_iter()
        .filter(|e| q.component.as_deref().is_none_or(|c| e.component == c))
        .filter(|e| e.level >= min)
        .filter(|e| since.is_none_or(|s| DateTime::parse_from_rfc3339(&e.timestamp).is_ok_and(|t| t >= s)))
        .take(limit)
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "count": selected.len(), "entries": selected })))
}
