//! The local runner: every HTTP route of the product and the dispatcher loop in one
//! process, on the embedded in-memory backends unless Redis or SQS are configured.

use aetherium::config::Config;
use aetherium::edge::api::{self, ApiError, Endpoint};
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

/// The sample the banner suggests sending first (`scripts/send` re-signs it).
pub const FIRST_SAMPLE: &str = "events/github-webhook/pull_request-opened.json";

/// The start-up banner, ending with the `Ready.` line: backends, enabled integrations, the
/// event routes (name, topic, action), every HTTP route's URL, the secrets generated for this
/// run, and a first sample to send.
pub fn banner(app: &App, local: std::net::SocketAddr, generated: &[Generated]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "Aetherium local runner on http://{local}");
    let described = app.describe();
    let _ = writeln!(out, "  event bus: {}   store: {}   queue: {}", described.bus, described.store, described.queue);
    let integrations = described.integrations;
    if integrations.is_empty() {
        let _ = writeln!(
            out,
            "  integrations: none (GITHUB_TOKEN or a GitHub App enables github, SLACK_BOT_TOKEN slack; webhooks work without them)"
        );
    } else {
        let _ = writeln!(out, "  integrations: {}", integrations.join(", "));
    }
    if let Ok(Some(job)) = app.redeliverer() {
        let _ = writeln!(out, "  GitHub redelivery: every {} s, watching {}", job.interval().as_secs(), job.watching());
    }
    let routes = app.routes();
    let rules = routes.rules();
    let name_width = rules.iter().map(|r| r.action.name().chars().count()).max().unwrap_or(0);
    let topic_width = rules.iter().map(|r| r.on.chars().count()).max().unwrap_or(0);
    let _ = writeln!(out, "  event routes (name, topic, action):{}", if rules.is_empty() { " none" } else { "" });
    for rule in rules {
        let action = match rule.action.integration() {
            Some(integration) => format!("{} → {integration}", rule.action.kind()),
            None => rule.action.kind().to_owned(),
        };
        let _ = writeln!(out, "    {:<name_width$}  {:<topic_width$}  {action}", rule.action.name(), rule.on);
    }
    let _ = writeln!(out, "  HTTP routes:");
    for r in Endpoint::all() {
        let _ = writeln!(out, "    {:<4} http://{local}{}", r.method().as_str(), r.path());
    }
    let _ = writeln!(
        out,
        "  point GitHub at http://{local}{} and Slack at http://{local}{} (through an HTTPS tunnel: docs/operations.md)",
        Endpoint::Webhook("github").path(),
        Endpoint::Webhook("slack").path()
    );
    for g in generated {
        let _ = writeln!(out, "  {} was not set; generated for this run: {}", g.variable, g.value.expose());
    }
    // scripts/send signs with the same variables, defaulting to the README's example values.
    let mut env = String::new();
    if let Some(g) = generated.iter().find(|g| g.variable == "GITHUB_WEBHOOK_SECRET") {
        let _ = write!(env, "GITHUB_WEBHOOK_SECRET={} ", g.value.expose());
    }
    if aetherium::config::DEFAULT_ADDR.parse().ok() != Some(local) {
        let _ = write!(env, "RUNNER_URL=http://{local} ");
    }
    let _ = writeln!(out, "  try it: {env}scripts/send {FIRST_SAMPLE}");
    if described.bus == "redis" {
        let _ = writeln!(out, "  and watch it on the bus: redis-cli SUBSCRIBE github.pull_request.opened");
        let (patterns, inbox) = app.bridge().describe();
        let inbox = inbox.map(|s| format!("; durably: XADD {s} * event '<event JSON>'")).unwrap_or_default();
        let _ = writeln!(out, "  the platform publishes to us on the bus: {}{inbox}", patterns.join(", "));
    }
    let _ = writeln!(out, "Ready. Ctrl-C to stop.");
    out
}

