//! The application context: config, backends and integrations, built once per cold start
//! and shared by every request. Backends are chosen from config here and nowhere else.

use crate::bus::{EventBus, MemoryBus, RedisBus};
use crate::config::{BusProvider, Config};
use crate::dispatch::Dispatcher;
use crate::error::BackendError;
use crate::integration::Registry;
use crate::queue::{MemoryQueue, SqsQueue, WorkQueue};
use crate::redis_conn::RedisHandle;
use crate::routes::Routes;
use crate::signature::HmacVerifier;
use crate::store::{MemoryStore, RedisStore, Store};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub bus: Arc<dyn EventBus>,
    pub queue: Arc<dyn WorkQueue>,
    pub store: Arc<dyn Store>,
    pub registry: Registry,
    /// Keyed with the GitHub webhook secret(s); `None` when none is configured.
    pub github_webhook: Option<HmacVerifier>,
}

impl App {
    /// Choose and build the backends the config names. No I/O happens here: Redis and SQS
    /// connect at first use, so a cold start pays only for what its requests touch.
    pub fn from_config(config: Config) -> Result<Self, BackendError> {
        let (bus, store): (Arc<dyn EventBus>, Arc<dyn Store>) = match (config.bus, &config.redis_url) {
            (BusProvider::Redis, Some(url)) => {
                let redis = RedisHandle::open(url.expose())?;
                (Arc::new(RedisBus::new(redis.clone())), Arc::new(RedisStore::new(redis)))
            }
            (BusProvider::Redis, None) => {
                return Err(BackendError::rejected("redis", "events.provider is redis but no Redis URL is configured"));
            }
            (BusProvider::Memory, _) => (Arc::new(MemoryBus::new()), Arc::new(MemoryStore::new())),
        };
        let queue: Arc<dyn WorkQueue> = match &config.queue_url {
            Some(url) => Arc::new(SqsQueue::from_env(url.clone())),
            None => Arc::new(MemoryQueue::default()),
        };
        Ok(Self::from_parts(config, bus, queue, store))
    }

    /// The dispatcher over this app's bus, store and routes.
    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(self.bus.clone(), self.store.clone(), self.routes())
    }

    /// The routes the dispatcher runs after publishing an event.
    pub fn routes(&self) -> Routes {
        Routes::default()
    }

    /// Build from explicit parts (tests, custom embeddings).
    pub fn from_parts(
        config: Config,
        bus: Arc<dyn EventBus>,
        queue: Arc<dyn WorkQueue>,
        store: Arc<dyn Store>,
    ) -> Self {
        let github_webhook =
            HmacVerifier::new(config.github.webhook_secret.iter().chain(&config.github.webhook_secret_previous));
        Self { config: Arc::new(config), bus, queue, store, registry: Registry::new(), github_webhook }
    }
}
