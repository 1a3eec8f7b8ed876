//! The Redis store: plain Redis commands, one per operation (LPUSH+LTRIM in MULTI); a batch
//! of writes in one MULTI.

use super::{Store, Write};
use crate::backends::error::BackendError;
use crate::backends::redis_conn::{RedisHandle, hash_tag};
use async_trait::async_trait;
use redis::cmd;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RedisStore {
    redis: RedisHandle,
}

impl RedisStore {
    pub fn new(redis: RedisHandle) -> Self {
        Self { redis }
    }
}

fn millis(ttl: Duration) -> u64 {
    // Redis rejects a zero expiry; a TTL under a millisecond rounds up.
    (ttl.as_millis() as u64).max(1)
}

#[async_trait]
impl Store for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<String>, BackendError> {
        self.redis.query(cmd("GET").arg(key)).await
    }

    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<(), BackendError> {
        let mut c = cmd("SET");
        c.arg(key).arg(value);
        if let Some(ttl) = ttl {
            c.arg("PX").arg(millis(ttl));
        }
        self.redis.query(&c).await
    }

    async fn set_if_absent_or_get(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<Option<String>, BackendError> {
        // NX with GET (Redis 7): nil when this call set the key, else the value kept.
        self.redis.query(cmd("SET").arg(key).arg(value).arg("NX").arg("GET").arg("PX").arg(millis(ttl))).await
    }

    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        let n: i64 = self.redis.query(cmd("DEL").arg(key)).await?;
        Ok(n > 0)
    }

    async fn incr_window(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, BackendError> {
        // MULTI: the counter is created with its expiry, then counted, as one step.
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(key)
            .arg(0)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .ignore()
            .cmd("INCRBY")
            .arg(key)
            .arg(by);
        let (n,): (i64,) = self.redis.query_pipe(&pipe).await?;
        Ok(n)
    }

    async fn log_append(&self, key: &str, entry: &str, cap: usize) -> Result<(), BackendError> {
        let last = cap.max(1) as i64 - 1;
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("LPUSH").arg(key).arg(entry).ignore().cmd("LTRIM").arg(key).arg(0).arg(last).ignore();
        self.redis.query_pipe(&pipe).await
    }

    async fn log_recent(&self, key: &str, limit: usize) -> Result<Vec<String>, BackendError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.redis.query(cmd("LRANGE").arg(key).arg(0).arg(limit as i64 - 1)).await
    }

    async fn hash_set(&self, key: &str, field: &str, value: &str) -> Result<(), BackendError> {
        self.redis.query(cmd("HSET").arg(key).arg(field).arg(value)).await.map(|_: i64| ())
    }

    async fn hash_get(&self, key: &str, field: &str) -> Result<Option<String>, BackendError> {
        self.redis.query(cmd("HGET").arg(key).arg(field)).await
    }

    async fn hash_delete(&self, key: &str, field: &str) -> Result<bool, BackendError> {
        let n: i64 = self.redis.query(cmd("HDEL").arg(key).arg(field)).await?;
        Ok(n > 0)
    }

    async fn hash_all(&self, key: &str) -> Result<Vec<(String, String)>, BackendError> {
        let map: std::collections::BTreeMap<String, String> = self.redis.query(cmd("HGETALL").arg(key)).await?;
        Ok(map.into_iter().collect())
    }

    async fn hash_incr(&self, key: &str, field: &str, by: i64) -> Result<i64, BackendError> {
        self.redis.query(cmd("HINCRBY").arg(key).arg(field).arg(by)).await
    }

    async fn hash_incr_window(&self, key: &str, field: &str, by: i64, ttl: Duration) -> Result<i64, BackendError> {
        // MULTI: counted, and given its expiry only when it has none (PEXPIRE NX, Redis 7),
        // so the hash lives `ttl` from its first field.
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HINCRBY")
            .arg(key)
            .arg(field)
            .arg(by)
            .cmd("PEXPIRE")
            .arg(key)
            .arg(millis(ttl))
            .arg("NX")
            .ignore();
        let (n,): (i64,) = self.redis.query_pipe(&pipe).await?;
        Ok(n)
    }

    async fn apply(&self, writes: &[Write]) -> Result<(), BackendError> {
        if writes.is_empty() {
            return Ok(());
        }
        if !self.redis.conn().await?.cluster_mode() {
            return self.redis.query_pipe(&transaction(writes.iter())).await;
        }
        // A cluster runs MULTI on one slot only. Writes that must change together share a
        // hash tag (an event's keys: `evt:{<id>}:...`); each tag's writes go as one
        // transaction, and the transactions go out together.
        let mut groups: Vec<(&str, Vec<&Write>)> = Vec::new();
        for w in writes {
            let tag = hash_tag(w.key());
            match groups.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, group)) => group.push(w),
                None => groups.push((tag, vec![w])),
            }
        }
        let sent = groups
            .iter()
            .map(|(_, group)| async move { self.redis.query_pipe::<()>(&transaction(group.iter().copied())).await });
        futures_util::future::join_all(sent).await.into_iter().collect()
    }

    async fn health(&self) -> Result<(), BackendError> {
        self.redis.query(&cmd("PING")).await.map(|_: String| ())
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

/// The writes as one pipeline: MULTI makes several all or nothing; one plain command is that
/// already.
fn transaction<'a>(writes: impl ExactSizeIterator<Item = &'a Write>) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    let n = writes.len();
    for (i, w) in writes.enumerate() {
        if i == 0 && (n > 1 || matches!(w, Write::LogAppend { .. })) {
            pipe.atomic();
        }
        match w {
            Write::Set { key, value, ttl } => {
                pipe.cmd("SET").arg(key).arg(value);
                if let Some(ttl) = ttl {
                    pipe.arg("PX").arg(millis(*ttl));
                }
            }
            Write::Delete { key } => {
                pipe.cmd("DEL").arg(key);
            }
            Write::HashIncr { key, field, by } => {
                pipe.cmd("HINCRBY").arg(key).arg(field).arg(*by);
            }
            Write::LogAppend { key, entry, cap } => {
                pipe.cmd("LPUSH").arg(key).arg(entry).ignore();
                pipe.cmd("LTRIM").arg(key).arg(0).arg(cap.max(&1) - 1);
            }
        }
        pipe.ignore();
    }
    pipe
}
