//! The one way a record reaches the work queue: claimed once by its id, sent (by claim check
//! when large), then marked. The delivery key and its marks live here and nowhere else; the
//! redelivery job reads them through [`DeliveryMarks`].

use super::IngestError;
use crate::backends::error::BackendError;
use crate::backends::queue::{WorkQueue, claim};
use crate::backends::store::{Store, Write};
use crate::model::event::Record;
pub use crate::model::fingerprint::Fingerprint;
use crate::observe::activity::{ActivityLog, Level};
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
    /// Given by the sender (a delivery GUID, a derived id): copies may arrive.
    Given,
    /// Given by a sender that may reuse it by mistake (a platform using its task id as the
    /// event id): a copy must carry the same [`Fingerprint`] (its type and data), else it is
    /// refused.
    Checked(Fingerprint),
    /// Given with a signature over the request's bytes (a GitHub delivery; the fingerprint is
    /// the signature's): the same bytes under another id are a replay, not queued.
    Signed(Fingerprint),
    /// Minted here a moment ago (a UUID v4): it cannot repeat, so no claim round trip.
    Minted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    Queued,
    /// This id was queued before: acknowledged, not queued again.
    Duplicate,
    /// These signed bytes were queued before under another id: a replay, not queued.
    Replay,
}

/// What [`Enqueue::claim_body`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BodyClaim {
    /// First seen now; the key to release if the delivery is not queued.
    New(String),
    /// Seen before under the same delivery id (a redelivery): the id's own claim decides.
    Same,
    /// Seen before under another delivery id.
    Replay,
    /// Not checked (no signature, or the store is down).
    Unknown,
}

/// The marks the ingest keeps per (source, id): `pending` while one copy enqueues, `queued`
/// once the queue holds its record; each followed by `:<fingerprint>` for an [`Id::Checked`].
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
        Ok(self.store.get(&Self::key(source, id)).await?.is_some_and(|v| mark_state(&v) == QUEUED))
    }
}

fn mark_state(value: &str) -> &str {
    value.split_once(':').map_or(value, |(state, _)| state)
}

fn mark(state: &str, id: Id) -> String {
    match id {
        Id::Checked(print) => format!("{state}:{}", print.hex()),
        Id::Given | Id::Signed(_) | Id::Minted => state.to_owned(),
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
            if let Err(error) = self.store.apply(&arrival(source, record)).await {
                tracing::warn!(%error, source, "could not write the event's arrival to the activity log");
            }
            return Ok(Queued::Queued);
        }
        let body = match id {
            Id::Signed(print) => match self.claim_body(source, &print, &record.id).await {
                BodyClaim::Replay => return Ok(Queued::Replay),
                BodyClaim::New(key) => Some(key),
                BodyClaim::Same | BodyClaim::Unknown => None,
            },
            _ => None,
        };
        let key = DeliveryMarks::key(source, &record.id);
        let Some(claimed) = self.claim(source, &key, &record.id, id).await? else { return Ok(Queued::Duplicate) };
        if let Err(e) = self.push(source, record).await {
            // Let go of both claims, so the sender's retry is taken.
            let released: Vec<Write> =
                body.into_iter().chain(claimed.then_some(key)).map(|key| Write::Delete { key }).collect();
            if let Err(error) = self.store.apply(&released).await {
                let delivery = record.id.as_str();
                tracing::warn!(%error, source, delivery, "could not release the delivery's claims; they expire by themselves");
            }
            return Err(e);
        }
        let [received, queued] = arrival(source, record);
        let marked = Write::Set { key, value: mark(QUEUED, id), ttl: Some(DELIVERY_TTL) };
        if let Err(error) = self.store.apply(&[marked, received, queued]).await {
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
        let claims: Vec<Option<bool>> = futures_util::future::join_all(
            records
                .iter()
                .zip(&keys)
                .map(|(r, key)| async { self.claim(source, key, &r.id, Id::Given).await.ok().flatten() }),
        )
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
                    marks.extend(arrival(source, &records[i]));
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

    /// Claim delivery `delivery` under `key`: `None` when a copy holds it already (a
    /// duplicate), else whether the claim was taken (`false`: the store is down, and it
    /// queues anyway). An [`Id::Checked`] whose holder has another fingerprint is refused.
    async fn claim(&self, source: &str, key: &str, delivery: &str, id: Id) -> Result<Option<bool>, IngestError> {
        match self.store.set_if_absent_or_get(key, &mark(PENDING, id), PENDING_TTL).await {
            Ok(Some(held)) => {
                if let Id::Checked(print) = id
                    && let Some((_, theirs)) = held.split_once(':')
                    && theirs != print.hex()
                {
                    tracing::warn!(source, delivery, "event id reused for a different event; refused");
                    return Err(IngestError::IdReused(delivery.to_owned()));
                }
                tracing::info!(source, delivery, "copy of a delivery already accepted; not queued again");
                Ok(None)
            }
            Ok(None) => Ok(Some(true)),
            Err(error) => {
                tracing::warn!(%error, source, delivery, "dedup store unavailable; queueing anyway");
                Ok(Some(false))
            }
        }
    }

    /// Claim the signed bytes of delivery `id` from `source` (`signed`, their signature's
    /// fingerprint) for as long as the delivery id is remembered. A redelivery carries the
    /// same id and bytes; distinct events never share their bytes; so the same bytes under
    /// another id are a replay.
    async fn claim_body(&self, source: &str, signed: &Fingerprint, id: &str) -> BodyClaim {
        let key = format!("delivery:{source}:body:{}", signed.hex());
        match self.store.set_if_absent_or_get(&key, id, DELIVERY_TTL).await {
            Ok(None) => BodyClaim::New(key),
            Ok(Some(held)) if held == id => BodyClaim::Same,
            Ok(Some(_)) => BodyClaim::Replay,
            Err(error) => {
                tracing::warn!(%error, source, "dedup store unavailable; the body is not checked for a replay");
                BodyClaim::Unknown
            }
        }
    }

    /// Whether `key` is taken here for the first time within `ttl`: a signed request that is
    /// run, not queued (a slash command), claimed so that a replay of it inside its signature's
    /// window is not run again. A store outage counts as the first time, as for deliveries.
    pub async fn first_time(&self, key: &str, ttl: Duration) -> bool {
        match self.store.set_if_absent_or_get(key, "1", ttl).await {
            Ok(held) => held.is_none(),
            Err(error) => {
                tracing::warn!(%error, "dedup store unavailable; taking the request as new");
                true
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

/// The activity log's first two entries of an event, written with its `queued` mark: where it
/// came from, and that the queue holds it (`logs/query` with its `event_id` follows it on).
fn arrival(source: &str, record: &Record) -> [Write; 2] {
    let id = Some(record.id.as_str());
    [
        ActivityLog::op("ingest", Level::Debug, format!("received {} from {source}", record.kind), id),
        ActivityLog::op("ingest", Level::Debug, "queued", id),
    ]
}

fn unavailable(source: &str, record: &Record, e: BackendError) -> IngestError {
    IngestError::Unavailable(format!("enqueue of {source} event {} failed: {e}", record.id))
}
