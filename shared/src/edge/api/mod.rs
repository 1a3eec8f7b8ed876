//! The product's HTTP endpoints as framework-neutral handlers over `http` types, shared by the
//! Lambda functions (through [`crate::edge::lambda`]) and the local runner.

pub mod auth;
mod error;
pub mod events;
pub mod github_pr;
pub mod health;
pub mod logs;
pub mod metrics;
pub mod webhook;

pub use error::ApiError;

use crate::engine::app::App;
use crate::engine::ingest::Accepted;
use crate::integrations::source;
use bytes::Bytes;
use http::{Method, StatusCode};
use std::borrow::Cow;

pub type Request = http::Request<Bytes>;
pub type Response = http::Response<Bytes>;

/// Where the signed webhooks arrive: `/api/v1/webhooks/<source>`.
const WEBHOOKS: &str = "/api/v1/webhooks/";

/// Every HTTP endpoint of the product, at the guide's paths. (A "route" is an event-routing
/// rule, `engine::routes`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A signed webhook from the source of this name (`integrations::source::NAMES`).
    Webhook(&'static str),
    GithubPr,
    Events,
    Health,
    LogsQuery,
    Metrics,
}

impl Endpoint {
    /// Every endpoint: one webhook per source, then the rest.
    pub fn all() -> impl Iterator<Item = Endpoint> {
        let fixed = [Endpoint::GithubPr, Endpoint::Events, Endpoint::Health, Endpoint::LogsQuery, Endpoint::Metrics];
        source::NAMES.iter().map(|name| Endpoint::Webhook(name)).chain(fixed)
    }

    pub fn path(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Endpoint::Webhook(name) => return Cow::Owned(format!("{WEBHOOKS}{name}")),
            Endpoint::GithubPr => "/api/v1/integrations/github/pr",
            Endpoint::Events => "/api/v1/events",
            Endpoint::Health => "/api/v1/health",
            Endpoint::LogsQuery => "/api/v1/logs/query",
            Endpoint::Metrics => "/metrics",
        })
    }

    pub fn method(self) -> Method {
        match self {
            Endpoint::Health | Endpoint::Metrics => Method::GET,
            _ => Method::POST,
        }
    }

    /// Whether only an authenticated caller (bearer token or IAM) may call it.
    pub fn internal(self) -> bool {
        matches!(self, Endpoint::GithubPr | Endpoint::Events | Endpoint::LogsQuery | Endpoint::Metrics)
    }

    /// The endpoint at `path`, with the guide's short alias `/logs/query`.
    pub fn at(path: &str) -> Option<Endpoint> {
        let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        if path == "/logs/query" {
            return Some(Endpoint::LogsQuery);
        }
        if let Some(name) = path.strip_prefix(WEBHOOKS) {
            return source::NAMES.iter().find(|n| **n == name).map(|n| Endpoint::Webhook(n));
        }
        Endpoint::all().find(|r| r.path() == path)
    }
}

/// Answer `req` at `endpoint`: the single entry point of every HTTP function. Each handler
/// gets the one service it needs.
pub async fn handle(app: &App, endpoint: Endpoint, req: Request) -> Response {
    if req.method() != endpoint.method() && !(endpoint.method() == Method::GET && req.method() == Method::HEAD) {
        let allowed = if endpoint.method() == Method::GET { "GET" } else { "POST" };
        return ApiError::MethodNotAllowed { method: req.method().to_string(), allowed }.into_response();
    }
    if endpoint.internal()
        && let Err(refused) = auth::internal(app.internal_auth(), &req)
    {
        return refused.into_response();
    }
    let result = match endpoint {
        Endpoint::Webhook(source) => webhook::handle(app.ingest(), source, req).await,
        Endpoint::Events => events::handle(app.ingest(), req).await,
        Endpoint::GithubPr => github_pr::handle(app.integration("github").as_deref(), req).await,
        Endpoint::Health => health::handle(&app.health()).await,
        Endpoint::LogsQuery => logs::handle(&app.activity(), req).await,
        Endpoint::Metrics => metrics::handle(&app.metrics()).await,
    };
    result.unwrap_or_else(ApiError::into_response)
}

/// What the ingest accepted, as HTTP: 202 for a record queued now, 200 for a copy of one
/// queued before or a reply.
fn accepted(accepted: Accepted) -> Response {
    match accepted {
        Accepted::Reply(body) => json(StatusCode::OK, &body),
        Accepted::Queued { id, kind } => {
            json(StatusCode::ACCEPTED, &serde_json::json!({ "id": id, "type": kind, "status": "queued" }))
        }
        Accepted::Duplicate { id, kind } => {
            json(StatusCode::OK, &serde_json::json!({ "id": id, "type": kind, "status": "duplicate" }))
        }
    }
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
        assert_eq!(Endpoint::at("/api/v1/webhooks/github"), Some(Endpoint::Webhook("github")));
        assert_eq!(Endpoint::at("/api/v1/webhooks/slack/"), Some(Endpoint::Webhook("slack")));
        assert_eq!(Endpoint::at("/api/v1/webhooks/nope"), None);
        assert_eq!(Endpoint::at("/logs/query"), Some(Endpoint::LogsQuery));
        assert_eq!(Endpoint::at("/api/v1/logs/query/"), Some(Endpoint::LogsQuery));
        assert_eq!(Endpoint::at("/metrics"), Some(Endpoint::Metrics));
        assert_eq!(Endpoint::at("/api/v1/nope"), None);
        for r in Endpoint::all() {
            assert_eq!(Endpoint::at(&r.path()), Some(r));
        }
    }
}
