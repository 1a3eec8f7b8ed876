//! The GitHub REST client: base URL for github.com or Enterprise Server, token or App auth,
//! the shared rate limit, retries of 5xx and timeouts, and GitHub's own rate-limit signals.

use super::app_auth::AppAuth;
use super::token_seal::TokenSeal;
use crate::backends::http_client::{Attempt, transport_failure, with_retries};
use crate::backends::ratelimit::{LimitError, RateLimiter};
use crate::backends::store::Store;
use crate::config::GithubConfig;
use crate::model::integration::IntegrationError;
use crate::model::secret::Secret;
use crate::observe::metrics::Metrics;
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub const API_VERSION: &str = "2022-11-28";
const ATTEMPTS: u32 = 3;
/// Refresh an installation token this long before GitHub expires it.
const TOKEN_MARGIN_SECS: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error("GitHub answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("GitHub asked to wait {retry_after:?} (rate limit)")]
    RateLimited { retry_after: Duration },
    #[error("GitHub is unreachable or failing: {0}")]
    Unavailable(String),
    #[error("GitHub App authentication failed: {0}")]
    Auth(String),
}

impl From<GithubError> for IntegrationError {
    fn from(e: GithubError) -> Self {
        let integration = "github".to_owned();
        match e {
            GithubError::RateLimited { retry_after } => {
                IntegrationError::Transient { integration, reason: e.to_string(), retry_after: Some(retry_after) }
            }
            GithubError::Unavailable(_) => {
                IntegrationError::Transient { integration, reason: e.to_string(), retry_after: None }
            }
            GithubError::Status { status, message } => IntegrationError::Rejected { integration, status, message },
            GithubError::Auth(reason) => IntegrationError::Permanent { integration, reason },
        }
    }
}

/// Which owner/repo a call concerns: a GitHub App finds its installation from it.
pub use crate::model::repo::RepoName as Repo;

/// Whose credentials a call carries.
#[derive(Debug, Clone, Copy)]
pub enum As<'a> {
    /// The token, or the App's installation token (found from the repository when needed).
    Installation(Option<&'a Repo>),
    /// The App itself: a JWT.
    App,
}

/// A successful answer and, for a list, where its next page starts.
#[derive(Debug)]
struct Reply {
    body: Value,
    next_cursor: Option<String>,
}

/// One page of a list, and the cursor of the next one from GitHub's `Link` header.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Value>,
    /// As GitHub wrote it in the next page's URL (already URL-encoded).
    pub next_cursor: Option<String>,
}

impl Page {
    fn from_reply(reply: Reply) -> Result<Self, GithubError> {
        match reply.body {
            Value::Array(items) => Ok(Self { items, next_cursor: reply.next_cursor }),
            _ => Err(GithubError::Unavailable("GitHub answered a list request without a list".into())),
        }
    }
}

#[derive(Debug)]
enum Auth {
    Token(Secret),
    App(AppAuth),
}

#[derive(Serialize, Deserialize)]
struct CachedToken {
    token: String,
    expires_at: i64,
}

#[derive(Debug)]
pub struct GithubClient {
    base: String,
    auth: Auth,
    limiter: RateLimiter,
    store: Arc<dyn Store>,
    timeout: Duration,
    metrics: Metrics,
    // Built at first use: a function that never calls GitHub never pays for it.
    http: OnceLock<reqwest::Client>,
    /// Signs the hidden markers of our comments ([`Self::marker_key`]).
    marker_key: [u8; 32],
    /// Seals the installation tokens shared through the store (an App only).
    token_seal: Option<TokenSeal>,
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

impl GithubClient {
    /// `Ok(None)` when no credentials are configured. A key that cannot be read is an error
    /// naming the setting.
    pub fn from_config(cfg: &GithubConfig, store: Arc<dyn Store>) -> Result<Option<Self>, String> {
        let auth = match (&cfg.token, cfg.app_id, &cfg.private_key) {
            (_, Some(app_id), Some(pem)) => Auth::App(
                AppAuth::new(app_id, pem.expose(), cfg.installation_id)
                    .map_err(|e| format!("integrations.github.private_key (GITHUB_APP_PRIVATE_KEY): {e}"))?,
            ),
            (Some(token), _, _) => Auth::Token(token.clone()),
            _ => return Ok(None),
        };
        let limiter = RateLimiter::new(store.clone(), "github", cfg.requests_per_second, Duration::from_secs(10));
        let marker_key = {
            use sha2::{Digest, Sha256};
            let credential = match (&cfg.token, &cfg.private_key) {
                (_, Some(pem)) if cfg.app_id.is_some() => pem.expose().to_owned(),
                (Some(token), _) => token.expose().to_owned(),
                _ => String::new(),
            };
            Sha256::new()
                .chain_update(b"aetherium comment marker\0")
                .chain_update(credential.as_bytes())
                .finalize()
                .into()
        };
        let token_seal = match (&auth, &cfg.private_key) {
            (Auth::App(_), Some(pem)) => Some(
                TokenSeal::from_secret(pem.expose().as_bytes())
                    .ok_or("integrations.github.private_key (GITHUB_APP_PRIVATE_KEY): no cache key derives from it")?,
            ),
            _ => None,
        };
        Ok(Some(Self {
            marker_key,
            token_seal,
            base: cfg.base_url.trim_end_matches('/').to_owned(),
            auth,
            limiter,
            metrics: Metrics::new(store.clone()),
            store,
            timeout: Duration::from_millis(cfg.timeout_ms),
            http: OnceLock::new(),
        }))
    }

