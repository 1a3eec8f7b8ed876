//! The system's health: every integration and backend, checked concurrently under one
//! deadline, so a hung component answers "timed out" instead of hanging the caller.

use crate::app::App;
use crate::error::BackendError;
use crate::integration::Health;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// `ok` when nothing is unhealthy, else `degraded`.
    pub status: &'static str,
    pub components: BTreeMap<String, String>,
}

impl HealthReport {
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

async fn backend(deadline: Duration, check: impl Future<Output = Result<(), BackendError>>) -> Health {
    match tokio::time::timeout(deadline, check).await {
        Ok(Ok(())) => Health::Healthy,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "backend health check failed");
            Health::Unhealthy(e.public_reason().to_owned())
        }
        Err(_) => Health::Unhealthy("timed out".to_owned()),
    }
}

/// Components: `github`, `slack`, `event_bus`, `queue`, and any other registered
/// integration. An integration that is not registered is `disabled`.
pub async fn check(app: &App, deadline: Duration) -> HealthReport {
    let (integrations, bus, queue) = tokio::join!(
        app.registry.health(deadline),
        backend(deadline, app.bus.health()),
        backend(deadline, app.queue.health()),
    );
    let mut components: BTreeMap<String, Health> = BTreeMap::new();
    components.insert("github".into(), Health::Disabled);
    components.insert("slack".into(), Health::Disabled);
    components.extend(integrations);
    components.insert("event_bus".into(), bus);
    components.insert("queue".into(), queue);
    let ok = components.values().all(Health::is_ok);
    HealthReport {
        status: if ok { "ok" } else { "degraded" },
        components: components.into_iter().map(|(k, v)| (k, v.to_string())).collect(),
    }
}
