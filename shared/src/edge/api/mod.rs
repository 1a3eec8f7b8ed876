//! The product's HTTP endpoints as framework-neutral handlers over `http` types, shared by the
//! Lambda functions (through [`crate::edge::lambda`]) and the local runner.

pub mod auth;
mod error;
pub mod events;
pub mod gate;
pub mod github_pr;
pub mod github_webhook;
pub mod health;
pub mod ingest;
pub mod logs;
pub mod metrics;
pub mod slack_webhook;

pub use error::ApiError;

use crate::engine::app::App;
use bytes::Bytes;
use http::{Method, StatusCode};

pub type Request = http::Request<Bytes>;
pub type Response = http::Response<Bytes>;

/// Every HTTP endpoint of the product, at the guide's paths. (A "route" is an event-routing
/// rule, `engine::routes`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    GithubWebhook,
    SlackWebhook,
    GithubPr,
    Events,
    Health,
    LogsQuery,
    Metrics,
}

impl Endpoint {
    pub const ALL: [Endpoint; 7] = [
        Endpoint::GithubWebhook,
        Endpoint::SlackWebhook,
        Endpoint::GithubPr,
        Endpoint::Events,
        Endpoint::Health,
        Endpoint::LogsQuery,
        Endpoint::Metrics,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Endpoint::GithubWebhook => "/api/v1/webhooks/github",
            Endpoint::SlackWebhook => "/api/v1/webhooks/slack",
            Endpoint::GithubPr => "/api/v1/integrations/github/pr",
            Endpoint::Events => "/api/v1/events",
            Endpoint::Health => "/api/v1/health",
            Endpoint::LogsQuery => "/api/v1/logs/query",
            Endpoint::Metrics => "/metrics",
        }
    }

    pub fn method(self) -> Method {
        match self {
            Endpoint::Health | Endpoint::Metrics => Method::GET,
            _ => Method::POST,
        }
    }

    /// The endpoint at `path`, with the guide's short alias `/logs/query`.
    pub fn at(path: &str) -> Option<Endpoint> {
        let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        if path == "/logs/query" {
            return Some(Endpoint::LogsQuery);
        }
        Endpoint::ALL.into_iter().find(|r| r.path() == path)
    }
}

/// Answer `req` at `endpoint`: the single entry point of every HTTP function.
pub async fn handle(app: &App, endpoint: Endpoint, req: Request) -> Response {
    if req.method() != endpoint.method() && !(endpoint.method() == Method::GET && req.method() == Method::HEAD) {
        let allowed = if endpoint.method() == Method::GET { "GET" } else { "POST" };
        return ApiError::MethodNotAllowed { method: req.method().to_string(), allowed }.into_response();
    }
    let result = match endpoint {
        Endpoint::Health => health::handle(app, req).await,
        Endpoint::GithubWebhook => github_webhook::handle(app, req).await,
        Endpoint::Events => events::handle(app, req).await,
        Endpoint::GithubPr => github_pr::handle(app, req).await,
        Endpoint::SlackWebhook => slack_webhook::handle(app, req).await,
        Endpoint::LogsQuery => logs::handle(app, req).await,
        Endpoint::Metrics => metrics::handle(app, req).await,
    };
    result.unwrap_or_else(ApiError::into_response)
}

/// A JSON response.
pub fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(bytes))
        .unwrap_or_else(|_| http::Response::new(Bytes::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_found_at_the_guides_paths() {
        assert_eq!(Endpoint::at("/api/v1/webhooks/github"), Some(Endpoint::GithubWebhook));
        assert_eq!(Endpoint::at("/logs/query"), Some(Endpoint::LogsQuery));
        assert_eq!(Endpoint::at("/api/v1/logs/query/"), Some(Endpoint::LogsQuery));
        assert_eq!(Endpoint::at("/metrics"), Some(Endpoint::Metrics));
        assert_eq!(Endpoint::at("/api/v1/nope"), None);
        for r in Endpoint::ALL {
            assert_eq!(Endpoint::at(r.path()), Some(r));
        }
    }
}
