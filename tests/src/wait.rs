//! Polling with a bound, for conditions that become true asynchronously.

use std::future::Future;
use std::time::Duration;

/// Poll `f` every 20 ms until it yields `Some`, for at most `limit`.
pub async fn until<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
