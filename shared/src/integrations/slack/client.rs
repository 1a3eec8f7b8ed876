//! The Slack Web API client: bot token, JSON bodies, Slack's `ok: false` as a permanent
//! error with Slack's code, 429 with Retry-After, 5xx retried, messages to one channel paced
//! to one a second across every instance.

use crate::backends::http_client::{Attempt, transport_failure, with_retries};
use crate::backends::ratelimit::{LimitError, RateLimiter};
use crate::backends::store::{Store, Write};
use crate::config::SlackConfig;
use crate::model::integration::IntegrationError;
use crate::model::secret::Secret;
use crate::observe::activity::ActivityLog;
use crate::observe::metrics::Metrics;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// Slack answered `ok: false`.
    #[error("Slack refused the call: {0}")]
    Api(String),
    #[error("Slack asked to wait {retry_after:?} (rate limit)")]
    RateLimited { retry_after: Duration },
    #[error("Slack is unreachable or failing: {0}")]
    Unavailable(String),
    #[error("refused to call response_url: {0}")]
    ForbiddenUrl(String),
}

impl From<&SlackError> for IntegrationError {
    fn from(e: &SlackError) -> Self {
        let integration = "slack".to_owned();
        match e {
            SlackError::RateLimited { retry_after } => {
                IntegrationError::Transient { integration, reason: e.to_string(), retry_after: Some(*retry_after) }
            }
            SlackError::Unavailable(_) => {
                IntegrationError::Transient { integration, reason: e.to_string(), retry_after: None }
            }
            SlackError::Api(_) | SlackError::ForbiddenUrl(_) => {
                IntegrationError::Permanent { integration, reason: e.to_string() }
            }
        }
    }
}

impl From<SlackError> for IntegrationError {
    fn from(e: SlackError) -> Self {
        Self::from(&e)
    }
}

/// A button of an interactive message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Button {
    pub text: String,
    pub action_id: String,
    pub value: String,
}

#[derive(Debug)]
pub struct SlackClient {
    base: String,
    /// `chat.postMessage`'s URL, parsed once: it is on every notification's path.
    post_message_url: Option<reqwest::Url>,
    token: Secret,
    store: Arc<dyn Store>,
    /// `scheme://host` that response_url must start with (`https://hooks.slack.com`).
    response_base: String,
    timeout: Duration,
    metrics: Metrics,
    http: OnceLock<reqwest::Client>,
}

impl SlackClient {
    /// `None` without a bot token.
    pub fn from_config(cfg: &SlackConfig, store: Arc<dyn Store>) -> Option<Self> {
        Some(Self {
            base: cfg.base_url.trim_end_matches('/').to_owned(),
            post_message_url: reqwest::Url::parse(&format!("{}/chat.postMessage", cfg.base_url.trim_end_matches('/')))
                .ok(),
            token: cfg.bot_token.clone()?,
            metrics: Metrics::new(store.clone()),
            store,
            response_base: cfg.response_url_base.trim_end_matches('/').to_owned(),
            timeout: Duration::from_secs(10),
            http: OnceLock::new(),
        })
    }

    fn http(&self) -> &reqwest::Client {
        self.http
            .get_or_init(|| crate::backends::http_client::builder().timeout(self.timeout).build().unwrap_or_default())
    }

    /// A health probe (`auth.test`): one attempt, counted like any call.
    pub async fn probe(&self) -> Result<Value, SlackError> {
        self.call_noted(1, "auth.test", &json!({}), None).await
    }

    /// Call a Web API method (`chat.postMessage`) with a JSON body, in up to `attempts`, and
    /// with an activity-log line saying how `what` went: the line and the request counter are
    /// written in one round trip.
    async fn call_noted(
        &self,
        attempts: u32,
        method: &str,
        body: &Value,
        what: Option<&str>,
    ) -> Result<Value, SlackError> {
        let result = self.call_attempts(attempts, method, body).await;
        let mut writes = vec![self.count_op(method, result.as_ref().map(drop))];
        if let Some(what) = what {
            let error = result.as_ref().err().map(IntegrationError::from);
            writes.push(ActivityLog::outcome_op("slack", what, error.as_ref().map_or(Ok(()), Err), None));
        }
        self.record(&writes).await;
        result
    }

    /// The request counter and activity lines; a store failure never fails the call.
    async fn record(&self, writes: &[Write]) {
        if let Err(error) = self.store.apply(writes).await {
            tracing::debug!(%error, "Slack call not recorded");
        }
    }

    fn count_op(&self, method: &str, result: Result<(), &SlackError>) -> Write {
        let outcome = match result {
            Ok(()) => "ok",
            Err(SlackError::RateLimited { .. }) => "rate_limited",
            Err(SlackError::Unavailable(_)) => "unavailable",
            Err(_) => "error",
        };
        self.metrics.op(
            crate::observe::metrics::REQUESTS,
            &[("integration", "slack"), ("method", method), ("outcome", outcome)],
        )
    }

