//! The product's HTTP routes as framework-neutral handlers over `http` types, shared by the
//! Lambda functions (through [`crate::lambda`]) and the local runner.

pub mod auth;
mod error;
pub mod events;
pub mod github_pr;
pub mod github_webhook;
pub mod health;
pub mod ingest;
pub mod logs;
pub mod metrics;
pub mod slack_webhook;

pub use error::ApiError;

use crate::app::App;
use bytes::Bytes;
use http::{Method, StatusCode};

pub type Request = http::Request<Bytes>;
pub type Response = http::Response<Bytes>;

/// Every route of the product, at the guide's paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    GithubWebhook,
    SlackWebhook,
    GithubPr,
    Events,
    Health,
    LogsQuery,
    Metrics,
}

impl Route {
    pub const ALL: [Route; 7] = [
        Route::GithubWebhook,
        Route::SlackWebhook,
        Route::GithubPr,
        Route::Events,
        Route::Health,
        Route::LogsQuery,
        Route::Metrics,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Route::GithubWebhook => "/api/v1/webhooks/github",
            Route::SlackWebhook => "/api/v1/webhooks/slack",
            Route::GithubPr => "/api/v1/integrations/github/pr",
            Route::Events => "/api/v1/events",
            Route::Health => "/api/v1/health",
            Route::LogsQuery => "/api/v1/logs/query",
            Route::Metrics => "/metrics",
        }
    }

    pub fn method(self) -> Method {
        match self {
            Route::Health | Route::Metrics => Method::GET,
            _ => Method::POST,
        }
    }

    /// The route at `path`, with the guide's short alias `/logs/query`.
    pub fn at(path: &str) -> Option<Route> {
        let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        if path == "/logs/query" {
            return Some(Route::LogsQuery);
        }
        Route::ALL.into_iter().find(|r| r.path() == path)
    }
}

/// Answer `req` on `route`: the single entry point of every HTTP function.
pub async fn handle(app: &App, route: Route, req: Request) -> Response {
    if req.method() != route.method() && !(route.method() == Method::GET && req.method() == Method::HEAD) {
        let allowed = if route.method() == Method::GET { "GET" } else { "POST" };
        return ApiError::MethodNotAllowed { method: req.method().to_string(), allowed }.into_response();
    }
    let result = match route {
        Route::Health => health::handle(app, req).await,
        Route::GithubWebhook => github_webhook::handle(app, req).await,
        Route::Events => events::handle(app, req).await,
        Route::GithubPr => github_pr::handle(app, req).await,
        Route::SlackWebhook => slack_webhook::handle(app, req).await,
        Route::LogsQuery => logs::handle(app, req).await,
        Route::Metrics => metrics::handle(app, req).await,
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
        assert_eq!(Route::at("/api/v1/webhooks/github"), Some(Route::GithubWebhook));
        assert_eq!(Route::at("/logs/query"), Some(Route::LogsQuery));
        assert_eq!(Route::at("/api/v1/logs/query/"), Some(Route::LogsQuery));
        assert_eq!(Route::at("/metrics"), Some(Route::Metrics));
        assert_eq!(Route::at("/api/v1/nope"), None);
        for r in Route::ALL {
            assert_eq!(Route::at(r.path()), Some(r));
        }
    }
}
