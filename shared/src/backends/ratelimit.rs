//! A requests-per-second limit shared by every Lambda instance through the store: one
//! counter per one-second window, created with its expiry. A remote that asks to wait (a
//! Retry-After, a rate-limit reset) holds the limit for every caller of every instance until
//! then, across runs and invocations: the hold is a key in the same store.

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
    /// The remote asked every caller to wait; `retry_after` is what is left of the wait.
    #[error("`{name}` asked to wait {retry_after:?} more")]
    Held { name: String, retry_after: Duration },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl RateLimiter {
    pub fn new(store: Arc<dyn Store>, name: impl Into<String>, per_second: u32, patience: Duration) -> Self {
        Self { store, name: name.into(), per_second: per_second.max(1), patience }
    }

    fn hold_key(&self) -> String {
        format!("ratelimit:{}:hold", self.name)
    }

    /// Hold every caller of this limit, on every instance, for `wait` from now. A later hold
    /// already set is kept.
    pub async fn hold(&self, wait: Duration) -> Result<(), BackendError> {
        let until = now_ms().saturating_add(wait.as_millis() as u64);
        let key = self.hold_key();
        if let Some(held) = self.store.get(&key).await?.and_then(|v| v.parse::<u64>().ok())
            && held >= until
        {
            return Ok(());
        }
        self.store.set(&key, &until.to_string(), Some(wait.max(Duration::from_millis(1)))).await
    }

    /// What is left of a hold, if one is set.
    pub async fn held(&self) -> Result<Option<Duration>, BackendError> {
        let until = self.store.get(&self.hold_key()).await?.and_then(|v| v.parse::<u64>().ok());
        Ok(until.and_then(|u| u.checked_sub(now_ms())).filter(|left| *left > 0).map(Duration::from_millis))
    }

    /// Wait for a slot in the current or a following second; refused at once while the
    /// remote's hold lasts.
    pub async fn acquire(&self) -> Result<(), LimitError> {
        if let Some(retry_after) = self.held().await? {
            return Err(LimitError::Held { name: self.name.clone(), retry_after });
        }
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

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::store::MemoryStore;

    #[tokio::test]
    async fn a_hold_refuses_every_caller_until_it_passes_and_is_never_shortened() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (a, b) = (
            RateLimiter::new(store.clone(), "github", 5, Duration::from_secs(1)),
            RateLimiter::new(store, "github", 5, Duration::from_secs(1)),
        );
        a.acquire().await.expect("free");
        a.hold(Duration::from_millis(300)).await.expect("hold");
        a.hold(Duration::from_millis(10)).await.expect("a shorter hold");
        match b.acquire().await {
            Err(LimitError::Held { retry_after, .. }) => assert!(retry_after > Duration::from_millis(100)),
            other => panic!("another instance is held: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(350)).await;
        b.acquire().await.expect("the hold passed");
    }
}
