//! The dispatcher core, shared by the SQS-triggered Lambda and the local runner's loop:
//! per record, resolve a claim check, skip events already done, publish on the bus, run the
//! routes, and only then mark the event done.

use crate::backends::bus::EventBus;
use crate::backends::error::BackendError;
use crate::backends::queue::claim::{CLAIM_TTL, Claim, ClaimError};
use crate::backends::queue::{QueueMessage, RetrySchedule, WorkQueue};
use crate::backends::store::{Store, Write};
use crate::engine::routes::{Routes, Rule, derived_id};
use crate::model::event::{Event, EventHead};
use crate::model::integration::IntegrationError;
use crate::observe::activity::{ActivityLog, Level};
use crate::observe::metrics::{self, Metrics};
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

/// The longest a record is hidden before its retry: SQS's cap on a visibility timeout.
pub const MAX_RETRY_DELAY: Duration = crate::backends::queue::MAX_DELAY;

impl DispatchError {
    /// How long the record should wait before its next receive, after receive number
    /// `receive_count` failed: what the remote asked for, else `schedule`'s step
    /// ([`RetrySchedule::after`]). `None` for a record that cannot succeed by waiting (not an
    /// event, a lost claim, a panic): it waits out the queue's visibility timeout.
    pub fn retry_delay(&self, receive_count: u32, schedule: &RetrySchedule) -> Option<Duration> {
        match self {
            Self::Retry { after: Some(after), .. } => Some((*after).min(MAX_RETRY_DELAY)),
            Self::Retry { after: None, .. } | Self::Backend(_) | Self::Claim(ClaimError::Backend(_)) => {
                Some(schedule.after(receive_count))
            }
            Self::Malformed(_) | Self::Claim(_) | Self::Panicked => None,
        }
    }

    /// The delay the record should wait before its next attempt, when one was asked for;
    /// never more than [`MAX_RETRY_DELAY`], whatever an integration passed on.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retry { after, .. } => after.map(|a| a.min(MAX_RETRY_DELAY)),
            _ => None,
        }
    }
}

/// What became of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub id: String,
    pub topic: String,
    pub outcome: Outcome,
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
    /// Where its records come from: a retry's delay is set there.
    queue: Arc<dyn WorkQueue>,
    routes: Arc<Routes>,
    metrics: Metrics,
    retry: RetrySchedule,
}

/// `integration.webhook_received` for a record a webhook accepted (a `github.*` or `slack.*`
/// event from that source): the source, the delivery or event id, the original event type
/// (the topic without the source's prefix: `pull_request.opened`, `event.app_mention`) and
/// the topic. Its id derives from the webhook's, so a retried record derives the same one.
fn webhook_received(head: &EventHead<'_>) -> Option<String> {
    let source = head.source.as_ref();
    let event_type = head.kind.strip_prefix(source)?.strip_prefix('.')?;
    if !matches!(source, "github" | "slack") {
        return None;
    }
    let data = serde_json::json!({"source": source, "id": head.id, "event_type": event_type, "topic": head.kind});
    let data = data.as_object().cloned().unwrap_or_default();
    let topic = crate::model::event::topics::INTEGRATION_WEBHOOK_RECEIVED;
    Some(Event::identified(derived_id(&head.id, topic), topic, "aetherium", data).to_json())
}

/// An event's keys all carry its id as one hash tag, `evt:{<id>}:...`, so that on a Redis
/// cluster they share a slot and its route marks and done key change in one MULTI. The id is
/// escaped (`%`, `{`, `}`, `:`), so no id, whatever its characters, can close the tag early
/// or spell another event's key.
fn event_key(event_id: &str, suffix: std::fmt::Arguments<'_>) -> String {
    let mut key = String::with_capacity(event_id.len() + 16);
    key.push_str("evt:{");
    for c in event_id.chars() {
        match c {
            '%' => key.push_str("%25"),
            ':' => key.push_str("%3A"),
            '{' => key.push_str("%7B"),
            '}' => key.push_str("%7D"),
            c => key.push(c),
        }
    }
    key.push_str("}:");
    std::fmt::Write::write_fmt(&mut key, suffix).expect("writing to a String");
    key
}

fn done_key(event_id: &str) -> String {
    event_key(event_id, format_args!("done"))
}

