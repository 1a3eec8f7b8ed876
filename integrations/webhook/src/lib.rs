//! An example custom integration: every event routed to it is POSTed as JSON to a URL,
//! signed with the [Standard Webhooks](https://www.standardwebhooks.com/) scheme so the
//! receiver can verify it (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`).
//!
//! Enable it from the config, with no change to the framework:
//!
//! ```yaml
//! integrations:
//!   audit-hook:
//!     type: webhook                      # picks this factory; defaults to the section's name
//!     url: https://example.com/hooks/aetherium
//!     secret: ${AUDIT_WEBHOOK_SECRET}    # whsec_<base64>, as Standard Webhooks issues them
//! routes:
//!   - on: task.*
//!     handle: audit-hook
//! ```
//!
//! docs/integrations.md walks through how it is built.

mod signing;

pub use signing::{sign, verify};

use aetherium::model::integration::{Health, Integration, IntegrationConfig, IntegrationError, IntegrationFactory};
use aetherium::{Artifact, ArtifactRef, Event, Notification};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Registers the `webhook` type; binaries pass it to `App::build(Needs::all(..))`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookFactory;

impl IntegrationFactory for WebhookFactory {
    fn kind(&self) -> &str {
        "webhook"
    }

    fn build(&self, name: &str, config: &IntegrationConfig) -> Result<Arc<dyn Integration>, String> {
        Ok(Arc::new(Webhook::from_options(name, &config.options)?))
    }
}

pub struct Webhook {
    name: String,
    url: String,
    /// The HMAC key: the base64 part of `whsec_...`, decoded.
    key: signing::Key,
    timeout: Duration,
    http: OnceLock<reqwest::Client>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may be a capability (a path or query that lets whoever holds it post).
        let url = aetherium::backends::http_client::redact_url(&self.url, false);
        f.debug_struct("Webhook").field("name", &self.name).field("url", &url).finish_non_exhaustive()
    }
}

impl Webhook {
    /// Options: `url` (http or https), `secret` (`whsec_<base64>`), `timeout_ms` (default 5000).
    pub fn from_options(name: &str, options: &serde_json::Map<String, Value>) -> Result<Self, String> {
        let url = options.get("url").and_then(Value::as_str).filter(|u| !u.is_empty()).ok_or("`url` is required")?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!(
                "`url` `{}` is not an http(s) URL",
                aetherium::backends::http_client::redact_url(url, false)
            ));
        }
        let secret =
            options.get("secret").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or("`secret` is required")?;
        let key = signing::decode_secret(secret)?;
        let timeout = options.get("timeout_ms").and_then(Value::as_u64).unwrap_or(5000);
        Ok(Self {
            name: name.to_owned(),
            url: url.to_owned(),
            key,
            timeout: Duration::from_millis(timeout),
            http: OnceLock::new(),
        })
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            aetherium::backends::http_client::builder().timeout(self.timeout).build().unwrap_or_default()
        })
    }

    fn transient(&self, reason: String, retry_after: Option<Duration>) -> IntegrationError {
        IntegrationError::Transient { integration: self.name.clone(), reason, retry_after }
    }

    /// Deliver one signed message. `id` is the webhook-id: receivers dedup on it.
    async fn deliver(&self, id: &str, body: &Value) -> Result<(), IntegrationError> {
        let payload = body.to_string();
        let timestamp = chrono_now();
        let signature = sign(self.key.bytes(), id, timestamp, payload.as_bytes());
        let sent = self
            .http()
            .post(&self.url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(payload)
            .send()
            .await;
        let resp = sent.map_err(|e| self.transient(aetherium::backends::http_client::transport_failure(&e), None))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        if status.as_u16() == 429 || status.is_server_error() {
            let after = aetherium::backends::http_client::retry_after(resp.headers());
            return Err(self.transient(format!("the receiver answered {}", status.as_u16()), after));
        }
        Err(IntegrationError::Rejected {
            integration: self.name.clone(),
            status: status.as_u16(),
            message: "the receiver refused the delivery".into(),
        })
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[async_trait]
impl Integration for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    async fn initialize(&self, _config: &IntegrationConfig) -> Result<(), IntegrationError> {
        // Everything was checked when the factory built it; nothing to connect to up front.
        Ok(())
    }

    async fn handle_event(&self, event: &Event) -> Result<(), IntegrationError> {
        let body = json!({ "type": event.kind, "timestamp": event.timestamp, "data": event.data, "id": event.id, "source": event.source });
        self.deliver(&event.id, &body).await
    }

    async fn send_notification(&self, n: &Notification) -> Result<(), IntegrationError> {
        let body = json!({ "type": "notification", "target": n.target, "message": n.message, "data": n.data });
        self.deliver(&format!("msg_{}", uuid::Uuid::new_v4().simple()), &body).await
    }

    async fn create_artifact(&self, artifact: &Artifact) -> Result<ArtifactRef, IntegrationError> {
        Err(IntegrationError::unsupported(&self.name, format!("artifacts (of type `{}`)", artifact.kind)))
    }

    async fn health(&self) -> Health {
        // Configured and valid; receivers rarely offer a cheap authenticated check.
        Health::Healthy
    }
}
