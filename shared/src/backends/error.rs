//! Errors shared by the backends (event bus, work queue, store).

/// A failure of an external backend. The reason is for logs; callers see only the kind.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error("{backend} is unavailable: {reason}")]
    Unavailable { backend: &'static str, reason: String },
    #[error("{backend} did not answer in time")]
    Timeout { backend: &'static str },
    #[error("{backend} rejected the request: {reason}")]
    Rejected { backend: &'static str, reason: String },
    /// A setting the backend cannot work with; the reason names the setting to change.
    #[error("{backend} is misconfigured: {reason}")]
    Misconfigured { backend: &'static str, reason: String },
}

impl BackendError {
    pub fn unavailable(backend: &'static str, reason: impl ToString) -> Self {
        Self::Unavailable { backend, reason: reason.to_string() }
    }

    pub fn rejected(backend: &'static str, reason: impl ToString) -> Self {
        Self::Rejected { backend, reason: reason.to_string() }
    }

    /// A short reason that is safe to show outside (no addresses, no server messages).
    pub fn public_reason(&self) -> &'static str {
        match self {
            Self::Unavailable { .. } => "unreachable",
            Self::Timeout { .. } => "timed out",
            Self::Rejected { .. } => "request rejected",
            Self::Misconfigured { .. } => "misconfigured",
        }
    }
}

impl From<redis::RedisError> for BackendError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_timeout() {
            Self::Timeout { backend: "redis" }
        } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
            Self::unavailable("redis", e)
        } else {
            Self::rejected("redis", e)
        }
    }
}
