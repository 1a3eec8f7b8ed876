//! `cargo run --release -p aetherium-local`: the whole system on one port.
#![allow(clippy::print_stdout)]

use aetherium::config::Config;
use aetherium::engine::app::Needs;
use aetherium::{App, observe::telemetry};
use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init(false);
    let mut config = Config::from_env().context("configuration")?;
    let generated = aetherium_local::fill_missing_secrets(&mut config);
    let addr = config.addr;
    let app = App::from_config(config)
        .context("start-up")?
        .build(Needs::all(&[&aetherium_webhook::WebhookFactory]))
        .await
        .context("integrations")?;
    app.preflight().await.context("start-up")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (AETHERIUM_ADDR)"))?;
    let local = listener.local_addr()?;

    print!("{}", aetherium_local::banner(&app, local, &generated));
    aetherium_local::run(app, listener, aetherium_local::shutdown_signal()).await
}