    /// The key of our comments' hidden markers, derived from the credentials only these
    /// functions hold: a marker someone else posts cannot carry a valid one.
    pub fn marker_key(&self) -> &[u8; 32] {
        &self.marker_key
    }

    /// Per-request timeout (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn is_app(&self) -> bool {
        matches!(self.auth, Auth::App(_))
    }

    fn http(&self) -> &reqwest::Client {
        self.http
            .get_or_init(|| crate::backends::http_client::builder().timeout(self.timeout).build().unwrap_or_default())
    }

    /// `op` names the call in the `integration_requests_total` metric (`create_pr`, ...).
    pub async fn get(&self, op: &str, path: &str, repo: Option<&Repo>) -> Result<Value, GithubError> {
        self.counted(op, self.call(Method::GET, path, None, As::Installation(repo))).await.map(|r| r.body)
    }

    pub async fn post(&self, op: &str, path: &str, body: &Value, repo: Option<&Repo>) -> Result<Value, GithubError> {
        self.counted(op, self.call(Method::POST, path, Some(body), As::Installation(repo))).await.map(|r| r.body)
    }

    /// One page of a list, with the cursor of the next.
    pub async fn get_page(&self, op: &str, path: &str, who: As<'_>) -> Result<Page, GithubError> {
        Page::from_reply(self.counted(op, self.call(Method::GET, path, None, who)).await?)
    }

    /// A POST without a body (GitHub's actions such as a redelivery attempt).
    pub async fn post_empty(&self, op: &str, path: &str, who: As<'_>) -> Result<Value, GithubError> {
        self.counted(op, self.call(Method::POST, path, None, who)).await.map(|r| r.body)
    }

