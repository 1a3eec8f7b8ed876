//! One way to build outgoing HTTP clients: rustls on aws-lc-rs (the provider the AWS SDK
//! already links), webpki roots compiled in (no certificate store read at cold start).

use std::time::Duration;

pub fn user_agent() -> String {
    format!("aetherium-integrations/{}", env!("CARGO_PKG_VERSION"))
}

/// A builder with our user agent and connect timeout; reqwest's rustls has no crypto
/// provider of its own, so the process default is installed first (a second install is a
/// harmless no-op).
pub fn builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder().user_agent(user_agent()).connect_timeout(Duration::from_secs(3))
}

/// A client with default settings, for tools and tests.
pub fn client() -> reqwest::Client {
    builder().build().unwrap_or_default()
}
