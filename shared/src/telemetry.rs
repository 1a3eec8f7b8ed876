//! Logging: JSON lines in Lambda (CloudWatch parses them), readable text locally.

use tracing_subscriber::EnvFilter;

/// Install the global subscriber. `RUST_LOG` overrides the default level (`info`).
/// Safe to call more than once; later calls do nothing.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).with_ansi(false).try_init()
    } else {
        // Locally, stdout carries the start-up banner; logs go beside it on stderr.
        builder.with_writer(std::io::stderr).try_init()
    };
}
