//! Logging: JSON lines in Lambda (CloudWatch parses them), readable text locally.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Our crates: `RUST_LOG` applies to them as written.
const OURS: &[&str] = &["aetherium", "aetherium_local", "aetherium_webhook"];

/// The filter from `RUST_LOG` (`info`, `warn,aetherium=debug`, ...); `info` when unset or
/// unreadable. `Targets` needs no regex engine, which keeps the binaries smaller.
pub fn filter() -> Targets {
    let asked = std::env::var("RUST_LOG").ok().and_then(|v| v.parse().ok());
    capped(asked.unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO)))
}

/// `asked` with every dependency held to DEBUG at most, however `RUST_LOG` reads:
/// lambda_runtime logs each raw event at TRACE (bearer tokens, signatures and all) and
/// aws-sigv4 its canonical requests (the session token). `RUST_LOG=trace` still traces our
/// own crates.
pub fn capped(asked: Targets) -> Targets {
    let ours = |target: &str| OURS.iter().any(|o| target == *o || target.starts_with(&format!("{o}::")));
    let default = asked.default_level().unwrap_or(LevelFilter::OFF);
    let mut out = Targets::new().with_default(default.min(LevelFilter::DEBUG));
    for (target, level) in asked.iter() {
        out = out.with_target(target, if ours(target) { level } else { level.min(LevelFilter::DEBUG) });
    }
    for o in OURS {
        if default > LevelFilter::DEBUG && !asked.iter().any(|(t, _)| t == *o) {
            out = out.with_target(*o, default);
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::capped;
    use tracing::Level;
    use tracing_subscriber::filter::Targets;

    #[test]
    fn trace_reaches_our_crates_never_a_dependency() {
        for asked in ["trace", "lambda_runtime=trace,info", "trace,lambda_runtime=trace,aws_sigv4=trace"] {
            let f = capped(asked.parse::<Targets>().expect("parses"));
            assert!(!f.would_enable("lambda_runtime::layers::api_response", &Level::TRACE), "{asked}");
            assert!(!f.would_enable("aws_sigv4::http_request::sign", &Level::TRACE), "{asked}");
        }
        let f = capped("trace".parse::<Targets>().expect("parses"));
        assert!(f.would_enable("aetherium::engine::dispatch", &Level::TRACE));
        assert!(f.would_enable("lambda_runtime::runtime", &Level::DEBUG));
        let f = capped("info,aetherium=debug".parse::<Targets>().expect("parses"));
        assert!(f.would_enable("aetherium::edge::api", &Level::DEBUG) && !f.would_enable("hyper", &Level::DEBUG));
    }
}
