//! The bus bridge: what the platform publishes on Redis (pub/sub, and the inbox stream)
//! enters the application through [`Ingest::bus`] and the work queue, like any webhook. Routes
//! run only in the dispatcher, so every guarantee it gives holds for bus events too.

use crate::backends::bus::{EventBus, Heard, Inbox, SubscriptionId, raw_handler};
use crate::backends::store::{Store, Write};
use crate::config::BridgeConfig;
use crate::engine::ingest::{Accepted, BusMessage, FromBus, Ingest, IngestError};
use crate::observe::health::BRIDGE_HEARTBEAT;
use crate::observe::metrics::{BRIDGE_ENQUEUED, BRIDGE_HEARD, BRIDGE_REFUSED, Metrics};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the bridge writes its counts.
const FLUSH: Duration = Duration::from_secs(1);
/// How often (in flushes) it says it is alive.
const HEARTBEAT_EVERY: u32 = 10;
/// Heard messages taken into one batch, at most: what arrived while the batches before it
/// were in flight, so a quiet bus sends each event at once and a busy one fills
/// `SendMessageBatch` requests (five of ten entries here).
const BATCH: usize = 50;
/// Batches handled at once: each is a claim per message and its sends, round trips worth
/// overlapping.
const BATCHES_IN_FLIGHT: usize = 4;
/// Inbox entries read at once.
const INBOX_BATCH: usize = 100;
/// How long the inbox is left when it had nothing.
const INBOX_IDLE: Duration = Duration::from_millis(100);
/// How long a heard message waits for the queue to come back before it is given up.
const ENQUEUE_PATIENCE: Duration = Duration::from_secs(5);

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub heard: u64,
    pub enqueued: u64,
    /// Heard before (another bridge queued it, or it was heard twice): not queued again.
    pub duplicates: u64,
    /// The dispatcher's republications of events it handled: not queued again.
    pub relayed: u64,
    pub refused: u64,
    /// Not queued: the queue stayed down (pub/sub), or left pending for a retry (inbox).
    pub failed: u64,
    /// Of those heard, how many came from the inbox stream.
    pub from_inbox: u64,
}

#[derive(Debug, Default)]
struct Tally {
    report: Report,
    /// (metric, topic, reason) → count since the last flush.
    counts: BTreeMap<(&'static str, String, &'static str), i64>,
}

#[derive(Debug, Clone)]
pub struct Bridge {
    bus: Arc<dyn EventBus>,
    inbox: Option<Arc<dyn Inbox>>,
    ingest: Ingest,
    store: Arc<dyn Store>,
    metrics: Metrics,
    config: BridgeConfig,
    /// Topics a counter names as they are (the routes' exact topics); others are folded.
    named: Arc<[String]>,
}

impl Bridge {
    pub fn new(
        bus: Arc<dyn EventBus>,
        inbox: Option<Arc<dyn Inbox>>,
        ingest: Ingest,
        store: Arc<dyn Store>,
        config: BridgeConfig,
    ) -> Self {
        Self { metrics: Metrics::new(store.clone()), bus, inbox, ingest, store, config, named: Arc::new([]) }
    }

    /// Count these topics under their own names (the routes' exact topics).
    pub fn with_named_topics(self, named: Vec<String>) -> Self {
        Self { named: named.into(), ..self }
    }

    /// The patterns it subscribes to, and the inbox it reads (the runner's banner).
    pub fn describe(&self) -> (Vec<String>, Option<String>) {
        (self.config.subscribe.clone(), self.inbox.as_ref().map(|i| i.name().to_owned()))
    }

    /// One Lambda invocation: listen for the configured time.
    pub async fn run_for_configured(&self) -> Report {
        self.run(tokio::time::sleep(self.config.listen)).await
    }

    /// Listen until `stop` completes, then finish what is in hand and report.
    pub async fn run(&self, stop: impl Future<Output = ()>) -> Report {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (tx, rx) = mpsc::unbounded_channel::<Heard>();
        let (quit_tx, quit) = tokio::sync::watch::channel(false);
        let subscriptions: Mutex<Vec<SubscriptionId>> = Mutex::default();
        let consumer = format!("bridge-{}", uuid::Uuid::new_v4());
        let subscribing = self.subscribe_all(tx, quit.clone(), &subscriptions);
        let heard = self.hear(rx, &tally);
        let inbox = self.read_inbox(&consumer, quit.clone(), &tally);
        let beat = self.heartbeat(quit.clone(), &tally);
        let stopping = async {
            stop.await;
            // Stop hearing first: what was heard is still handled. The flag is raised under
            // the lock, so a subscription confirmed from now on is not kept (see subscribe_all).
            let ids = {
                let mut ids = subscriptions.lock().unwrap_or_else(|p| p.into_inner());
                let _ = quit_tx.send(true);
                std::mem::take(&mut *ids)
            };
            for id in ids {
                let _ = self.bus.unsubscribe(id).await;
            }
        };
        tokio::join!(stopping, subscribing, heard, inbox, beat);
        if let Some(inbox) = &self.inbox
            && let Err(error) = inbox.leave(&consumer).await
        {
            tracing::debug!(%error, "could not leave the inbox's consumer group");
        }
        self.flush(&tally).await;
        let report = tally.lock().unwrap_or_else(|p| p.into_inner()).report.clone();
        tracing::info!(?report, "bus bridge run");
        report
    }

