//! Claim checks: a record larger than the queue's message limit is parked in the store and
//! the queue carries a reference to it, so no event is dropped for its size.

use super::WorkQueue;
use crate::error::BackendError;
use crate::store::Store;
use std::borrow::Cow;
use std::time::Duration;

/// Longer than the queue's retention (4 days in template.yaml), so a claim outlives every
/// delivery attempt of its message.
pub const CLAIM_TTL: Duration = Duration::from_secs(5 * 24 * 3600);
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

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Claim {
    claim_check: String,
}

/// Send `record`, by claim check when it is over the queue's limit. Returns the message id.
pub async fn enqueue(queue: &dyn WorkQueue, store: &dyn Store, record: &str) -> Result<String, BackendError> {
    if record.len() <= queue.max_message_bytes() {
        return queue.send(record).await;
    }
    let key = format!("claim:{}", uuid::Uuid::new_v4());
    store.set(&key, record, Some(CLAIM_TTL)).await?;
    let message = serde_json::to_string(&Claim { claim_check: key }).unwrap_or_default();
    tracing::info!(bytes = record.len(), "record sent by claim check");
    queue.send(&message).await
}

/// The record a queue message stands for: the message itself, or the claimed record.
pub async fn resolve<'a>(store: &dyn Store, message: &'a str) -> Result<Cow<'a, str>, ClaimError> {
    if !message.starts_with(PREFIX) {
        return Ok(Cow::Borrowed(message));
    }
    let claim: Claim = serde_json::from_str(message).map_err(|e| ClaimError::Malformed(e.to_string()))?;
    match store.get(&claim.claim_check).await? {
        Some(record) => Ok(Cow::Owned(record)),
        None => Err(ClaimError::Missing(claim.claim_check)),
    }
}
