//! Queueing a verified delivery once: the shared last step of every webhook.

use super::ApiError;
use crate::backends::queue::claim;
use crate::backends::store::{DELIVERY_QUEUED, delivery_key};
use crate::engine::app::App;
use std::time::Duration;

/// How long a delivery id is remembered: senders redeliver within hours, by hand days later.
pub const DELIVERY_TTL: Duration = Duration::from_secs(3 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    Queued,
    /// This delivery id was queued before: acknowledged, not queued again.
    Duplicate,
}

/// How long a claim on a delivery id waits for its enqueue before a copy may try again.
const PENDING_TTL: Duration = Duration::from_secs(60);

/// Queue `record` unless delivery `id` from `source` was queued already. Copies arriving
/// together race for one `SET NX` claim (`pending`); only the winner enqueues, and marks the id
/// `queued` once the queue has the record. A failed enqueue releases the claim, so the sender's
/// retry (after our 503) is queued rather than dropped as a duplicate. A store outage queues
/// anyway: the dispatcher dedups by event id.
pub async fn enqueue_once(app: &App, source: &str, id: &str, record: &str) -> Result<Queued, ApiError> {
    let key = delivery_key(source, id);
    let claimed = match app.store.set_if_absent_or_get(&key, "pending", PENDING_TTL).await {
        Ok(Some(_)) => {
            tracing::info!(source, delivery = id, "copy of a delivery already accepted; not queued again");
            return Ok(Queued::Duplicate);
        }
        Ok(None) => true,
        Err(error) => {
            tracing::warn!(%error, source, delivery = id, "dedup store unavailable; queueing anyway");
            false
        }
    };
    if let Err(e) = claim::enqueue(app.queue.as_ref(), app.store.as_ref(), record).await {
        if claimed && let Err(error) = app.store.delete(&key).await {
            tracing::warn!(%error, source, delivery = id, "could not release the delivery claim; it expires in 60 s");
        }
        return Err(ApiError::Unavailable(format!("enqueue of {source} delivery {id} failed: {e}")));
    }
    if let Err(error) = app.store.set(&key, DELIVERY_QUEUED, Some(DELIVERY_TTL)).await {
        tracing::warn!(%error, source, delivery = id, "could not record the delivery id; a redelivery would be queued again");
    }
    Ok(Queued::Queued)
}