/// One key per (event, route): `running` while a dispatcher holds it (the lock), then `done`
/// or `failed`, so a retry or a second dispatcher claims and checks it in one step.
fn route_key(event_id: &str, action: &str) -> String {
    event_key(event_id, format_args!("route:{action}"))
}

const RUNNING: &str = "running";

/// How long one dispatcher holds the right to run a route for an event: the dispatcher
/// function's timeout (template.yaml), past which its holder cannot be running any more. A
/// claim whose release could not be written (Redis failing mid-record, or a cluster whose
/// healthy nodes keep it while another restarts) holds its route back no longer than that.
const ROUTE_LOCK_TTL: Duration = Duration::from_secs(60);
/// When another dispatcher holds the lock, retry after this long.
const LOCKED_RETRY: Duration = Duration::from_secs(10);

impl Dispatcher {
    pub fn new(bus: Arc<dyn EventBus>, store: Arc<dyn Store>, queue: Arc<dyn WorkQueue>, routes: Routes) -> Self {
        let metrics = Metrics::new(store.clone());
        Self { metrics, bus, store, queue, routes: Arc::new(routes), retry: RetrySchedule::default() }
    }

    /// The delays of a record's retries (`queue.retry_seconds`); the default's otherwise.
    pub fn with_retry_schedule(self, retry: RetrySchedule) -> Self {
        Self { retry, ..self }
    }

