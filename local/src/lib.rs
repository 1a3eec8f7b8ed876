//! The local runner: every HTTP route of the product and the dispatcher loop in one
//! process, on the embedded in-memory backends unless Redis or SQS are configured.

use aetherium::api::{self, ApiError, Route};
use aetherium::config::Config;
use aetherium::dispatch;
use aetherium::{App, Secret};
use axum::body::Body;
use bytes::Bytes;
use std::future::Future;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A secret the runner generated because none was configured.
#[derive(Debug)]
pub struct Generated {
    pub variable: &'static str,
    pub value: Secret,
}

/// Local mode never runs without webhook secrets or an API token: a missing one is
/// generated (and shown once by the caller) so no unsigned request is ever accepted.
pub fn fill_missing_secrets(config: &mut Config) -> Vec<Generated> {
    let mut generated = Vec::new();
    let slots: [(&'static str, &mut Option<Secret>); 3] = [
        ("GITHUB_WEBHOOK_SECRET", &mut config.github.webhook_secret),
        ("SLACK_SIGNING_SECRET", &mut config.slack.signing_secret),
        ("AETHERIUM_API_TOKEN", &mut config.api_token),
    ];
    for (variable, slot) in slots {
        if slot.is_none() {
            let value = Secret::generate();
            *slot = Some(value.clone());
            generated.push(Generated { variable, value });
        }
    }
    generated
}

async fn route(app: App, req: axum::extract::Request) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let Some(route) = Route::at(parts.uri.path()) else {
        return into_axum(ApiError::NotFound(parts.uri.path().to_owned()).into_response());
    };
    let limit = app.config.max_body_bytes;
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return into_axum(ApiError::PayloadTooLarge { limit }.into_response()),
    };
    into_axum(api::handle(&app, route, http::Request::from_parts(parts, bytes)).await)
}

fn into_axum(resp: api::Response) -> axum::response::Response {
    resp.map(Body::from)
}

pub fn router(app: App) -> axum::Router {
    axum::Router::new().fallback(move |req: axum::extract::Request| route(app.clone(), req))
}

/// Serve until `shutdown` resolves, then stop accepting, finish in-flight requests, let
/// the dispatcher finish its batch, and close the integrations.
pub async fn run(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let dispatcher = tokio::spawn(dispatch::run_loop(app.queue.clone(), app.dispatcher(), stop_rx));
    let served = axum::serve(listener, router(app.clone())).with_graceful_shutdown(shutdown).await;
    tracing::info!("HTTP server stopped; draining the dispatcher");
    let _ = stop_tx.send(true);
    let _ = dispatcher.await;
    for (name, error) in app.registry.close_all().await {
        tracing::warn!(integration = %name, %error, "integration did not close cleanly");
    }
    tracing::info!("shut down cleanly");
    Ok(served?)
}

/// Resolves at Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
