//! The time replay windows are measured against: the system clock, or a fixed value in tests.

use std::sync::Arc;

/// Unix seconds, from the system clock or a fixed value.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(|| chrono::Utc::now().timestamp()))
    }

    pub fn fixed(unix: i64) -> Self {
        Self(Arc::new(move || unix))
    }

    pub fn now(&self) -> i64 {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}