    /// A counter's `topic` label: a route's exact topic keeps its name (observe::metrics).
    fn topic_label<'a>(&self, topic: &'a str) -> std::borrow::Cow<'a, str> {
        metrics::topic_label(topic, true, &|t| self.routes.rules().iter().any(|r| r.on == t))
    }

    /// The routes it runs, in order (the local runner's banner lists them).
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// Process one queue message. An error leaves the record to be retried. A claim check
    /// is deleted once its event is dispatched: parked records do not outlive their use.
    pub async fn process(&self, message: &str) -> Result<Processed, DispatchError> {
        let Some(claim) = Claim::parse(message)? else { return self.process_record(message).await };
        let Some(record) = self.store.get(&claim.key).await? else {
            // Deleted after its event was dispatched, and this is a late redelivery of the
            // message (the queue was not told in time): the event's done mark says so.
            if let Some(id) = &claim.event_id
                && self.store.get(&done_key(id)).await?.is_some()
            {
                let topic = claim.kind.clone().unwrap_or_default();
                return Ok(Processed { id: id.clone(), topic, outcome: Outcome::AlreadyDone });
            }
            return Err(ClaimError::Missing(claim.key).into());
        };
        let processed = match self.process_record(&record).await {
            Ok(processed) => processed,
            Err(e) => {
                // The message goes back to the queue, maybe to the dead-letter queue and a
                // redrive days later: its record must outlive that ([`CLAIM_TTL`]).
                if let Err(error) = self.store.set(&claim.key, &record, Some(CLAIM_TTL)).await {
                    tracing::warn!(%error, "could not renew a failed record's claim check");
                }
                return Err(e);
            }
        };
        if let Err(error) = self.store.delete(&claim.key).await {
            tracing::warn!(%error, "could not delete a dispatched claim check; it expires by itself");
        }
        Ok(processed)
    }

    async fn process_record(&self, record: &str) -> Result<Processed, DispatchError> {
        // Routing needs only the envelope; the payload is built only when a route reads it.
        let head = match EventHead::from_json(record) {
            Ok(head) => head,
            // Well-formed JSON that a full parse refuses (a lone surrogate, `1e400`) passes the
            // webhooks, which read only what they route on: repair it rather than dead-letter
            // a delivery the sender was told we accepted.
            Err(e) => match crate::model::json_repair::repair(record) {
                Some(repaired) => {
                    tracing::warn!("record repaired: a lone surrogate escape or an out-of-range number was replaced");
                    return Box::pin(self.process_record(&repaired)).await;
                }
                None => return Err(DispatchError::Malformed(e.to_string())),
            },
        };
        tracing::Span::current().record("event_id", &*head.id);
        let done = |outcome| Processed { id: head.id.to_string(), topic: head.kind.to_string(), outcome };
        if self.store.get(&done_key(&head.id)).await?.is_some() {
            return Ok(done(Outcome::AlreadyDone));
        }
        // Marked as relayed: a bridge listening on the bus must not queue it again.
        self.bus.publish_json(&head.kind, &crate::model::event::relayed(record)).await?;
        // What the routes did, the counters and the activity lines are written together: one
        // round trip per event rather than one per write.
        let mut writes = vec![
            self.metrics.op(metrics::PUBLISHED, &[("topic", &self.topic_label(&head.kind))]),
            ActivityLog::op(
                "dispatcher",
                Level::Debug,
                format!("published on the bus as {}", head.kind),
                Some(&head.id),
            ),
        ];
        let rules: Vec<&Rule> = self.routes.matching(&head.kind).collect();
        let routed = if rules.is_empty() {
            Ok(())
        } else {
            let event = Event::from_json(record).map_err(|e| DispatchError::Malformed(e.to_string()))?;
            self.run_routes(&event, &rules, &mut writes).await
        };
        // A webhook's arrival is an event of its own; its routes run (once, under its own id)
        // before the webhook is marked done, so a failure there retries the record.
        let routed = match (routed, webhook_received(&head)) {
            (Ok(()), Some(arrival)) => Box::pin(self.process_record(&arrival)).await.map(drop),
            (routed, _) => routed,
        };
        if routed.is_ok() {
            writes.push(Write::Set { key: done_key(&head.id), value: "1".into(), ttl: Some(DONE_TTL) });
        }
        self.store.apply(&writes).await?;
        routed.map(|()| done(Outcome::Dispatched))
    }

    /// Every matching route; each one that succeeds is marked so a retry of the record skips
    /// it. Permanent failures are logged and not retried; transient ones fail the record.
    async fn run_routes(&self, event: &Event, rules: &[&Rule], writes: &mut Vec<Write>) -> Result<(), DispatchError> {
        let mut retry: Option<DispatchError> = None;
        for (i, rule) in rules.iter().enumerate() {
            let name = rule.action.name();
            let key = route_key(&event.id, name);
            match self.store.set_if_absent_or_get(&key, RUNNING, ROUTE_LOCK_TTL).await?.as_deref() {
                None => {}
                // Two dispatchers holding the same record (a redelivery while the first still
                // works) must not both run the route: the second retries later.
                Some(RUNNING) => {
                    tracing::info!(route = name, "another dispatcher is running this route; retrying later");
                    let longer = retry.as_ref().and_then(DispatchError::retry_after).max(Some(LOCKED_RETRY));
                    retry = Some(DispatchError::Retry {
                        route: name.to_owned(),
                        reason: "locked by another dispatcher".into(),
                        after: longer,
                    });
                    continue;
                }
                Some(_) => continue,
            }
            let outcome = match AssertUnwindSafe(rule.action.run(event)).catch_unwind().await {
                Ok(outcome) => outcome,
                Err(panic) => {
                    // Release this route and keep what earlier ones did, then fail the record
                    // like any panic.
                    writes.push(Write::Delete { key });
                    if let Err(error) = self.store.apply(&std::mem::take(writes)).await {
                        tracing::warn!(route = name, %error, "could not release the route; it expires by itself");
                    }
                    std::panic::resume_unwind(panic)
                }
            };
            let what = format!("route {name} on {}", event.kind);
            let id = Some(event.id.as_str());
            match outcome {
                Ok(()) => {
                    tracing::info!(route = name, "route succeeded");
                    writes.push(Write::Set { key, value: "done".into(), ttl: Some(DONE_TTL) });
                    if let Some(integration) = rule.action.integration() {
                        writes.push(self.metrics.op(
                            metrics::CONSUMED,
                            &[("topic", &self.topic_label(&event.kind)), ("integration", integration)],
                        ));
                    }
                    writes.push(ActivityLog::op("dispatcher", Level::Debug, format!("{what}: ok"), id));
                }
                Err(e @ IntegrationError::Transient { .. }) => {
                    tracing::warn!(route = name, error = %e, "route failed; the record will be retried");
                    writes.push(Write::Delete { key });
                    writes.push(ActivityLog::op("dispatcher", Level::Warn, format!("{what}: {e} (will retry)"), id));
                    let after = match &e {
                        IntegrationError::Transient { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let longer = retry.as_ref().and_then(DispatchError::retry_after).max(after);
                    retry = Some(DispatchError::Retry { route: name.to_owned(), reason: e.to_string(), after: longer });
                }
                Err(e) => {
                    tracing::error!(route = name, error = %e, "route failed permanently; not retried");
                    writes.push(Write::Set { key, value: "failed".into(), ttl: Some(DONE_TTL) });
                    writes.push(ActivityLog::op("dispatcher", Level::Error, format!("{what}: {e} (not retried)"), id));
                }
            }
            // The route's key says `running` until this is written: write it before the next
            // route runs; after the last one, the event's own writes carry it.
            if i + 1 < rules.len() {
                self.store.apply(&std::mem::take(writes)).await?;
            }
        }
        retry.map_or(Ok(()), Err)
    }

    /// [`Dispatcher::process`] in its own span carrying the event id, with a panic contained
    /// to this record.
    pub async fn process_isolated(&self, message_id: &str, body: &str) -> Result<Processed, DispatchError> {
        // The event id joins the span once the record is read (a claim check is resolved first).
        let span = tracing::info_span!("record", %message_id, event_id = tracing::field::Empty);
        let outcome = AssertUnwindSafe(self.process(body)).catch_unwind().instrument(span.clone()).await;
        let _enter = span.enter();
        match outcome {
            Ok(Ok(processed)) => {
                match processed.outcome {
                    Outcome::Dispatched => tracing::info!(topic = %processed.topic, "event dispatched"),
                    Outcome::AlreadyDone => tracing::info!(topic = %processed.topic, "event already done; skipped"),
                }
                Ok(processed)
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

impl Dispatcher {
    /// The local runner's dispatcher: receive from the queue until `shutdown` turns true,
    /// then finish the batch in hand (drain) and return.
    pub async fn run_loop(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let batch = tokio::select! {
                r = self.queue.receive(10, Duration::from_secs(1)) => r,
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
            futures_util::future::join_all(batch.iter().map(|msg| self.settle(msg))).await;
        }
    }

    /// Process one message and tell the queue: delete on success, delay on a requested retry.
    pub async fn settle(&self, msg: &QueueMessage) -> bool {
        let ok = self.process_delivered(msg).await;
        if ok && let Err(error) = self.queue.delete(&msg.receipt).await {
            tracing::warn!(%error, message_id = %msg.id, "could not delete a processed record; it will be seen again");
        }
        ok
    }

    /// Process one message the queue delivered, delaying its retry ([`Self::delay_retry`]).
    /// Whether it succeeded; deleting it is the caller's (Lambda's event source mapping
    /// deletes the batch's successes itself).
    pub async fn process_delivered(&self, msg: &QueueMessage) -> bool {
        match self.process_isolated(&msg.id, &msg.body).await {
            Ok(_) => true,
            Err(error) => {
                self.delay_retry(msg, &error).await;
                false
            }
        }
    }

    /// Hide a failed record until its retry ([`DispatchError::retry_delay`]): a rate limit's
    /// Retry-After, or the schedule's step for its receive count, rather than the queue's
    /// visibility timeout (360 s as deployed).
    pub async fn delay_retry(&self, msg: &QueueMessage, error: &DispatchError) {
        let Some(after) = error.retry_delay(msg.receive_count, &self.retry) else { return };
        tracing::info!(message_id = %msg.id, receives = msg.receive_count, delay_ms = after.as_millis() as u64, "record retried later");
        if let Err(e) = self.queue.retry_after(&msg.receipt, after).await {
            tracing::warn!(error = %e, message_id = %msg.id, "could not delay the record's retry");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{done_key, route_key};
    use crate::backends::redis_conn::hash_tag;

    #[test]
    fn an_events_keys_share_one_hash_tag_and_no_id_reaches_another_events_keys() {
        assert_eq!(done_key("evt-1"), "evt:{evt-1}:done");
        assert_eq!(route_key("evt-1", "github.task_completed"), "evt:{evt-1}:route:github.task_completed");
        assert_eq!(hash_tag(&done_key("a:b")), hash_tag(&route_key("a:b", "r")));
        // A derived id used to be `<source>:<route>`, whose done key was the source's route mark.
        assert_ne!(done_key("src:r"), route_key("src", "r"));
        for id in ["x}:route:r", "x{y}", "100%", "a%3Ab"] {
            let key = done_key(id);
            assert_eq!(key.matches('{').count(), 1, "{key}");
            assert_eq!(key.matches('}').count(), 1, "{key}");
        }
        assert_ne!(done_key("a%3Ab"), done_key("a:b"));
    }
}
