//! Retry delays: exponential backoff with full jitter.

use std::time::Duration;

/// A random duration in `[0, max)`.
pub fn jitter(max: Duration) -> Duration {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return max / 2;
    }
    let r = u64::from_le_bytes(b);
    let nanos = max.as_nanos().max(1) as u64;
    Duration::from_nanos(r % nanos)
}

/// The delay before retry number `attempt` (0-based): half of `base * 2^attempt` plus a random
/// share of the other half, capped at `cap`.
pub fn delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16)).min(cap);
    exp / 2 + jitter(exp / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_capped() {
        for attempt in 0..20 {
            let d = delay(attempt, Duration::from_millis(100), Duration::from_secs(2));
            let exp = Duration::from_millis(100).saturating_mul(1 << attempt.min(16)).min(Duration::from_secs(2));
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d:?}");
        }
        assert!(jitter(Duration::from_millis(10)) < Duration::from_millis(10));
    }
}
