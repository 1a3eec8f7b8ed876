//! The dispatcher core, shared by the SQS-triggered Lambda and the local runner's loop:
//! per record, resolve a claim check, skip events already done, publish on the bus, run the
//! routes, and only then mark the event done.

use crate::activity::{ActivityLog, Level};
use crate::bus::EventBus;
use crate::error::BackendError;
use crate::event::Event;
use crate::integration::IntegrationError;
use crate::metrics::{self, Metrics};
use crate::queue::claim::{self, ClaimError};
use crate::queue::{QueueMessage, WorkQueue};
use crate::routes::Routes;
use crate::store::Store;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

/// How long "this event is done" is remembered: longer than any redelivery window.
pub const DONE_TTL: Duration = Duration::from_secs(4 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The record can never succeed; it reaches the dead-letter queue after its receives.
    #[error("record is not an event: {0}")]
    Malformed(String),
    #[error(transparent)]
    Claim(#[from] ClaimError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A route failed in a way worth retrying; `after` when the remote asked for a delay.
    #[error("route `{route}` will be retried: {reason}")]
    Retry { route: String, reason: String, after: Option<Duration> },
    #[error("processing panicked")]
    Panicked,
}

impl DispatchError {
    /// The delay the record should wait before its next attempt, when one was asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retry { after, .. } => *after,
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Dispatched,
    /// The event id was already done: nothing happened again.
    AlreadyDone,
}

#[derive(Debug, Clone)]
pub struct Dispatcher {
    bus: Arc<dyn EventBus>,
    store: Arc<dyn Store>,
    routes: Arc<Routes>,
    metrics: Metrics,
    activity: ActivityLog,
}

fn done_key(event_id: &str) -> String {
    format!("done:{event_id}")
}

fn action_key(event_id: &str, action: &str) -> String {
    format!("done:{event_id}:{action}")
}

fn lock_key(event_id: &str, action: &str) -> String {
    format!("lock:{event_id}:{action}")
}

/// How long one dispatcher holds the right to run a route for an event; longer than any
/// route takes, shorter than the queue's visibility timeout.
const ROUTE_LOCK_TTL: Duration = Duration::from_secs(120);
/// When another dispatcher holds the lock, retry after this long.
const LOCKED_RETRY: Duration = Duration::from_secs(10);

impl Dispatcher {
    pub fn new(bus: Arc<dyn EventBus>, store: Arc<dyn Store>, routes: Routes) -> Self {
        Self {
            metrics: Metrics::new(store.clone()),
            activity: ActivityLog::new(store.clone()),
            bus,
            store,
            routes: Arc::new(routes),
        }
    }

    /// Process one queue message. An error leaves the record to be retried.
    pub async fn process(&self, message: &str) -> Result<(Event, Outcome), DispatchError> {
        let record = claim::resolve(self.store.as_ref(), message).await?;
        let event = Event::from_json(&record).map_err(|e| DispatchError::Malformed(e.to_string()))?;
        if self.store.get(&done_key(&event.id)).await?.is_some() {
            return Ok((event, Outcome::AlreadyDone));
        }
        self.bus.publish(&event.kind, &event).await?;
        self.metrics.incr(metrics::PUBLISHED, &[("topic", &event.kind)]).await;
        self.run_routes(&event).await?;
        self.store.set_if_absent(&done_key(&event.id), "1", DONE_TTL).await?;
        Ok((event, Outcome::Dispatched))
    }

    /// Every matching route; each one that succeeds is marked so a retry of the record skips
    /// it. Permanent failures are logged and not retried; transient ones fail the record.
    async fn run_routes(&self, event: &Event) -> Result<(), DispatchError> {
        let mut retry: Option<DispatchError> = None;
        for rule in self.routes.matching(&event.kind) {
            let name = rule.action.name();
            let key = action_key(&event.id, name);
            if self.store.get(&key).await?.is_some() {
                continue;
            }
            // Two dispatchers holding the same record (a redelivery while the first still
            // works) must not both run the route: the second retries later.
            let lock = lock_key(&event.id, name);
            if !self.store.set_if_absent(&lock, "1", ROUTE_LOCK_TTL).await? {
                tracing::info!(route = name, "another dispatcher is running this route; retrying later");
                let longer = retry.as_ref().and_then(DispatchError::retry_after).max(Some(LOCKED_RETRY));
                retry = Some(DispatchError::Retry {
                    route: name.to_owned(),
                    reason: "locked by another dispatcher".into(),
                    after: longer,
                });
                continue;
            }
            let outcome = AssertUnwindSafe(rule.action.run(event)).catch_unwind().await;
            // A panicking route releases its lock too, then fails the record like any panic.
            let release = self.store.delete(&lock).await;
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            if let Err(error) = release {
                tracing::warn!(route = name, %error, "could not release the route lock; it expires by itself");
            }
            match outcome {
                Ok(()) => {
                    self.store.set(&key, "1", Some(DONE_TTL)).await?;
                    tracing::info!(route = name, "route succeeded");
                    if let Some(integration) = rule.action.integration() {
                        self.metrics
                            .incr(metrics::CONSUMED, &[("topic", &event.kind), ("integration", integration)])
                            .await;
                    }
                    self.activity
                        .record(
                            "dispatcher",
                            Level::Debug,
                            format!("route {name} on {}: ok", event.kind),
                            Some(&event.id),
                        )
                        .await;
                }
                Err(e @ IntegrationError::Transient { .. }) => {
                    tracing::warn!(route = name, error = %e, "route failed; the record will be retried");
                    self.activity
                        .record(
                            "dispatcher",
                            Level::Warn,
                            format!("route {name} on {}: {e} (will retry)", event.kind),
                            Some(&event.id),
                        )
                        .await;
                    let after = match &e {
                        IntegrationError::Transient { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let longer = retry.as_ref().and_then(DispatchError::retry_after).max(after);
                    retry = Some(DispatchError::Retry { route: name.to_owned(), reason: e.to_string(), after: longer });
                }
                Err(e) => {
                    tracing::error!(route = name, error = %e, "route failed permanently; not retried");
                    self.activity
                        .record(
                            "dispatcher",
                            Level::Error,
                            format!("route {name} on {}: {e} (not retried)", event.kind),
                            Some(&event.id),
                        )
                        .await;
                    self.store.set(&key, "failed", Some(DONE_TTL)).await?;
                }
            }
        }
        retry.map_or(Ok(()), Err)
    }

    /// [`Dispatcher::process`] in its own span carrying the event id, with a panic contained
    /// to this record.
    pub async fn process_isolated(&self, message_id: &str, body: &str) -> Result<Event, DispatchError> {
        let event_id = peek_id(body).unwrap_or_default();
        let span = tracing::info_span!("record", %message_id, %event_id);
        let outcome = AssertUnwindSafe(self.process(body)).catch_unwind().instrument(span.clone()).await;
        let _enter = span.enter();
        match outcome {
            Ok(Ok((event, outcome))) => {
                match outcome {
                    Outcome::Dispatched => tracing::info!(topic = %event.kind, "event dispatched"),
                    Outcome::AlreadyDone => tracing::info!(topic = %event.kind, "event already done; skipped"),
                }
                Ok(event)
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "record failed; it will be retried");
                Err(error)
            }
            Err(_) => {
                tracing::error!("record processing panicked; it will be retried");
                Err(DispatchError::Panicked)
            }
        }
    }
}

/// The event id of a record, for log context even when the record is malformed.
fn peek_id(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_str::<Id>(body).ok().map(|i| i.id)
}

/// The local runner's dispatcher: receive from the queue until `shutdown` turns true, then
/// finish the batch in hand (drain) and return.
pub async fn run_loop(queue: Arc<dyn WorkQueue>, dispatcher: Dispatcher, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let batch = tokio::select! {
            r = queue.receive(10, Duration::from_secs(1)) => r,
            _ = shutdown.changed() => return,
        };
        let batch: Vec<QueueMessage> = match batch {
            Ok(b) => {
                backoff = Duration::from_millis(100);
                b
            }
            Err(error) => {
                tracing::warn!(%error, "queue receive failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let work = batch.iter().map(|msg| settle(queue.as_ref(), &dispatcher, msg));
        futures_util::future::join_all(work).await;
    }
}

/// Process one message and tell the queue: delete on success, delay on a requested retry.
pub async fn settle(queue: &dyn WorkQueue, dispatcher: &Dispatcher, msg: &QueueMessage) -> bool {
    match dispatcher.process_isolated(&msg.id, &msg.body).await {
        Ok(_) => {
            if let Err(error) = queue.delete(&msg.receipt).await {
                tracing::warn!(%error, message_id = %msg.id, "could not delete a processed record; it will be seen again");
            }
            true
        }
        Err(e) => {
            delay_retry(queue, msg, &e).await;
            false
        }
    }
}

/// When a failed record asked for a delay (a rate limit's retry-after), hide it that long.
pub async fn delay_retry(queue: &dyn WorkQueue, msg: &QueueMessage, error: &DispatchError) {
    if let Some(after) = error.retry_after()
        && let Err(e) = queue.retry_after(&msg.receipt, after).await
    {
        tracing::warn!(error = %e, message_id = %msg.id, "could not delay the record's retry");
    }
}
