//! One way to build outgoing HTTP clients: rustls on aws-lc-rs (the provider the AWS SDK
//! already links), webpki roots compiled in (no certificate store read at cold start).

use std::time::Duration;

pub fn user_agent() -> String {
    format!("aetherium-integrations/{}", env!("CARGO_PKG_VERSION"))
}

/// rustls's process-wide crypto provider: aws-lc-rs. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A builder with our user agent and connect timeout; reqwest's rustls has no crypto
/// provider of its own, so the process default is installed first (a second install is a
/// harmless no-op).
pub fn builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder().user_agent(user_agent()).connect_timeout(Duration::from_secs(3))
}

/// The longest wait a remote's `Retry-After` may ask for; longer asks are cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A `Retry-After` of whole seconds, clamped to 1 s..[`MAX_RETRY_AFTER`]: a remote must not
/// be able to park a record for years, or overflow a deadline computed from it.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).clamp(Duration::from_secs(1), MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_keep_scheme_host_and_only_an_apis_path() {
        let hook = "https://u:p@hooks.slack.com/actions/T1/42/secretpath?token=abc#frag";
        assert_eq!(redact_url(hook, false), "https://hooks.slack.com/…");
        assert_eq!(redact_url(hook, true), "https://hooks.slack.com/actions/T1/42/secretpath");
        assert_eq!(redact_url("http://127.0.0.1:8080/", false), "http://127.0.0.1:8080");
        assert_eq!(redact_url("not a url with a s3cret", true), "(not a URL)");
    }
}

/// A client with default settings, for tools and tests.
pub fn client() -> reqwest::Client {
    builder().build().unwrap_or_default()
}

/// What one attempt of a call came to.
#[derive(Debug)]
pub enum Attempt<T> {
    /// Finished, successfully or not: no retry.
    Done(T),
    /// A failure worth retrying (5xx, timeout, connection), with its reason.
    Retry(String),
}

/// Run `attempt` up to `attempts` times, sleeping with backoff and jitter (200 ms doubling,
/// capped at 2 s) between retries. `Err` holds the last reason when every attempt asked for a retry.
pub async fn with_retries<T, F, Fut>(attempts: u32, what: &str, mut attempt: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Attempt<T>>,
{
    let mut n = 0;
    loop {
        match attempt().await {
            Attempt::Done(v) => return Ok(v),
            Attempt::Retry(reason) => {
                n += 1;
                if n >= attempts {
                    return Err(format!("{what}: {reason} (after {attempts} attempts)"));
                }
                tracing::warn!(what, attempt = n, %reason, "call failed; retrying");
                tokio::time::sleep(crate::backends::backoff::delay(
                    n - 1,
                    Duration::from_millis(200),
                    Duration::from_secs(2),
                ))
                .await;
            }
        }
    }
}

/// The retry reason for a transport error. Never the URL: reqwest's own message carries the
/// whole of it, and a Slack response_url or a custom webhook's URL is a capability (whoever
/// has it may post). The causes below reqwest's error (hyper, io) do not carry it.
pub fn transport_failure(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_owned();
    }
    if e.is_connect() {
        return "connection failed".to_owned();
    }
    let mut reason = String::from("request failed");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        reason.push_str(": ");
        reason.push_str(&c.to_string());
        cause = c.source();
    }
    reason
}

/// A URL as logs and error messages may show it: scheme, host and port, and the path only
/// with `keep_path` (an API's path; never a capability URL's). Never the user, password,
/// query or fragment. Text that is not a URL is not shown at all.
pub fn redact_url(raw: &str, keep_path: bool) -> String {
    let Ok(url) = reqwest::Url::parse(raw.trim()) else { return "(not a URL)".to_owned() };
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    if keep_path {
        shown.push_str(url.path());
    } else if url.path() != "/" {
        shown.push_str("/…");
    }
    shown
}
