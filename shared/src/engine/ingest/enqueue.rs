//! The one way a record reaches the work queue: claimed once by its id, sent (by claim check
//! when large), then marked. The delivery key and its marks live here and nowhere else; the
//! redelivery job reads them through [`DeliveryMarks`].

use super::IngestError;
use crate::backends::error::BackendError;
use crate::backends::queue::{WorkQueue, claim};
use crate::backends::store::{Store, Write};
use crate::model::event::Record;
use std::sync::Arc;
use std::time::Duration;

/// How long a delivery id is remembered: senders redeliver within hours, by hand days later.
pub const DELIVERY_TTL: Duration = Duration::from_secs(3 * 24 * 3600);

/// How long a claim on a delivery id waits for its enqueue before a copy may try again.
const PENDING_TTL: Duration = Duration::from_secs(60);

const PENDING: &str = "pending";
const QUEUED: &str = "queued";

/// Where an id came from, which decides whether it can repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id {
    /// Given by the sender (a delivery GUID, an event id, a derived id): copies may arrive.
    Given,
    /// Minted here a moment ago (a UUID v4): it cannot repeat, so no claim round trip.
    Minted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    Queued,
    /// This id was queued before: acknowledged, not queued again.
    Duplicate,
}

/// The marks the ingest keeps per (source, id): `pending` while one copy enqueues, `queued`
/// once the queue holds its record.
#[derive(Debug, Clone)]
pub struct DeliveryMarks {
    store: Arc<dyn Store>,
}

impl DeliveryMarks {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    fn key(source: &str, id: &str) -> String {
        format!("delivery:{source}:{id}")
    }

    /// Whether the queue holds delivery `id` of `source`. A claim still `pending` does not
    /// count: its function may have died before queueing it.
    pub async fn queued(&self, source: &str, id: &str) -> Result<bool, BackendError> {
        Ok(self.store.get(&Self::key(source, id)).await?.as_deref() == Some(QUEUED))
    }
}

/// The queue and the marks, under one policy.
#[derive(Debug, Clone)]
pub struct Enqueue {
    queue: Arc<dyn WorkQueue>,
    store: Arc<dyn Store>,
}

impl Enqueue {
    pub fn new(queue: Arc<dyn WorkQueue>, store: Arc<dyn Store>) -> Self {
        Self { queue, store }
    }

    /// Queue `record` from `source`, once per id. Copies arriving together race for one
    /// `SET NX` claim (`pending`); only the winner enqueues, and marks the id `queued` once
    /// the queue has the record. A failed enqueue releases the claim, so the sender's retry
    /// (after our 503) is queued rather than dropped as a duplicate. A store outage queues
    /// anyway: the dispatcher dedups by event id.
    pub async fn send(&self, source: &str, record: &Record, id: Id) -> Result<Queued, IngestError> {
        if id == Id::Minted {
            self.push(source, record).await?;
            return Ok(Queued::Queued);
        }
        let key = DeliveryMarks::key(source, &record.id);
        let Some(claimed) = self.claim(source, &key, &record.id).await else { return Ok(Queued::Duplicate) };
        if let Err(e) = self.push(source, record).await {
            if claimed && let Err(error) = self.store.delete(&key).await {
                let delivery = record.id.as_str();
                tracing::warn!(%error, source, delivery, "could not release the delivery claim; it expires in 60 s");
            }
            return Err(e);
        }
        if let Err(error) = self.store.set(&key, QUEUED, Some(DELIVERY_TTL)).await {
            let delivery = record.id.as_str();
            tracing::warn!(%error, source, delivery, "could not record the delivery id; a redelivery would be queued again");
        }
        Ok(Queued::Queued)
    }

    /// [`Self::send`] for many records with ids their sender gave, under the same policy per
    /// record: each is claimed on its own, the claimed ones go to the queue together
    /// ([`WorkQueue::send_batch`]), and each is marked `queued`, or its claim released, by
    /// what became of its own entry. One result per record, in order.
    pub async fn send_many(&self, source: &str, records: &[Record]) -> Vec<Result<Queued, IngestError>> {
        let keys: Vec<String> = records.iter().map(|r| DeliveryMarks::key(source, &r.id)).collect();
        let claims =
            futures_util::future::join_all(records.iter().zip(&keys).map(|(r, key)| self.claim(source, key, &r.id)))
                .await;
        let to_send: Vec<usize> = (0..records.len()).filter(|&i| claims[i].is_some()).collect();
        let bodies: Vec<&str> = to_send.iter().map(|&i| records[i].json.as_str()).collect();
        let sent = claim::enqueue_many(self.queue.as_ref(), self.store.as_ref(), &bodies).await;
        let mut out: Vec<Result<Queued, IngestError>> = records.iter().map(|_| Ok(Queued::Duplicate)).collect();
        let (mut marks, mut releases) = (Vec::new(), Vec::new());
        for (&i, result) in to_send.iter().zip(sent) {
            let key = keys[i].clone();
            out[i] = match result {
                Ok(_) => {
                    marks.push(Write::Set { key, value: QUEUED.into(), ttl: Some(DELIVERY_TTL) });
                    Ok(Queued::Queued)
                }
                Err(e) => {
                    if claims[i] == Some(true) {
                        releases.push(Write::Delete { key });
                    }
                    Err(unavailable(source, &records[i], e))
                }
            };
        }
        let (marked, released) = futures_util::join!(self.store.apply(&marks), self.store.apply(&releases));
        if let Err(error) = marked {
            tracing::warn!(%error, source, records = marks.len(), "could not record the delivery ids; a redelivery would be queued again");
        }
        if let Err(error) = released {
            tracing::warn!(%error, source, records = releases.len(), "could not release the delivery claims; they expire in 60 s");
        }
        out
    }

    /// Claim delivery `id` under `key`: `None` when a copy holds it already (a duplicate),
    /// else whether the claim was taken (`false`: the store is down, and it queues anyway).
    async fn claim(&self, source: &str, key: &str, id: &str) -> Option<bool> {
        match self.store.set_if_absent_or_get(key, PENDING, PENDING_TTL).await {
            Ok(Some(_)) => {
                tracing::info!(source, delivery = id, "copy of a delivery already accepted; not queued again");
                None
            }
            Ok(None) => Some(true),
            Err(error) => {
                tracing::warn!(%error, source, delivery = id, "dedup store unavailable; queueing anyway");
                Some(false)
            }
        }
    }

    async fn push(&self, source: &str, record: &Record) -> Result<(), IngestError> {
        claim::enqueue(self.queue.as_ref(), self.store.as_ref(), &record.json)
            .await
            .map(drop)
            .map_err(|e| unavailable(source, record, e))
    }
}

fn unavailable(source: &str, record: &Record, e: BackendError) -> IngestError {
    IngestError::Unavailable(format!("enqueue of {source} event {} failed: {e}", record.id))
}
