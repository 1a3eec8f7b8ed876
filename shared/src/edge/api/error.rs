//! Every failure an HTTP route can answer with, mapped to a status and a public message in
//! one place. Internal details go to the log, never to the caller.

use super::{Response, json};
use crate::engine::ingest::IngestError;
use http::StatusCode;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// The request conflicts with one taken before (an event id reused).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("no route for {0}")]
    NotFound(String),
    #[error("{method} is not allowed here; use {allowed}")]
    MethodNotAllowed { method: String, allowed: &'static str },
    /// A required setting is missing: the service fails closed.
    #[error("the service is not configured to accept this request")]
    Misconfigured { setting: &'static str },
    /// An integration is not enabled or has no credentials.
    #[error("{0}")]
    NotConfigured(&'static str),
    /// The remote API refused the request; its status and message are passed on.
    #[error("{message}")]
    Upstream { status: StatusCode, message: String },
    /// The remote API could not be reached or kept failing.
    #[error("the upstream service could not be reached; retry later")]
    BadGateway(String),
    /// A backend we depend on failed; the caller should retry.
    #[error("temporarily unavailable, retry later")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Misconfigured { .. } | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) | Self::NotConfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream { status, .. } => *status,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
        }
    }

    pub fn into_response(self) -> Response {
        match &self {
            Self::Misconfigured { setting } => {
                tracing::error!(setting, "refusing request: required setting is missing")
            }
            Self::Unavailable(detail) => tracing::warn!(%detail, "answering 503"),
            Self::BadGateway(detail) => tracing::warn!(%detail, "answering 502"),
            Self::Internal(detail) => tracing::error!(%detail, "answering 500"),
            _ => {}
        }
        json(self.status(), &json!({ "error": self.to_string() }))
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::TooLarge { limit } => Self::PayloadTooLarge { limit },
            IngestError::Unconfigured { setting } => Self::Misconfigured { setting },
            IngestError::Refused(why) => Self::Unauthorized(why),
            IngestError::UnknownSource(name) => Self::NotFound(format!("webhook source `{name}`")),
            e @ (IngestError::Inbound(_) | IngestError::Invalid(_)) => Self::BadRequest(e.to_string()),
            e @ IngestError::IdReused(_) => Self::Conflict(e.to_string()),
            IngestError::Unavailable(detail) => Self::Unavailable(detail),
        }
    }
}
