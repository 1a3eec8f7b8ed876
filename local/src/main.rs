//! `cargo run --release -p aetherium-local`: the whole system on one port.
#![allow(clippy::print_stdout)]

use aetherium::api::Route;
use aetherium::config::Config;
use aetherium::{App, telemetry};
use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init(false);
    let mut config = Config::from_env().context("configuration")?;
    let generated = aetherium_local::fill_missing_secrets(&mut config);
    let addr = config.addr;
    let app = App::from_config(config)
        .context("start-up")?
        .with_integrations(&[&aetherium_webhook::WebhookFactory])
        .await
        .context("integrations")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (AETHERIUM_ADDR)"))?;
    let local = listener.local_addr()?;

    println!("Aetherium local runner on http://{local}");
    println!("  event bus: {}   store: {}   queue: {}", app.bus.kind(), app.store.kind(), app.queue.kind());
    println!("  routes:");
    for r in Route::ALL {
        println!("    {:<4} http://{local}{}", r.method().as_str(), r.path());
    }
    println!(
        "  point GitHub at http://{local}{} and Slack at http://{local}{}",
        Route::GithubWebhook.path(),
        Route::SlackWebhook.path()
    );
    for g in &generated {
        println!("  {} was not set; generated for this run: {}", g.variable, g.value.expose());
    }
    println!("Ready. Ctrl-C to stop.");
    aetherium_local::run(app, listener, aetherium_local::shutdown_signal()).await
}