    async fn counted<T>(
        &self,
        op: &str,
        call: impl std::future::Future<Output = Result<T, GithubError>>,
    ) -> Result<T, GithubError> {
        let result = call.await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(GithubError::RateLimited { .. }) => "rate_limited",
            Err(GithubError::Unavailable(_)) => "unavailable",
            Err(_) => "error",
        };
        self.metrics
            .incr(crate::observe::metrics::REQUESTS, &[("integration", "github"), ("method", op), ("outcome", outcome)])
            .await;
        result
    }

    /// A health probe: one attempt, outside the shared rate limit, so that checks never take
    /// the slots PR comments wait for (the health route is public; its results are cached).
    /// An App without an installation checks its own credentials (`GET /app`).
    pub async fn probe(&self) -> Result<Value, GithubError> {
        let (op, path, bearer) = match &self.auth {
            Auth::App(app) if app.installation_id.is_none() => {
                ("app", "/app", Secret::new(app.jwt(now_unix()).map_err(GithubError::Auth)?))
            }
            _ => ("rate_limit", "/rate_limit", self.token(None, false).await?),
        };
        self.counted(op, self.send(1, Method::GET, path, None, bearer.expose())).await.map(|r| r.body)
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>, who: As<'_>) -> Result<Reply, GithubError> {
        self.limiter.acquire().await.map_err(|e| match e {
            LimitError::Saturated { .. } => GithubError::RateLimited { retry_after: Duration::from_secs(1) },
            LimitError::Held { retry_after, .. } => GithubError::RateLimited { retry_after },
            LimitError::Backend(b) => GithubError::Unavailable(format!("rate limiter store: {b}")),
        })?;
        let repo = match who {
            As::Installation(repo) => repo,
            As::App => {
                let Auth::App(app) = &self.auth else {
                    return Err(GithubError::Auth(format!("{path} needs GitHub App credentials, not a token")));
                };
                // A JWT is minted per call: it is cheap, and never outlives its ten minutes.
                let jwt = app.jwt(now_unix()).map_err(GithubError::Auth)?;
                return self.send_with_retries(method, path, body, &jwt).await;
            }
        };
        let token = self.token(repo, false).await?;
        match self.send_with_retries(method.clone(), path, body, token.expose()).await {
            // An installation token revoked or expired early: mint a new one, once.
            Err(GithubError::Status { status: 401, .. }) if self.is_app() => {
                tracing::info!("GitHub answered 401; refreshing the installation token once");
                let token = self.token(repo, true).await?;
                self.send_with_retries(method, path, body, token.expose()).await
            }
            other => other,
        }
    }

    async fn send_with_retries(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        bearer: &str,
    ) -> Result<Reply, GithubError> {
        self.send(ATTEMPTS, method, path, body, bearer).await
    }

    async fn send(
        &self,
        attempts: u32,
        method: Method,
        path: &str,
        body: Option<&Value>,
        bearer: &str,
    ) -> Result<Reply, GithubError> {
        let url = format!("{}{path}", self.base);
        // The path without its query, for logs and error messages.
        let what = format!("{method} {}", path.split('?').next().unwrap_or_default());
        let outcome = with_retries(attempts, &what, || async {
            let mut req = self
                .http()
                .request(method.clone(), &url)
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", API_VERSION)
                .bearer_auth(bearer);
            match body {
                Some(b) => req = req.json(b),
                // reqwest sends no length for a request without a body, and GitHub's front
                // answers such a POST (the token mint, a redelivery attempt) 411 Length Required.
                None if says_length(&method) => req = req.header(reqwest::header::CONTENT_LENGTH, "0"),
                None => {}
            }
            let resp = match req.send().await {
                Ok(resp) => resp,
                Err(e) => return Attempt::Retry(transport_failure(&e)),
            };
            let status = resp.status();
            let headers = resp.headers().clone();
            let text = resp.text().await.unwrap_or_default();
            if status.is_success() {
                return Attempt::Done(Ok(Reply {
                    body: serde_json::from_str(&text).unwrap_or(Value::Null),
                    next_cursor: next_cursor(&headers),
                }));
            }
            if let Some(retry_after) = rate_limit_wait(status, &headers) {
                return Attempt::Done(Err(GithubError::RateLimited { retry_after }));
            }
            let message = github_message(&text);
            if status.is_server_error() {
                return Attempt::Retry(format!("{} {message}", status.as_u16()));
            }
            Attempt::Done(Err(GithubError::Status { status: status.as_u16(), message }))
        })
        .await;
        // GitHub's wait holds every GitHub call of every instance, this one's later runs too.
        if let Ok(Err(GithubError::RateLimited { retry_after })) = &outcome
            && let Err(error) = self.limiter.hold(*retry_after).await
        {
            tracing::warn!(%error, "could not share GitHub's rate-limit wait; other instances may call before it passes");
        }
        outcome.map_err(GithubError::Unavailable)?
    }

    /// The bearer token for a call: the PAT, or an installation token from the shared cache
    /// (minted when missing, near expiry, or `force`d after a 401).
    async fn token(&self, repo: Option<&Repo>, force: bool) -> Result<Secret, GithubError> {
        let app = match &self.auth {
            Auth::Token(t) => return Ok(t.clone()),
            Auth::App(app) => app,
        };
        let installation = match (app.installation_id, repo) {
            (Some(id), _) => id,
            (None, Some(repo)) => self.discover_installation(app, repo).await?,
            (None, None) => {
                return Err(GithubError::Auth(
                    "no installation: set integrations.github.installation_id (GITHUB_APP_INSTALLATION_ID)".into(),
                ));
            }
        };
        let key = format!("github:token:{installation}");
        let seal = self.token_seal.as_ref();
        if !force
            && let Ok(Some(stored)) = self.store.get(&key).await
            && let Some(raw) = seal.and_then(|s| s.open(&key, &stored))
            && let Ok(cached) = serde_json::from_str::<CachedToken>(&raw)
            && cached.expires_at - now_unix() > TOKEN_MARGIN_SECS
        {
            return Ok(Secret::new(cached.token));
        }
        let jwt = app.jwt(now_unix()).map_err(GithubError::Auth)?;
        let minted = self
            .send_with_retries(Method::POST, &format!("/app/installations/{installation}/access_tokens"), None, &jwt)
            .await
            .map(|r| r.body)
            .map_err(|e| match e {
                GithubError::Status { status, message } => {
                    GithubError::Auth(format!("minting an installation token: {status} {message}"))
                }
                other => other,
            })?;
        let token = minted["token"].as_str().ok_or_else(|| GithubError::Auth("no token in GitHub's answer".into()))?;
        let expires_at = minted["expires_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(now_unix() + 3600, |t| t.timestamp());
        let ttl = (expires_at - now_unix() - TOKEN_MARGIN_SECS).max(1) as u64;
        let cached = serde_json::to_string(&CachedToken { token: token.to_owned(), expires_at }).unwrap_or_default();
        let Some(sealed) = seal.and_then(|s| s.seal(&key, &cached)) else {
            tracing::warn!("could not seal the installation token; it is not shared");
            return Ok(Secret::new(token));
        };
        if let Err(error) = self.store.set(&key, &sealed, Some(Duration::from_secs(ttl))).await {
            tracing::warn!(%error, "could not share the installation token; each instance will mint its own");
        }
        Ok(Secret::new(token))
    }

    async fn discover_installation(&self, app: &AppAuth, repo: &Repo) -> Result<u64, GithubError> {
        let key = format!("github:installation:{repo}");
        if let Ok(Some(id)) = self.store.get(&key).await
            && let Ok(id) = id.parse()
        {
            return Ok(id);
        }
        let jwt = app.jwt(now_unix()).map_err(GithubError::Auth)?;
        let found = self
            .send_with_retries(Method::GET, &format!("/repos/{repo}/installation"), None, &jwt)
            .await
            .map(|r| r.body)
            .map_err(|e| match e {
                GithubError::Status { status: 404, .. } => {
                    GithubError::Auth(format!("the GitHub App is not installed on {repo}"))
                }
                other => other,
            })?;
        let id =
            found["id"].as_u64().ok_or_else(|| GithubError::Auth("no installation id in GitHub's answer".into()))?;
        let _ = self.store.set(&key, &id.to_string(), Some(Duration::from_secs(24 * 3600))).await;
        Ok(id)
    }
}