    /// Subscribe to every pattern, retrying the ones Redis refuses until `quit`. Each handler
    /// only hands the message on: the subscription's own order and speed are the bus's. The
    /// handlers hold the only senders, so hearing ends once they are all unsubscribed.
    async fn subscribe_all(
        &self,
        tx: mpsc::UnboundedSender<Heard>,
        mut quit: tokio::sync::watch::Receiver<bool>,
        ids: &Mutex<Vec<SubscriptionId>>,
    ) {
        let mut left: Vec<String> = self.config.subscribe.clone();
        let mut backoff = Duration::from_millis(100);
        while !left.is_empty() && !*quit.borrow() {
            let mut still = Vec::new();
            for pattern in left {
                let tx = tx.clone();
                let handler = raw_handler(move |heard| {
                    let _ = tx.send(heard);
                    async { Ok(()) }
                });
                match self.bus.subscribe_raw(&pattern, handler).await {
                    Ok(id) => {
                        let late = {
                            let mut ids = ids.lock().unwrap_or_else(|p| p.into_inner());
                            let late = *quit.borrow();
                            if !late {
                                ids.push(id);
                            }
                            late
                        };
                        if late {
                            let _ = self.bus.unsubscribe(id).await;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, %pattern, "bus subscribe failed; retrying");
                        still.push(pattern);
                    }
                }
            }
            left = still;
            if !left.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = quit.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
        if !*quit.borrow() {
            tracing::info!(patterns = ?self.config.subscribe, "bus bridge listening");
        }
    }

    /// Handle every heard message, in batches of what has arrived, until the subscriptions
    /// are gone.
    async fn hear(&self, mut rx: mpsc::UnboundedReceiver<Heard>, tally: &Mutex<Tally>) {
        let mut in_flight = FuturesUnordered::new();
        loop {
            tokio::select! {
                heard = rx.recv(), if in_flight.len() < BATCHES_IN_FLIGHT => match heard {
                    Some(first) => {
                        let mut batch = vec![first];
                        while batch.len() < BATCH && let Ok(next) = rx.try_recv() {
                            batch.push(next);
                        }
                        in_flight.push(self.take(batch, tally));
                    }
                    None => break,
                },
                Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            }
        }
        while in_flight.next().await.is_some() {}
    }

    /// Pub/sub messages into the queue. A message whose enqueue failed is tried again for a
    /// few seconds (the queue coming back): a PUBLISH is not sent again.
    async fn take(&self, mut batch: Vec<Heard>, tally: &Mutex<Tally>) {
        let mut backoff = Duration::from_millis(50);
        let started = tokio::time::Instant::now();
        loop {
            let messages: Vec<BusMessage<'_>> =
                batch.iter().map(|h| BusMessage { channel: Some(&h.channel), payload: &h.payload }).collect();
            let outcomes = self.ingest.bus(&messages, &self.config.subscribe).await;
            drop(messages);
            let patient = started.elapsed() < ENQUEUE_PATIENCE;
            let mut again = Vec::new();
            for (heard, outcome) in batch.into_iter().zip(outcomes) {
                match outcome {
                    Ok(outcome) => count(tally, &outcome, false),
                    Err(error) if patient => {
                        tracing::debug!(%error, "queue unavailable; retrying a heard event");
                        again.push(heard);
                    }
                    Err(error) => lost(tally, &heard.channel, &error),
                }
            }
            if again.is_empty() {
                return;
            }
            batch = again;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// Read the inbox until `quit`; acknowledge each entry once its own record is queued (or
    /// it was refused, or relayed). An entry whose enqueue failed stays pending, and is
    /// claimed again later.
    async fn read_inbox(&self, consumer: &str, mut quit: tokio::sync::watch::Receiver<bool>, tally: &Mutex<Tally>) {
        let Some(inbox) = &self.inbox else { return };
        let mut backoff = INBOX_IDLE;
        while !*quit.borrow() {
            let entries = match inbox.read(consumer, INBOX_BATCH).await {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::warn!(%error, inbox = inbox.name(), "inbox read failed; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    Vec::new()
                }
            };
            if entries.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = quit.changed() => {}
                }
                continue;
            }
            backoff = INBOX_IDLE;
            let messages: Vec<BusMessage<'_>> =
                entries.iter().map(|e| BusMessage { channel: e.topic.as_deref(), payload: &e.payload }).collect();
            let outcomes = self.ingest.bus(&messages, &self.config.subscribe).await;
            let mut done = Vec::with_capacity(outcomes.len());
            for (entry, outcome) in entries.iter().zip(outcomes) {
                match outcome {
                    Ok(outcome) => {
                        count(tally, &outcome, true);
                        done.push(entry.id.clone());
                    }
                    Err(error) => lost(tally, entry.topic.as_deref().unwrap_or("(inbox)"), &error),
                }
            }
            if let Err(error) = inbox.ack(&done).await {
                // Queued but still pending: claimed again later, and then a duplicate.
                tracing::warn!(%error, entries = done.len(), "inbox acknowledge failed");
            }
        }
    }

    /// Write the counts every [`FLUSH`], and say it is alive now and every
    /// [`HEARTBEAT_EVERY`] flushes.
    async fn heartbeat(&self, mut quit: tokio::sync::watch::Receiver<bool>, tally: &Mutex<Tally>) {
        for tick in 0u32.. {
            if tick % HEARTBEAT_EVERY == 0 {
                let now = chrono::Utc::now().timestamp_millis().to_string();
                let beat = Write::Set { key: BRIDGE_HEARTBEAT.into(), value: now, ttl: Some(Duration::from_secs(600)) };
                if let Err(error) = self.store.apply(&[beat]).await {
                    tracing::warn!(%error, "bus bridge heartbeat not written");
                }
            }
            self.flush(tally).await;
            tokio::select! {
                _ = tokio::time::sleep(FLUSH) => {}
                _ = quit.changed() => return,
            }
        }
    }

    /// A counter's `topic` label: a route's or a subscription's exact topic, and `(inbox)` (an
    /// entry without one), keep their names; what the platform, or anyone on the bus, makes up
    /// is folded (observe::metrics).
    fn label(&self, topic: &str) -> String {
        let named = |t: &str| t == "(inbox)" || self.named.iter().chain(&self.config.subscribe).any(|n| n == t);
        crate::observe::metrics::topic_label(topic, false, &named).into_owned()
    }

    async fn flush(&self, tally: &Mutex<Tally>) {
        let counts = std::mem::take(&mut tally.lock().unwrap_or_else(|p| p.into_inner()).counts);
        if counts.is_empty() {
            return;
        }
        // Folded labels can meet: add them up before writing.
        let mut folded: BTreeMap<(&'static str, String, &'static str), i64> = BTreeMap::new();
        for ((metric, topic, reason), by) in counts {
            *folded.entry((metric, self.label(&topic), reason)).or_default() += by;
        }
        let writes: Vec<Write> = folded
            .iter()
            .map(|((metric, topic, reason), by)| {
                let labels: &[(&str, &str)] =
                    if reason.is_empty() { &[("topic", topic)] } else { &[("topic", topic), ("reason", reason)] };
                self.metrics.op_by(metric, labels, *by)
            })
            .collect();
        if let Err(error) = self.store.apply(&writes).await {
            tracing::debug!(%error, "bus bridge metrics not recorded");
        }
    }
}

fn bump(tally: &mut Tally, metric: &'static str, topic: &str, reason: &'static str) {
    *tally.counts.entry((metric, topic.to_owned(), reason)).or_default() += 1;
}

fn count(tally: &Mutex<Tally>, outcome: &FromBus, inbox: bool) {
    let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
    let tally = &mut *tally;
    match outcome {
        FromBus::Relayed { .. } => {
            tally.report.relayed += 1;
            return;
        }
        FromBus::Refused { topic, refusal } => {
            tally.report.refused += 1;
            bump(tally, BRIDGE_HEARD, topic, "");
            bump(tally, BRIDGE_REFUSED, topic, refusal.reason());
        }
        FromBus::Accepted(Accepted::Queued { kind, .. }) => {
            tally.report.enqueued += 1;
            bump(tally, BRIDGE_HEARD, kind, "");
            bump(tally, BRIDGE_ENQUEUED, kind, "");
        }
        FromBus::Accepted(Accepted::Duplicate { kind, .. }) => {
            tally.report.duplicates += 1;
            bump(tally, BRIDGE_HEARD, kind, "");
        }
        FromBus::Accepted(Accepted::Reply(_)) => {}
    }
    tally.report.heard += 1;
    tally.report.from_inbox += u64::from(inbox);
}

fn lost(tally: &Mutex<Tally>, topic: &str, error: &IngestError) {
    tracing::error!(%topic, %error, "a bus event could not be queued");
    let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
    tally.report.failed += 1;
    tally.report.heard += 1;
    bump(&mut tally, BRIDGE_HEARD, topic, "");
    bump(&mut tally, BRIDGE_REFUSED, topic, "queue_unavailable");
}
