//! Logging: JSON lines in Lambda (CloudWatch parses them), readable text locally.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter from `RUST_LOG` (`info`, `warn,aetherium=debug`, ...); `info` when unset or
/// unreadable. `Targets` needs no regex engine, which keeps the binaries smaller.
pub fn filter() -> Targets {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

/// Install the global subscriber. Safe to call more than once; later calls do nothing.
pub fn init(json: bool) {
    let registry = tracing_subscriber::registry().with(filter());
    let _ = if json {
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_ansi(false)
            .with_target(false);
        registry.with(layer).try_init()
    } else {
        // Locally, stdout carries the start-up banner; logs go beside it on stderr.
        registry.with(tracing_subscriber::fmt::layer().with_target(false).with_writer(std::io::stderr)).try_init()
    };
}
