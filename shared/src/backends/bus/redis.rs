//! The Redis bus: `PUBLISH <topic> <event JSON>` plus an append to a capped stream of all
//! events; subscriptions over SUBSCRIBE/PSUBSCRIBE that survive a Redis restart. On a
//! cluster, classic pub/sub is cluster-wide: a subscriber on any node hears every PUBLISH.

use super::delivery::Subscription;
use super::{EventBus, Heard, RawHandler, SubscriptionId};
use crate::backends::error::BackendError;
use crate::backends::redis_conn::{Conn, RedisHandle, Shape};
use async_trait::async_trait;
use futures_util::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The stream every published event is appended to, for replay.
/// The hash tag keeps it on one slot under any future multi-key use on a cluster.
pub const DEFAULT_STREAM_KEY: &str = "aetherium:{events}";
pub const DEFAULT_STREAM_CAP: usize = 10_000;
/// The most an entry of the replay stream holds: an event up to this size whole, a larger
/// one as its envelope only. 10,000 entries then stay under 160 MiB, where whole 5 MB
/// webhook payloads could reach 50 GB.
pub const STREAM_ENTRY_MAX_BYTES: usize = 16 * 1024;

/// What the replay stream keeps of an event: the event when small, else its envelope (id,
/// type, timestamp, source) with empty `data` and `data_omitted` (the event's size in
/// bytes), which is still an event to a reader. Pub/sub subscribers get the whole event.
pub fn stream_entry(json: &str) -> std::borrow::Cow<'_, str> {
    if json.len() <= STREAM_ENTRY_MAX_BYTES {
        return std::borrow::Cow::Borrowed(json);
    }
    let envelope = match crate::model::event::EventHead::from_json(json) {
        Ok(head) => serde_json::json!({
            "id": head.id,
            "type": head.kind,
            "timestamp": head.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "source": head.source,
            "data": {},
            "data_omitted": json.len(),
        }),
        Err(_) => serde_json::json!({ "data_omitted": json.len() }),
    };
    std::borrow::Cow::Owned(envelope.to_string())
}
/// How long `subscribe` waits for Redis to confirm before giving up.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

type Subscriptions = Arc<Mutex<Vec<Subscription>>>;

#[derive(Debug)]
enum Control {
    Add { pattern: String, glob: bool, ack: oneshot::Sender<Result<(), BackendError>> },
    Remove { pattern: String, glob: bool },
}

#[derive(Debug)]
pub struct RedisBus {
    redis: RedisHandle,
    stream_key: String,
    stream_cap: usize,
    subs: Subscriptions,
    // The listener (one pub/sub connection) starts at the first subscribe: functions that
    // only publish never open it.
    listener: OnceLock<mpsc::UnboundedSender<Control>>,
    next_id: AtomicU64,
}

impl RedisBus {
    pub fn new(redis: RedisHandle) -> Self {
        Self::with_stream(redis, DEFAULT_STREAM_KEY, DEFAULT_STREAM_CAP)
    }

    pub fn with_stream(redis: RedisHandle, stream_key: &str, stream_cap: usize) -> Self {
        Self {
            redis,
            stream_key: stream_key.to_owned(),
            stream_cap,
            subs: Arc::default(),
            listener: OnceLock::new(),
            next_id: AtomicU64::new(0),
        }
    }

