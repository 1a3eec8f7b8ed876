//! Claim checks: a record larger than the queue's message limit is parked in the store and
//! the queue carries a reference to it, so no event is dropped for its size. The dispatcher
//! deletes a claim once its event is dispatched; the message names the event, so a late
//! redelivery of it finds the event done instead of a missing claim.

use super::WorkQueue;
use crate::backends::error::BackendError;
use crate::backends::store::Store;
use std::borrow::Cow;
use std::time::Duration;

/// How long the work queue keeps a message (template.yaml's `MessageRetentionPeriod`).
pub const QUEUE_RETENTION: Duration = Duration::from_secs(4 * 24 * 3600);
/// How long the dead-letter queue keeps one (its `MessageRetentionPeriod`, SQS's maximum).
pub const DEAD_LETTER_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

/// How long a parked record lives, from its parking or its message's latest failure (each
/// failure renews it): longer than its message can wait in the dead-letter queue and then,
/// redriven, in the work queue, so a redrive on the last day still finds its record. The
/// template test checks both retentions against the template.
pub const CLAIM_TTL: Duration =
    Duration::from_secs(DEAD_LETTER_RETENTION.as_secs() + QUEUE_RETENTION.as_secs() + 24 * 3600);
const PREFIX: &str = "{\"claim_check\":";

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("claim check {0} is missing from the store (expired or never written)")]
    Missing(String),
    #[error("malformed claim check: {0}")]
    Malformed(String),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A queue message that stands for a record in the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    #[serde(rename = "claim_check")]
    pub key: String,
    /// The event's id and type (absent from claims written before they were added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl Claim {
    /// The claim a queue message is, if it is one.
    pub fn parse(message: &str) -> Result<Option<Self>, ClaimError> {
        if !message.starts_with(PREFIX) {
            return Ok(None);
        }
        serde_json::from_str(message).map(Some).map_err(|e| ClaimError::Malformed(e.to_string()))
    }
}

/// Send `record`, by claim check when it is over the queue's limit. Returns the message id.
pub async fn enqueue(queue: &dyn WorkQueue, store: &dyn Store, record: &str) -> Result<String, BackendError> {
    let message = message_for(queue, store, record).await?;
    queue.send(&message).await
}

/// [`enqueue`] for many records, their messages sent together ([`WorkQueue::send_batch`]):
/// one result per record, in order.
pub async fn enqueue_many(
    queue: &dyn WorkQueue,
    store: &dyn Store,
    records: &[&str],
) -> Vec<Result<String, BackendError>> {
    let messages = futures_util::future::join_all(records.iter().map(|r| message_for(queue, store, r))).await;
    let sendable: Vec<&str> = messages.iter().filter_map(|m| m.as_deref().ok()).collect();
    let mut sent = queue.send_batch(&sendable).await.into_iter();
    messages
        .into_iter()
        .map(|m| match m {
            Ok(_) => sent.next().unwrap_or_else(|| Err(BackendError::unavailable("queue", "batch answer too short"))),
            Err(e) => Err(e),
        })
        .collect()
}

/// What the queue carries for `record`: the record itself, or a claim on it once it is
/// parked in the store.
async fn message_for<'a>(
    queue: &dyn WorkQueue,
    store: &dyn Store,
    record: &'a str,
) -> Result<Cow<'a, str>, BackendError> {
    let record = super::sqs_safe(record);
    if record.len() <= queue.max_message_bytes() {
        return Ok(record);
    }
    let key = format!("claim:{}", uuid::Uuid::new_v4());
    store.set(&key, &record, Some(CLAIM_TTL)).await?;
    let head = crate::model::event::EventHead::from_json(&record).ok();
    let claim = Claim {
        key,
        event_id: head.as_ref().map(|h| h.id.to_string()),
        kind: head.as_ref().map(|h| h.kind.to_string()),
    };
    tracing::info!(bytes = record.len(), "record sent by claim check");
    Ok(Cow::Owned(serde_json::to_string(&claim).unwrap_or_default()))
}

/// The record a queue message stands for: the message itself, or the claimed record.
pub async fn resolve<'a>(store: &dyn Store, message: &'a str) -> Result<Cow<'a, str>, ClaimError> {
    let Some(claim) = Claim::parse(message)? else { return Ok(Cow::Borrowed(message)) };
    match store.get(&claim.key).await? {
        Some(record) => Ok(Cow::Owned(record)),
        None => Err(ClaimError::Missing(claim.key)),
    }
}