/// GitHub's rate-limit signals: 429 or 403 with `retry-after`, or `x-ratelimit-remaining: 0`
/// with `x-ratelimit-reset` (a Unix time).
fn rate_limit_wait(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::FORBIDDEN {
        return None;
    }
    if let Some(wait) = crate::backends::http_client::retry_after(headers) {
        return Some(wait);
    }
    let header =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    if header("x-ratelimit-remaining") == Some(0) {
        let reset = header("x-ratelimit-reset").unwrap_or(now_unix() + 60);
        return Some(Duration::from_secs((reset - now_unix()).clamp(1, 3600) as u64));
    }
    // A 429 without guidance: GitHub documents waiting at least a minute.
    (status == StatusCode::TOO_MANY_REQUESTS).then_some(Duration::from_secs(60))
}

/// The `cursor` of the `rel="next"` URL in a `Link` header:
/// `<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_1>; rel="next"`. Only the
/// cursor is taken: the next request goes to our own base URL, never to a host a header names.
/// Whether a request of `method` must say its length even without a body (HTTP/1.1: a
/// POST, PUT or PATCH carries one, so the server waits for its framing).
fn says_length(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

fn next_cursor(headers: &HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.trim().strip_prefix('<')?.split_once('>')?;
        if !params.split(';').any(|p| p.trim() == "rel=\"next\"") {
            return None;
        }
        let query = url.split_once('?')?.1;
        query.split('&').find_map(|kv| kv.strip_prefix("cursor=")).filter(|c| !c.is_empty()).map(str::to_owned)
    })
}

fn github_message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut msg = v["message"].as_str().unwrap_or("no message").to_owned();
    if let Some(errors) = v["errors"].as_array() {
        let details: Vec<String> = errors
            .iter()
            .filter_map(|e| e["message"].as_str().or_else(|| e["code"].as_str()).map(str::to_owned))
            .collect();
        if !details.is_empty() {
            msg = format!("{msg}: {}", details.join("; "));
        }
    }
    msg.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("link", value.parse().expect("header"));
        h
    }

    #[test]
    fn the_next_cursor_comes_from_the_rel_next_link_only() {
        let both = r#"<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_9>; rel="next", <https://api.github.com/app/hook/deliveries?per_page=100>; rel="prev""#;
        assert_eq!(next_cursor(&link(both)).as_deref(), Some("v1_9"));
        let prev_only = r#"<https://api.github.com/app/hook/deliveries?cursor=v1_1>; rel="prev""#;
        assert_eq!(next_cursor(&link(prev_only)), None);
        assert_eq!(next_cursor(&HeaderMap::new()), None);
        let first = r#"<https://x/y?cursor=v1_2&per_page=100>; rel="next""#;
        assert_eq!(next_cursor(&link(first)).as_deref(), Some("v1_2"));
    }
}