    async fn call_attempts(&self, attempts: u32, method: &str, body: &Value) -> Result<Value, SlackError> {
        let url = match &self.post_message_url {
            Some(url) if method == "chat.postMessage" => url.clone(),
            _ => reqwest::Url::parse(&format!("{}/{method}", self.base))
                .map_err(|e| SlackError::Unavailable(format!("SLACK_API_URL is not a URL: {e}")))?,
        };
        let outcome = with_retries(attempts, method, || async {
            let sent = self
                .http()
                .post(url.clone())
                .bearer_auth(self.token.expose())
                .header("content-type", "application/json; charset=utf-8")
                .body(body.to_string())
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => return Attempt::Retry(transport_failure(&e)),
            };
            let status = resp.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let retry_after =
                    crate::backends::http_client::retry_after(resp.headers()).unwrap_or(Duration::from_secs(30));
                return Attempt::Done(Err(SlackError::RateLimited { retry_after }));
            }
            if status.is_server_error() {
                return Attempt::Retry(format!("HTTP {}", status.as_u16()));
            }
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            if v["ok"].as_bool() == Some(true) {
                return Attempt::Done(Ok(v));
            }
            let code = v["error"].as_str().map_or_else(|| format!("HTTP {}", status.as_u16()), str::to_owned);
            Attempt::Done(Err(SlackError::Api(code)))
        })
        .await;
        outcome.map_err(SlackError::Unavailable)?
    }

    /// `chat.postMessage`, paced to about one message a second per channel across instances.
    /// How it went is written to the activity log.
    pub async fn post_message(&self, channel: &str, text: &str, blocks: Option<Value>) -> Result<Value, SlackError> {
        let what = format!("{} {channel}", if blocks.is_some() { "interactive message to" } else { "message to" });
        let limiter = RateLimiter::new(self.store.clone(), format!("slack:{channel}"), 1, Duration::from_secs(5));
        if let Err(e) = limiter.acquire().await {
            let e = match e {
                LimitError::Saturated { .. } => SlackError::RateLimited { retry_after: Duration::from_secs(2) },
                LimitError::Held { retry_after, .. } => SlackError::RateLimited { retry_after },
                LimitError::Backend(b) => SlackError::Unavailable(format!("pacing store: {b}")),
            };
            // No request was made, so none is counted.
            self.record(&[ActivityLog::outcome_op("slack", &what, Err(&IntegrationError::from(&e)), None)]).await;
            return Err(e);
        }
        let mut body = json!({ "channel": channel, "text": text });
        if let Some(b) = blocks {
            body["blocks"] = b;
        }
        self.call_noted(ATTEMPTS, "chat.postMessage", &body, Some(&what)).await
    }

    /// The guide's interactive message: a section with the text and a button per action.
    pub async fn send_interactive_message(
        &self,
        channel: &str,
        text: &str,
        buttons: &[Button],
    ) -> Result<Value, SlackError> {
        let elements: Vec<Value> = buttons
            .iter()
            .map(|b| {
                json!({
                    "type": "button",
                    "text": { "type": "plain_text", "text": b.text },
                    "action_id": b.action_id,
                    "value": b.value,
                })
            })
            .collect();
        let blocks = json!([
            { "type": "section", "text": { "type": "mrkdwn", "text": text } },
            { "type": "actions", "elements": elements },
        ]);
        self.post_message(channel, text, Some(blocks)).await
    }

    /// Whether `url` is a response_url we may call: the configured scheme and host exactly.
    pub fn response_url_allowed(&self, url: &str) -> bool {
        url.strip_prefix(&self.response_base).is_some_and(|rest| rest.starts_with('/'))
    }

    /// POST a follow-up to an interaction's response_url (only to the allowed host).
    pub async fn respond(&self, response_url: &str, body: &Value) -> Result<(), SlackError> {
        if !self.response_url_allowed(response_url) {
            tracing::warn!(allowed = %self.response_base, "refusing a response_url outside the allowed host");
            return Err(SlackError::ForbiddenUrl(format!("only {} is allowed", self.response_base)));
        }
        let outcome: Result<Result<(), SlackError>, String> = with_retries(ATTEMPTS, "response_url", || async {
            match self.http().post(response_url).json(body).send().await {
                Err(e) => Attempt::Retry(transport_failure(&e)),
                Ok(r) if r.status().is_server_error() => Attempt::Retry(format!("HTTP {}", r.status().as_u16())),
                Ok(r) if r.status().is_success() => Attempt::Done(Ok(())),
                Ok(r) => {
                    Attempt::Done(Err(SlackError::Api(format!("response_url answered HTTP {}", r.status().as_u16()))))
                }
            }
        })
        .await;
        let result = outcome.map_err(SlackError::Unavailable).and_then(|r| r);
        self.record(&[self.count_op("response_url", result.as_ref().map(drop))]).await;
        result
    }
}