async fn route(app: App, req: axum::extract::Request) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let Some(route) = Endpoint::at(parts.uri.path()) else {
        return into_axum(ApiError::NotFound(parts.uri.path().to_owned()).into_response());
    };
    let limit = app.ingest().max_body();
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
    // The same redelivery job the scheduled Lambda function runs, on the configured interval.
    let redeliver = match app.redeliverer() {
        Ok(Some(job)) => Some(tokio::spawn(job.run_every(stop_rx.clone()))),
        Ok(None) => None,
        Err(error) => {
            tracing::warn!(%error, "GitHub redelivery is off");
            None
        }
    };
    // On Redis the runner is also the bus bridge: what the platform publishes reaches the queue.
    let bridge = (app.describe().bus == "redis").then(|| {
        let (bridge, mut stop) = (app.bridge(), stop_rx.clone());
        tokio::spawn(async move {
            bridge
                .run(async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                })
                .await
        })
    });
    let dispatcher = tokio::spawn(app.dispatcher().run_loop(stop_rx));
    let served = axum::serve(listener, router(app.clone())).with_graceful_shutdown(shutdown).await;
    tracing::info!("HTTP server stopped; draining the dispatcher");
    let _ = stop_tx.send(true);
    if let Some(bridge) = bridge {
        let _ = bridge.await;
    }
    let _ = dispatcher.await;
    if let Some(job) = redeliver {
        let _ = job.await;
    }
    for (name, error) in app.close().await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use aetherium::engine::app::Needs;
    use std::collections::HashMap;

    async fn app(env: &[(&str, &str)]) -> (App, Vec<Generated>) {
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut config = Config::load(&move |k| env.get(k).cloned()).expect("config");
        let generated = fill_missing_secrets(&mut config);
        let app = App::from_config(config).expect("app").build(Needs::BUILTIN).await.expect("integrations");
        (app, generated)
    }

    /// The banner line for route `name`, split into its columns' words.
    fn row<'a>(banner: &'a str, name: &str) -> Vec<&'a str> {
        banner
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|words| words.first() == Some(&name))
            .unwrap_or_else(|| panic!("no route {name} in:\n{banner}"))
    }

    #[tokio::test]
    async fn the_banner_lists_integrations_routes_and_urls() {
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/aetherium.yaml");
        let (app, generated) = app(&[
            ("AETHERIUM_CONFIG", sample),
            ("GITHUB_TOKEN", "ghp_x"),
            ("SLACK_BOT_TOKEN", "xoxb-x"),
            ("GITHUB_WEBHOOK_SECRET", "aetherium-example-secret"),
            ("SLACK_SIGNING_SECRET", "aetherium-example-slack-secret"),
            ("AETHERIUM_API_TOKEN", "aetherium-example-token"),
        ])
        .await;
        assert!(generated.is_empty());
        let text = banner(&app, "127.0.0.1:8080".parse().expect("addr"), &generated);
        assert!(text.starts_with("Aetherium local runner on http://127.0.0.1:8080\n"), "{text}");
        assert!(text.contains("\n  integrations: github, slack\n"), "{text}");
        // The configured routes (name, topic, action), and the defaults they leave in place.
        assert_eq!(row(&text, "deployments"), ["deployments", "custom.deployed", "notify", "→", "slack"]);
        assert_eq!(row(&text, "github.handle"), ["github.handle", "task.*", "handle", "→", "github"]);
        assert_eq!(row(&text, "approve-deploy"), ["approve-deploy", "task.completed", "notify", "→", "slack"]);
        assert_eq!(row(&text, "release-pr"), ["release-pr", "custom.release_ready", "artifact", "→", "github"]);
        assert_eq!(row(&text, "pr-test-vm"), ["pr-test-vm", "github.pull_request.opened", "publish"]);
        assert_eq!(row(&text, "slack.vm_created"), ["slack.vm_created", "vm.created", "notify", "→", "slack"]);
        assert_eq!(row(&text, "vm.registry"), ["vm.registry", "vm.*", "vm", "registry"]);
        for r in Endpoint::all() {
            assert!(text.contains(&format!(" http://127.0.0.1:8080{}\n", r.path())), "{} in:\n{text}", r.path());
        }
        // The example secrets are set, and the runner is where scripts/send looks by default.
        assert!(text.contains(&format!("\n  try it: scripts/send {FIRST_SAMPLE}\n")), "{text}");
        assert!(text.ends_with("\nReady. Ctrl-C to stop.\n"), "{text}");
    }

    #[tokio::test]
    async fn without_integrations_the_banner_says_so_and_the_try_line_carries_what_send_needs() {
        let (app, generated) = app(&[]).await;
        let text = banner(&app, "127.0.0.1:9999".parse().expect("addr"), &generated);
        assert!(text.contains("\n  integrations: none ("), "{text}");
        assert_eq!(row(&text, "vm.registry"), ["vm.registry", "vm.*", "vm", "registry"]);
        let secret = &generated.iter().find(|g| g.variable == "GITHUB_WEBHOOK_SECRET").expect("generated").value;
        let want = format!(
            "\n  try it: GITHUB_WEBHOOK_SECRET={} RUNNER_URL=http://127.0.0.1:9999 scripts/send {FIRST_SAMPLE}\n",
            secret.expose()
        );
        assert!(text.contains(&want), "{text}");
        assert!(!text.contains("redis-cli"), "{text}");
        assert!(!text.contains("redelivery"), "no GitHub credentials, no redelivery job: {text}");
    }

    #[tokio::test]
    async fn the_banner_says_what_the_redelivery_job_watches_and_how_often() {
        let (app, generated) = app(&[
            ("GITHUB_TOKEN", "ghp_x"),
            ("GITHUB_REDELIVERY_HOOK", "octo/hello#7"),
            ("GITHUB_REDELIVERY_INTERVAL_SECS", "60"),
        ])
        .await;
        let text = banner(&app, "127.0.0.1:8080".parse().expect("addr"), &generated);
        assert!(text.contains("\n  GitHub redelivery: every 60 s, watching octo/hello#7\n"), "{text}");
    }
}