    fn control(&self) -> &mpsc::UnboundedSender<Control> {
        self.listener.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(listen(self.redis.clone(), self.subs.clone(), rx));
            tx
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscription>> {
        self.subs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remove a subscription; tell Redis when no other subscription needs its channel.
    fn remove(&self, id: SubscriptionId) -> bool {
        let mut subs = self.lock();
        let Some(pos) = subs.iter().position(|s| s.id == id) else { return false };
        let gone = subs.remove(pos);
        let still_needed = subs.iter().any(|s| s.pattern == gone.pattern && s.glob == gone.glob);
        drop(subs);
        if !still_needed {
            let _ = self.control().send(Control::Remove { pattern: gone.pattern, glob: gone.glob });
        }
        true
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish_json(&self, topic: &str, json: &str) -> Result<(), BackendError> {
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(topic).arg(json);
        let mut append = redis::cmd("XADD");
        append.arg(&self.stream_key).arg("MAXLEN").arg("~").arg(self.stream_cap).arg("*");
        append.arg("topic").arg(topic).arg("event").arg(stream_entry(json).as_ref());
        let conn = self.redis.conn().await?;
        if let Conn::Cluster(_) = conn {
            // The channel and the stream hash to different slots on different nodes; either
            // failing fails the publish, and the dispatcher's retry repeats it.
            let (published, appended) = tokio::join!(self.redis.query::<()>(&publish), self.redis.query::<()>(&append));
            return published.and(appended);
        }
        // One round trip. Standalone: MULTI/EXEC, so subscribers and the replay stream see
        // the same set of events. A single-shard cluster refuses a MULTI across slots, so
        // there the two commands are only pipelined.
        let mut pipe = redis::pipe();
        if !conn.cluster_mode() {
            pipe.atomic();
        }
        pipe.add_command(publish).ignore().add_command(append).ignore();
        self.redis.query_pipe(&pipe).await
    }

    async fn subscribe_raw(&self, pattern: &str, handler: RawHandler) -> Result<SubscriptionId, BackendError> {
        if pattern.is_empty() {
            return Err(BackendError::rejected("redis", "subscription pattern is empty"));
        }
        let id = SubscriptionId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let sub = Subscription::new(id, pattern, handler);
        let glob = sub.glob;
        self.lock().push(sub);

        let (ack, confirmed) = oneshot::channel();
        let sent = self.control().send(Control::Add { pattern: pattern.to_owned(), glob, ack });
        let outcome = match (sent, tokio::time::timeout(SUBSCRIBE_TIMEOUT, confirmed).await) {
            (Ok(()), Ok(Ok(result))) => result,
            (Ok(()), Err(_)) => Err(BackendError::Timeout { backend: "redis" }),
            _ => Err(BackendError::unavailable("redis", "pub/sub listener stopped")),
        };
        match outcome {
            Ok(()) => Ok(id),
            Err(e) => {
                self.remove(id);
                Err(e)
            }
        }
    }

    async fn unsubscribe(&self, id: SubscriptionId) -> Result<bool, BackendError> {
        Ok(self.remove(id))
    }

    async fn health(&self) -> Result<(), BackendError> {
        self.redis.query(&redis::cmd("PING")).await.map(|_: String| ())
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

/// The pub/sub connection's life: connect, (re)subscribe everything, deliver, and on loss
/// reconnect with backoff. On a cluster, reconnecting tries every node it has seen in turn,
/// so losing the node it listened on does not end the subscriptions. Ends when the bus is
/// dropped.
async fn listen(redis: RedisHandle, subs: Subscriptions, mut control: mpsc::UnboundedReceiver<Control>) {
    let mut backoff = Duration::from_millis(50);
    let mut reconnecting = false;
    let mut nodes = vec![redis.client().clone()];
    let mut attempt = 0usize;
    loop {
        let client = nodes[attempt % nodes.len()].clone();
        attempt += 1;
        // A Redis that accepts and never answers must not hold the listener forever.
        let connected =
            tokio::time::timeout(crate::backends::redis_conn::CONNECT_TIMEOUT * 2, client.get_async_pubsub())
                .await
                .unwrap_or_else(|_| Err(redis::RedisError::from((redis::ErrorKind::Io, "connect timed out"))));
        let (sink, mut stream) = match connected {
            Ok(pubsub) => pubsub.split(),
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "redis pub/sub connect failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                reconnecting = true;
                continue;
            }
        };
        if let Some(seen) = cluster_nodes(&redis).await {
            nodes = seen;
            attempt = 0;
        }
        let (channels, patterns) = {
            let subs = subs.lock().unwrap_or_else(|p| p.into_inner());
            let mut channels: Vec<String> = subs.iter().filter(|s| !s.glob).map(|s| s.pattern.clone()).collect();
            let mut patterns: Vec<String> = subs.iter().filter(|s| s.glob).map(|s| s.pattern.clone()).collect();
            channels.sort();
            channels.dedup();
            patterns.sort();
            patterns.dedup();
            (channels, patterns)
        };
        let mut resub = sink.clone();
        let restored = async {
            if !channels.is_empty() {
                resub.subscribe(&channels).await?;
            }
            if !patterns.is_empty() {
                resub.psubscribe(&patterns).await?;
            }
            Ok::<(), redis::RedisError>(())
        }
        .await;
        if let Err(error) = restored {
            tracing::warn!(%error, "redis resubscribe failed; reconnecting");
            tokio::time::sleep(backoff).await;
            continue;
        }
        if reconnecting {
            tracing::info!(
                channels = channels.len(),
                patterns = patterns.len(),
                "redis pub/sub reconnected and resubscribed"
            );
        }
        backoff = Duration::from_millis(50);
        reconnecting = true;

        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => deliver(&subs, &msg),
                    None => break,
                },
                ctl = control.recv() => match ctl {
                    None => return,
                    // Run un/subscribe beside the loop: their confirmations arrive on the
                    // connection this loop is reading.
                    Some(Control::Add { pattern, glob, ack }) => {
                        let mut sink = sink.clone();
                        tokio::spawn(async move {
                            let r = if glob { sink.psubscribe(&pattern).await } else { sink.subscribe(&pattern).await };
                            let _ = ack.send(r.map_err(BackendError::from));
                        });
                    }
                    Some(Control::Remove { pattern, glob }) => {
                        let mut sink = sink.clone();
                        tokio::spawn(async move {
                            let r = if glob { sink.punsubscribe(&pattern).await } else { sink.unsubscribe(&pattern).await };
                            if let Err(error) = r {
                                tracing::debug!(%error, "redis unsubscribe failed; the connection's next reset drops it");
                            }
                        });
                    }
                },
            }
        }
        tracing::warn!("redis pub/sub connection lost; reconnecting");
    }
}

fn deliver(subs: &Subscriptions, msg: &redis::Msg) {
    let heard = Heard { channel: msg.get_channel_name().into(), payload: msg.get_payload_bytes().into() };
    let pattern: Option<String> = if msg.from_pattern() { msg.get_pattern().ok() } else { None };
    let subs = subs.lock().unwrap_or_else(|p| p.into_inner());
    for sub in subs.iter() {
        let hit = match &pattern {
            Some(p) => sub.glob && &sub.pattern == p,
            None => !sub.glob && sub.pattern == *heard.channel,
        };
        if hit {
            sub.mailbox.deliver(heard.clone());
        }
    }
}

/// Every node of a cluster (masters and replicas), seed first, from `CLUSTER NODES`; `None`
/// when Redis is standalone or does not say.
async fn cluster_nodes(redis: &RedisHandle) -> Option<Vec<redis::Client>> {
    if redis.shape().await.ok()? == Shape::Standalone {
        return None;
    }
    let text: String = redis.query(redis::cmd("CLUSTER").arg("NODES")).await.ok()?;
    let mut nodes = vec![redis.client().clone()];
    for line in text.lines() {
        // `<id> <ip:port@cport[,hostname]> <flags> ...`; a node that failed has no address.
        let Some(addr) = line.split_whitespace().nth(1) else { continue };
        let addr = addr.split(['@', ',']).next().unwrap_or_default();
        let Some((host, port)) = addr.rsplit_once(':') else { continue };
        let (Ok(port), false) = (port.parse::<u16>(), host.is_empty()) else { continue };
        if let Ok(client) = redis.node_client(host, port) {
            nodes.push(client);
        }
    }
    Some(nodes)
}
