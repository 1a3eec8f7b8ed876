//! The integration interface of the guide and the registry that holds the enabled ones.

use crate::model::event::{Artifact, ArtifactRef, Event, Notification};
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The state of one component, as the health route and `/aetherium-status` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// The reason must be safe to show: no secret, token or internal address.
    Unhealthy(String),
    Disabled,
}

impl Health {
    pub fn is_ok(&self) -> bool {
        !matches!(self, Health::Unhealthy(_))
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Healthy => f.write_str("healthy"),
            Health::Unhealthy(reason) => write!(f, "unhealthy: {reason}"),
            Health::Disabled => f.write_str("disabled"),
        }
    }
}

/// Why an integration operation failed, classified so the dispatcher knows whether to retry.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    /// Worth retrying (5xx, timeouts, a backend down); `retry_after` when the remote said.
    #[error("{integration}: temporary failure: {reason}")]
    Transient { integration: String, reason: String, retry_after: Option<Duration> },
    /// Retrying cannot help (4xx, invalid input): logged, not retried.
    #[error("{integration}: {reason}")]
    Permanent { integration: String, reason: String },
    /// The remote refused the request with this HTTP status (4xx): permanent.
    #[error("{integration} answered {status}: {message}")]
    Rejected { integration: String, status: u16, message: String },
    /// The integration does not offer this operation or this kind of input.
    #[error("{integration} does not support {what}")]
    Unsupported { integration: String, what: String },
    #[error("{integration} is not configured: {reason}")]
    NotConfigured { integration: String, reason: String },
}

impl IntegrationError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    pub fn unsupported(integration: &str, what: impl Into<String>) -> Self {
        Self::Unsupported { integration: integration.to_owned(), what: what.into() }
    }
}

/// The settings an integration receives at `initialize`: its own section of the config.
#[derive(Clone, Default)]
pub struct IntegrationConfig {
    pub enabled: bool,
    /// Every other key of `integrations.<name>`, after `${VAR}` interpolation.
    pub options: Map<String, Value>,
}

/// Option names only: which of a custom integration's values are secrets (a signing key, a
/// capability URL, a token under any name) is known to the integration alone.
impl fmt::Debug for IntegrationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a Map<String, Value>);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map().entries(self.0.keys().map(|k| (k, format_args!("[redacted]")))).finish()
            }
        }
        f.debug_struct("IntegrationConfig")
            .field("enabled", &self.enabled)
            .field("options", &Redacted(&self.options))
            .finish()
    }
}

/// The guide's seven operations. Implementations are shared as `Arc<dyn Integration>`
/// between the dispatcher, the HTTP routes and the health checks.
#[async_trait]
pub trait Integration: Send + Sync + fmt::Debug {
    /// A stable lower-case name (`github`, `slack`); also its key in the config.
    fn name(&self) -> &str;

    /// Called once at start with the integration's config section.
    async fn initialize(&self, config: &IntegrationConfig) -> Result<(), IntegrationError>;

    /// React to an event routed to this integration.
    async fn handle_event(&self, event: &Event) -> Result<(), IntegrationError>;

    async fn send_notification(&self, notification: &Notification) -> Result<(), IntegrationError>;

    async fn create_artifact(&self, artifact: &Artifact) -> Result<ArtifactRef, IntegrationError>;

    /// A cheap check of the integration's credentials and reachability.
    async fn health(&self) -> Health;

    /// How the integration's messages are read, so that templated values are escaped for
    /// it: Slack mrkdwn, GitHub markdown, or plain data (the default).
    fn markup(&self) -> crate::model::markup::Markup {
        crate::model::markup::Markup::Plain
    }

    /// Release what `initialize` acquired. Called once, at shutdown.
    async fn close(&self) -> Result<(), IntegrationError> {
        Ok(())
    }
}

/// Builds a custom integration from its `integrations.<name>` section. A binary lists the
/// factories it links; the section's `type` (or, without one, its name) picks the factory.
pub trait IntegrationFactory: Send + Sync {
    /// The `type` this factory builds, such as `webhook`.
    fn kind(&self) -> &str;

    /// Build the integration named `name`; an error names what is wrong in its options.
    fn build(&self, name: &str, config: &IntegrationConfig) -> Result<Arc<dyn Integration>, String>;
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("an integration named `{0}` is already registered")]
    Duplicate(String),
}

/// The enabled integrations by name. Cheap to clone; clones share the same set.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<BTreeMap<String, Arc<dyn Integration>>>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&self, integration: Arc<dyn Integration>) -> Result<(), RegistryError> {
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let name = integration.name().to_owned();
        if map.contains_key(&name) {
            return Err(RegistryError::Duplicate(name));
        }
        map.insert(name, integration);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Integration>> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// Names in sorted order.
    pub fn list(&self) -> Vec<String> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    /// Every registered integration, sorted by name.
    pub fn all(&self) -> Vec<Arc<dyn Integration>> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Close every integration; all are closed even when some fail.
    pub async fn close_all(&self) -> Vec<(String, IntegrationError)> {
        let mut failures = Vec::new();
        for i in self.all() {
            if let Err(e) = i.close().await {
                failures.push((i.name().to_owned(), e));
            }
        }
        failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct Fake {
        name: &'static str,
        health: Health,
        hang: bool,
        closed: AtomicUsize,
    }

    impl Fake {
        fn new(name: &'static str, health: Health) -> Arc<Self> {
            Arc::new(Self { name, health, hang: false, closed: AtomicUsize::new(0) })
        }
    }

    #[async_trait]
    impl Integration for Fake {
        fn name(&self) -> &str {
            self.name
        }
        async fn initialize(&self, _: &IntegrationConfig) -> Result<(), IntegrationError> {
            Ok(())
        }
        async fn handle_event(&self, _: &Event) -> Result<(), IntegrationError> {
            Ok(())
        }
        async fn send_notification(&self, _: &Notification) -> Result<(), IntegrationError> {
            Err(IntegrationError::unsupported(self.name, "notifications"))
        }
        async fn create_artifact(&self, _: &Artifact) -> Result<ArtifactRef, IntegrationError> {
            Err(IntegrationError::unsupported(self.name, "artifacts"))
        }
        async fn health(&self) -> Health {
            if self.hang {
                std::future::pending::<()>().await;
            }
            self.health.clone()
        }
        async fn close(&self) -> Result<(), IntegrationError> {
            self.closed.fetch_add(1, Ordering::SeqCst);
            if self.name == "bad" {
                return Err(IntegrationError::Permanent { integration: "bad".into(), reason: "x".into() });
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn register_get_list_and_duplicates() {
        let r = Registry::new();
        r.register(Fake::new("slack", Health::Healthy)).expect("slack");
        r.register(Fake::new("github", Health::Disabled)).expect("github");
        assert!(
            matches!(r.register(Fake::new("github", Health::Healthy)), Err(RegistryError::Duplicate(n)) if n == "github")
        );
        assert_eq!(r.list(), vec!["github", "slack"]);
        assert_eq!(r.get("slack").map(|i| i.name().to_owned()), Some("slack".into()));
        assert!(r.get("jira").is_none());
    }

    #[tokio::test]
    async fn close_all_closes_every_one_and_reports_failures() {
        let r = Registry::new();
        let (a, b) = (Fake::new("bad", Health::Healthy), Fake::new("good", Health::Healthy));
        r.register(a.clone()).expect("reg");
        r.register(b.clone()).expect("reg");
        let failures = r.close_all().await;
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].0, "bad");
        assert_eq!(a.closed.load(Ordering::SeqCst) + b.closed.load(Ordering::SeqCst), 2);
    }
}
