//! The small key-value store the system shares across Lambda instances: idempotency keys,
//! claim checks, counters, the activity log, the VM registry, token caches.

pub mod memory;
pub mod redis;

use crate::backends::error::BackendError;
use async_trait::async_trait;
use std::time::Duration;

pub use memory::MemoryStore;
pub use redis::RedisStore;

/// One write of a batch for [`Store::apply`]: what the dispatcher records after a route,
/// counters and log lines included, costs one round trip instead of one per write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Set { key: String, value: String, ttl: Option<Duration> },
    Delete { key: String },
    HashIncr { key: String, field: String, by: i64 },
    LogAppend { key: String, entry: String, cap: usize },
}

impl Write {
    pub fn key(&self) -> &str {
        match self {
            Self::Set { key, .. } | Self::Delete { key } | Self::HashIncr { key, .. } | Self::LogAppend { key, .. } => {
                key
            }
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    async fn get(&self, key: &str) -> Result<Option<String>, BackendError>;

    /// Set a value, replacing any; with `ttl` it expires after that long.
    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<(), BackendError>;

    /// Set only when the key does not exist; `true` when this call set it.
    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, BackendError> {
        Ok(self.set_if_absent_or_get(key, value, ttl).await?.is_none())
    }

    /// Set only when the key does not exist, in one step; returns the value that was there
    /// (`None`: this call set it). A lock and a done marker can share one key this way.
    async fn set_if_absent_or_get(&self, key: &str, value: &str, ttl: Duration)
    -> Result<Option<String>, BackendError>;

    /// `true` when the key existed.
    async fn delete(&self, key: &str) -> Result<bool, BackendError>;

    /// Add `by` to a counter that lives `ttl` from its creation (a rate-limit window);
    /// returns the new value.
    async fn incr_window(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, BackendError>;

    /// Append to a capped log: only the newest `cap` entries are kept.
    async fn log_append(&self, key: &str, entry: &str, cap: usize) -> Result<(), BackendError>;

    /// Up to `limit` entries of a log, newest first.
    async fn log_recent(&self, key: &str, limit: usize) -> Result<Vec<String>, BackendError>;

    async fn hash_set(&self, key: &str, field: &str, value: &str) -> Result<(), BackendError>;

    async fn hash_get(&self, key: &str, field: &str) -> Result<Option<String>, BackendError>;

    /// `true` when the field existed.
    async fn hash_delete(&self, key: &str, field: &str) -> Result<bool, BackendError>;

    /// Every field and value, sorted by field.
    async fn hash_all(&self, key: &str) -> Result<Vec<(String, String)>, BackendError>;

    /// Add `by` to an integer field of a hash and return the new value.
    async fn hash_incr(&self, key: &str, field: &str, by: i64) -> Result<i64, BackendError>;

    /// [`Store::hash_incr`] on a hash that lives `ttl` from its creation (a day's tally).
    async fn hash_incr_window(&self, key: &str, field: &str, by: i64, ttl: Duration) -> Result<i64, BackendError>;

    /// Several writes in one round trip, in order. Standalone Redis applies them in one MULTI;
    /// a Redis cluster in one MULTI per hash tag (keys that must change together share one);
    /// the default applies them one by one and stops at the first error.
    async fn apply(&self, writes: &[Write]) -> Result<(), BackendError> {
        for w in writes {
            match w {
                Write::Set { key, value, ttl } => self.set(key, value, *ttl).await?,
                Write::Delete { key } => drop(self.delete(key).await?),
                Write::HashIncr { key, field, by } => drop(self.hash_incr(key, field, *by).await?),
                Write::LogAppend { key, entry, cap } => self.log_append(key, entry, *cap).await?,
            }
        }
        Ok(())
    }

    async fn health(&self) -> Result<(), BackendError>;

    /// `memory` or `redis`, for the start-up banner and logs.
    fn kind(&self) -> &'static str;
}
