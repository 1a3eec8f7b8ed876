//! The health use case: what `/api/v1/health`, `/aetherium-status` and the dispatcher's
//! scheduled probe check, over the backends and integrations this function holds.

use crate::backends::bus::EventBus;
use crate::backends::queue::WorkQueue;
use crate::backends::store::Store;
use crate::model::integration::Registry;
use crate::observe::health::{self, Components, HealthCache, HealthReport};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub(super) registry: Registry,
    pub(super) bus: Arc<dyn EventBus>,
    pub(super) queue: Arc<dyn WorkQueue>,
    pub(super) store: Arc<dyn Store>,
    /// Recent results (the health route is public: its checks are rationed).
    pub(super) cache: Arc<HealthCache>,
    pub(super) remote: Arc<[String]>,
    pub(super) per_instance: bool,
    pub(super) bridge: bool,
}

impl HealthCheck {
    fn components(&self) -> Components<'_> {
        Components {
            registry: &self.registry,
            bus: self.bus.as_ref(),
            queue: self.queue.as_ref(),
            store: self.store.as_ref(),
            cache: &self.cache,
            remote: &self.remote,
            per_instance: self.per_instance,
            bridge: self.bridge,
        }
    }

    /// Every component, each check bounded by `deadline`.
    pub async fn check(&self, deadline: Duration) -> HealthReport {
        health::check(self.components(), deadline).await
    }

    /// Check the integrations held here now and share the results with the functions that
    /// hold no credentials (the dispatcher's scheduled probe).
    pub async fn probe_and_share(&self) -> HealthReport {
        health::probe_and_share(self.components()).await
    }
}
