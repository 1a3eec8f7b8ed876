//! Queueing a verified delivery once: the shared last step of every webhook.

use super::ApiError;
use crate::app::App;
use crate::queue::claim;
use std::time::Duration;

/// How long a delivery id is remembered: senders redeliver within hours, by hand days later.
pub const DELIVERY_TTL: Duration = Duration::from_secs(3 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    Queued,
    /// This delivery id was queued before: acknowledged, not queued again.
    Duplicate,
}

/// Queue `record` unless delivery `id` from `source` was queued already. The id is recorded
/// only after the queue has the record, so a failed enqueue (503) leaves the sender's
/// redelivery working; a store outage queues anyway and the dispatcher dedups by event id.
pub async fn enqueue_once(app: &App, source: &str, id: &str, record: &str) -> Result<Queued, ApiError> {
    let key = format!("delivery:{source}:{id}");
    match app.store.get(&key).await {
        Ok(Some(_)) => {
            tracing::info!(source, delivery = id, "redelivery of a queued delivery; not queued again");
            return Ok(Queued::Duplicate);
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, source, delivery = id, "dedup store unavailable; queueing anyway"),
    }
    claim::enqueue(app.queue.as_ref(), app.store.as_ref(), record)
        .await
        .map_err(|e| ApiError::Unavailable(format!("enqueue of {source} delivery {id} failed: {e}")))?;
    if let Err(error) = app.store.set(&key, "queued", Some(DELIVERY_TTL)).await {
        tracing::warn!(%error, source, delivery = id, "could not record the delivery id; a redelivery would be queued again");
    }
    Ok(Queued::Queued)
}
