//! The durable way in: a Redis stream the platform appends events to (`XADD`), read by the
//! bridges as one consumer group. An entry stays pending with the bridge that read it until
//! that bridge acknowledges it, which it does only once the work queue holds the event; the
//! entries a dead bridge left pending are claimed by the next one after `claim_idle`.

use crate::backends::error::BackendError;
use crate::backends::redis_conn::RedisHandle;
use async_trait::async_trait;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamInfoConsumersReply, StreamReadReply};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The consumer group every bridge reads in.
pub const GROUP: &str = "aetherium-bridge";

/// One entry: `event` holds the event JSON; `topic`, when given, must agree with its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub topic: Option<String>,
    pub payload: Vec<u8>,
}

#[async_trait]
pub trait Inbox: Send + Sync + std::fmt::Debug {
    /// Up to `count` entries for `consumer`: first what other consumers left pending longer
    /// than the claim idle time, then entries no consumer has read.
    async fn read(&self, consumer: &str, count: usize) -> Result<Vec<Entry>, BackendError>;

    /// Done with these entries: acknowledged and removed, so the stream holds only unread
    /// and pending ones.
    async fn ack(&self, ids: &[String]) -> Result<(), BackendError>;

    /// `consumer` is done reading: it leaves the group when it holds nothing pending, and
    /// so do consumers idle an hour with nothing pending (bridges that died after their last
    /// entry was claimed), so the group does not grow by one consumer per run.
    async fn leave(&self, consumer: &str) -> Result<(), BackendError>;

    /// The stream's name, for logs and the banner.
    fn name(&self) -> &str;
}

/// Consumers idle this long with nothing pending are removed from the group.
const STALE_CONSUMER_MS: usize = 3_600_000;

#[derive(Debug)]
pub struct RedisInbox {
    redis: RedisHandle,
    stream: String,
    max_len: usize,
    claim_idle: Duration,
    grouped: AtomicBool,
    /// When (ms since the epoch) the pending entries were last swept for abandoned ones.
    swept_ms: AtomicU64,
}

impl RedisInbox {
    pub fn new(redis: RedisHandle, stream: &str, max_len: usize, claim_idle: Duration) -> Self {
        Self {
            redis,
            stream: stream.to_owned(),
            max_len,
            claim_idle,
            grouped: AtomicBool::new(false),
            swept_ms: AtomicU64::new(0),
        }
    }

    /// Create the group once, from the stream's start: what the platform appended before the
    /// first bridge ran is read too.
    async fn group(&self) -> Result<(), BackendError> {
        if self.grouped.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut create = redis::cmd("XGROUP");
        create.arg("CREATE").arg(&self.stream).arg(GROUP).arg("0").arg("MKSTREAM");
        match self.redis.query::<()>(&create).await {
            Ok(()) => {}
            Err(BackendError::Rejected { reason, .. }) if reason.contains("BUSYGROUP") => {}
            Err(e) if e.to_string().contains("BUSYGROUP") => {}
            Err(e) => return Err(e),
        }
        self.grouped.store(true, Ordering::Relaxed);
        Ok(())
    }

    async fn abandoned(&self, consumer: &str, count: usize) -> Result<Vec<StreamId>, BackendError> {
        let now = chrono::Utc::now().timestamp_millis().max(0) as u64;
        let idle = self.claim_idle.as_millis() as u64;
        // Nothing pending can be older than the idle time sooner than half of it from now.
        if now.saturating_sub(self.swept_ms.load(Ordering::Relaxed)) < idle / 2 {
            return Ok(Vec::new());
        }
        let mut claim = redis::cmd("XAUTOCLAIM");
        claim.arg(&self.stream).arg(GROUP).arg(consumer).arg(idle).arg("0-0").arg("COUNT").arg(count);
        let reply: StreamAutoClaimReply = self.redis.query(&claim).await?;
        if reply.claimed.len() < count {
            self.swept_ms.store(now, Ordering::Relaxed);
        }
        Ok(reply.claimed)
    }
}

fn entry(id: StreamId) -> Entry {
    let text = |name: &str| match id.map.get(name) {
        Some(redis::Value::BulkString(b)) => Some(b.clone()),
        Some(redis::Value::SimpleString(s)) => Some(s.clone().into_bytes()),
        _ => None,
    };
    let topic = text("topic").and_then(|t| String::from_utf8(t).ok());
    // An entry without `event` is an empty message: the bridge refuses it as not JSON.
    Entry { topic, payload: text("event").unwrap_or_default(), id: id.id }
}

#[async_trait]
impl Inbox for RedisInbox {
    async fn read(&self, consumer: &str, count: usize) -> Result<Vec<Entry>, BackendError> {
        self.group().await?;
        let mut entries: Vec<Entry> = self.abandoned(consumer, count).await?.into_iter().map(entry).collect();
        if entries.len() < count {
            let mut read = redis::cmd("XREADGROUP");
            read.arg("GROUP").arg(GROUP).arg(consumer).arg("COUNT").arg(count - entries.len());
            read.arg("STREAMS").arg(&self.stream).arg(">");
            let reply: Option<StreamReadReply> = self.redis.query(&read).await?;
            let fresh = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).map(entry);
            entries.extend(fresh);
        }
        Ok(entries)
    }

    async fn ack(&self, ids: &[String]) -> Result<(), BackendError> {
        if ids.is_empty() {
            return Ok(());
        }
        // One key, one slot: a pipeline is fine on a cluster. The trim keeps a stream that
        // producers append to without MAXLEN bounded while a bridge runs.
        let mut pipe = redis::pipe();
        pipe.cmd("XACK").arg(&self.stream).arg(GROUP).arg(ids).ignore();
        pipe.cmd("XDEL").arg(&self.stream).arg(ids).ignore();
        pipe.cmd("XTRIM").arg(&self.stream).arg("MAXLEN").arg("~").arg(self.max_len).ignore();
        self.redis.query_pipe(&pipe).await
    }

    async fn leave(&self, consumer: &str) -> Result<(), BackendError> {
        if !self.grouped.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut info = redis::cmd("XINFO");
        info.arg("CONSUMERS").arg(&self.stream).arg(GROUP);
        let reply: StreamInfoConsumersReply = self.redis.query(&info).await?;
        let gone =
            reply.consumers.iter().filter(|c| c.pending == 0 && (c.name == consumer || c.idle > STALE_CONSUMER_MS));
        for c in gone {
            let mut delete = redis::cmd("XGROUP");
            delete.arg("DELCONSUMER").arg(&self.stream).arg(GROUP).arg(&c.name);
            self.redis.query::<()>(&delete).await?;
        }
        Ok(())
    }

    fn name(&self) -> &str {
        &self.stream
    }
}
