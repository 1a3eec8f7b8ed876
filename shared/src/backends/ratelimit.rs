//! A requests-per-second limit shared by every Lambda instance through the store: one
//! counter per one-second window, created with its expiry.

use crate::backends::error::BackendError;
use crate::backends::store::Store;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct RateLimiter {
    store: Arc<dyn Store>,
    name: String,
    per_second: u32,
    /// How long `acquire` waits for a slot before giving up.
    patience: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("rate limit `{name}` saturated for {waited:?}")]
    Saturated { name: String, waited: Duration },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl RateLimiter {
    pub fn new(store: Arc<dyn Store>, name: impl Into<String>, per_second: u32, patience: Duration) -> Self {
        Self { store, name: name.into(), per_second: per_second.max(1), patience }
    }

    /// Wait for a slot in the current or a following second.
    pub async fn acquire(&self) -> Result<(), LimitError> {
        let start = tokio::time::Instant::now();
        loop {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            let key = format!("ratelimit:{}:{}", self.name, now.as_secs());
            let n = self.store.incr_window(&key, 1, Duration::from_secs(2)).await?;
            if n <= i64::from(self.per_second) {
                return Ok(());
            }
            let waited = start.elapsed();
            if waited >= self.patience {
                return Err(LimitError::Saturated { name: self.name.clone(), waited });
            }
            // Sleep to the next window, spread a little so waiters do not all wake together.
            let to_next = Duration::from_nanos(1_000_000_000 - u64::from(now.subsec_nanos()));
            tokio::time::sleep(to_next + crate::backends::backoff::jitter(Duration::from_millis(20))).await;
        }
    }
}
