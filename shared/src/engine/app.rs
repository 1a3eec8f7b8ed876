//! The application: config, backends and integrations composed once per cold start, and the
//! services built from them ([`App::ingest`], [`App::dispatcher`], [`App::redeliverer`],
//! [`App::health`]). Backends are chosen from config here and nowhere else; nothing outside
//! reaches the parts themselves.

use crate::backends::bus::{EventBus, Inbox, MemoryBus, RedisBus, RedisInbox};
use crate::backends::error::BackendError;
use crate::backends::queue::{MemoryQueue, SqsQueue, WorkQueue};
use crate::backends::redis_conn::RedisHandle;
use crate::backends::store::{MemoryStore, RedisStore, Store};
use crate::config::{BusProvider, Config};
use crate::engine::bridge::Bridge;
use crate::engine::clock::Clock;
use crate::engine::commands::Commands;
use crate::engine::dispatch::Dispatcher;
use crate::engine::health::HealthCheck;
use crate::engine::ingest::{Enqueue, Ingest};
use crate::engine::redeliver::{RedeliverError, Redeliverer};
use crate::engine::routes::{self, Routes};
use crate::integrations::github::{GithubClient, GithubIntegration, GithubSource};
use crate::integrations::slack::{SlackClient, SlackIntegration, SlackSource};
use crate::integrations::source::WebhookSource;
use crate::model::integration::{Integration, IntegrationError, IntegrationFactory, Registry};
use crate::model::secret::Secret;
use crate::observe::activity::ActivityLog;
use crate::observe::health::HealthCache;
use crate::observe::metrics::Metrics;
use std::sync::Arc;

/// Why the application could not be built at start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is unusable; the message names it.
    #[error("{0}")]
    Setting(String),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Which integrations a function builds: only those its requests use, so that a cold start
/// pays for nothing else (github-webhook builds none).
#[derive(Clone, Copy)]
pub struct Needs<'a> {
    github: bool,
    slack: bool,
    /// The custom integrations' factories; with them, every route is checked too.
    custom: Option<&'a [&'a dyn IntegrationFactory]>,
}

impl std::fmt::Debug for Needs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let custom: Option<Vec<&str>> = self.custom.map(|fs| fs.iter().map(|f| f.kind()).collect());
        f.debug_struct("Needs")
            .field("github", &self.github)
            .field("slack", &self.slack)
            .field("custom", &custom)
            .finish()
    }
}

impl<'a> Needs<'a> {
    /// No integration: the webhooks' ingest, the platform events, the logs, the metrics.
    pub const NONE: Needs<'static> = Needs { github: false, slack: false, custom: None };
    /// The GitHub integration alone (the pull-request endpoint).
    pub const GITHUB: Needs<'static> = Needs { github: true, slack: false, custom: None };
    /// GitHub and Slack, without custom integrations or the routes' check.
    pub const BUILTIN: Needs<'static> = Needs { github: true, slack: true, custom: None };

    /// Every integration the config enables, the custom ones built by `factories`; every
    /// route's integration must then exist (the dispatcher, the health checks).
    pub fn all(factories: &'a [&'a dyn IntegrationFactory]) -> Self {
        Self { github: true, slack: true, custom: Some(factories) }
    }
}

/// How the internal endpoints authenticate their callers.
#[derive(Debug, Clone, Copy)]
pub struct InternalAuth<'a> {
    /// `AETHERIUM_API_TOKEN`; `None` fails closed.
    pub token: Option<&'a Secret>,
    /// Whether this function's URL is AWS_IAM, so an IAM identity in the envelope counts.
    pub iam_url: bool,
}

/// What the app runs on, for a long-running host's start-up banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub bus: &'static str,
    pub store: &'static str,
    pub queue: &'static str,
    pub integrations: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct App {
    config: Arc<Config>,
    bus: Arc<dyn EventBus>,
    queue: Arc<dyn WorkQueue>,
    store: Arc<dyn Store>,
    registry: Registry,
    /// Recent health results (the health route is public: its checks are rationed).
    health: Arc<HealthCache>,
    /// What replay windows are measured against.
    clock: Clock,
    /// Built once: its sources hold the keyed verifiers.
    ingest: Ingest,
    /// The durable way in beside pub/sub, when the bus is Redis.
    inbox: Option<Arc<dyn Inbox>>,
}

impl App {
    /// Choose and build the backends the config names; no integration yet ([`App::build`]).
    /// No I/O happens here: Redis and SQS connect at first use, so a cold start pays only
    /// for what its requests touch.
    pub fn from_config(config: Config) -> Result<Self, StartupError> {
        let mut inbox: Option<Arc<dyn Inbox>> = None;
        let (bus, store): (Arc<dyn EventBus>, Arc<dyn Store>) = match (config.bus, &config.redis_url) {
            (BusProvider::Redis, Some(url)) => {
                let redis = RedisHandle::open(url.expose())?;
                inbox = redis_inbox(&config, &redis);
                (Arc::new(RedisBus::new(redis.clone())), Arc::new(RedisStore::new(redis)))
            }
            (BusProvider::Redis, None) => {
                return Err(StartupError::Setting("events.provider is redis but no Redis URL is configured".into()));
            }
            (BusProvider::Memory, _) => (Arc::new(MemoryBus::new()), Arc::new(MemoryStore::new())),
        };
        let queue: Arc<dyn WorkQueue> = match &config.queue_url {
            Some(url) => Arc::new(SqsQueue::from_env(url.clone(), config.sqs_send)),
            None => Arc::new(MemoryQueue::default()),
        };
        Ok(Self { inbox, ..Self::from_parts(config, bus, queue, store) })
    }

    /// Build from explicit parts (tests, custom embeddings); no integration yet.
    pub fn from_parts(
        config: Config,
        bus: Arc<dyn EventBus>,
        queue: Arc<dyn WorkQueue>,
        store: Arc<dyn Store>,
    ) -> Self {
        let config = Arc::new(config);
        let (registry, health, clock) = (Registry::new(), Arc::default(), Clock::system());
        let checks = health_check(&config, &registry, &bus, &queue, &store, &health);
        let ingest = compose_ingest(&config, &queue, &store, checks, &clock);
        Self { config, bus, queue, store, registry, health, clock, ingest, inbox: None }
    }

    /// The same app reading the inbox stream on `redis` as the config names it (tests that
    /// build their own backends).
    pub fn with_redis_inbox(mut self, redis: &RedisHandle) -> Self {
        self.inbox = redis_inbox(&self.config, redis);
        self
    }

    /// The ingest rebuilt over changed parts.
    fn compose(mut self) -> Self {
        self.ingest = compose_ingest(&self.config, &self.queue, &self.store, self.health(), &self.clock);
        self
    }

    /// The same app measuring replay windows against `clock` (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self.compose()
    }

    /// The same app keeping health results as `cache` rations them (tests: not at all).
    pub fn with_health_cache(mut self, cache: HealthCache) -> Self {
        self.health = Arc::new(cache);
        self.compose()
    }

    /// Add an integration built elsewhere (tests, custom embeddings).
    pub fn register(&self, integration: Arc<dyn Integration>) -> Result<(), StartupError> {
        self.registry.register(integration).map_err(|e| StartupError::Setting(e.to_string()))
    }

    /// Build and initialise the integrations `needs` names that the config enables. A GitHub
    /// App key that cannot be read, or a custom integration this binary cannot build, is a
    /// start-up error naming the setting.
    pub async fn build(self, needs: Needs<'_>) -> Result<Self, StartupError> {
        if needs.github && self.config.github.enabled {
            let client =
                GithubClient::from_config(&self.config.github, self.store.clone()).map_err(StartupError::Setting)?;
            self.register(Arc::new(GithubIntegration::new(client, self.store.clone())))?;
        }
        if needs.slack && self.config.slack.enabled {
            let client = SlackClient::from_config(&self.config.slack, self.store.clone());
            self.register(Arc::new(SlackIntegration::new(client, self.store.clone())))?;
        }
        let Some(factories) = needs.custom else { return Ok(self) };
        for (name, section) in self.config.custom.iter().filter(|(_, c)| c.enabled) {
            let kind = section.options.get("type").and_then(|v| v.as_str()).unwrap_or(name);
            let factory = factories.iter().find(|f| f.kind() == kind).ok_or_else(|| {
                StartupError::Setting(format!(
                    "integrations.{name}: no integration of type `{kind}` is built into this binary"
                ))
            })?;
            let setting = |e: &dyn std::fmt::Display| StartupError::Setting(format!("integrations.{name}: {e}"));
            let integration = factory.build(name, section).map_err(|e| setting(&e))?;
            integration.initialize(section).await.map_err(|e| setting(&e))?;
            self.register(integration)?;
        }
        routes::check(&self.config, &self.registry).map_err(StartupError::Setting)?;
        Ok(self)
    }

    /// For a long-running host (the local runner): open the store's connection once at start,
    /// so that a setting the backend cannot work with (a Redis cluster given a database other
    /// than 0) stops start-up with its message. A backend that is only down is left to heal
    /// by itself. Lambda functions skip this: their cold start connects nothing, and the same
    /// message is their first request's error.
    pub async fn preflight(&self) -> Result<(), StartupError> {
        match self.store.health().await {
            Err(e @ BackendError::Misconfigured { .. }) => Err(StartupError::Setting(e.to_string())),
            Err(error) => {
                tracing::warn!(%error, store = self.store.kind(), "the store is not reachable yet; carrying on");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    /// The one door for webhooks, platform events and slash commands.
    pub fn ingest(&self) -> &Ingest {
        &self.ingest
    }

    /// The routes this app runs (see [`routes::compile`]).
    pub fn routes(&self) -> Routes {
        let enqueue = Enqueue::new(self.queue.clone(), self.store.clone());
        routes::compile(&self.config, &self.registry, &enqueue, self.store.clone())
    }

    /// The dispatcher over this app's bus, store, queue and routes.
    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(self.bus.clone(), self.store.clone(), self.queue.clone(), self.routes())
            .with_retry_schedule(self.config.queue_retry.clone())
    }

    /// The bus bridge: what the platform publishes on the bus, into the work queue.
    pub fn bridge(&self) -> Bridge {
        let (bus, inbox, store) = (self.bus.clone(), self.inbox.clone(), self.store.clone());
        // The configured routes' topics, whatever integrations this binary links.
        let named = self.config.routes.iter().map(|r| r.on.clone()).collect();
        Bridge::new(bus, inbox, self.ingest.clone(), store, self.config.bridge.clone()).with_named_topics(named)
    }

    /// The GitHub redelivery job; `Ok(None)` when it is off ([`App::redelivery_off`]).
    pub fn redeliverer(&self) -> Result<Option<Redeliverer>, RedeliverError> {
        Redeliverer::new(&self.config, self.store.clone())
    }

    /// Why the redelivery job does not run, if it does not.
    pub fn redelivery_off(&self) -> Option<&'static str> {
        Redeliverer::off_reason(&self.config)
    }

    /// The health checks over this app's backends and integrations.
    pub fn health(&self) -> HealthCheck {
        health_check(&self.config, &self.registry, &self.bus, &self.queue, &self.store, &self.health)
    }

    pub fn activity(&self) -> ActivityLog {
        ActivityLog::new(self.store.clone())
    }

    pub fn metrics(&self) -> Metrics {
        Metrics::new(self.store.clone())
    }

    /// A registered integration by name.
    pub fn integration(&self, name: &str) -> Option<Arc<dyn Integration>> {
        self.registry.get(name)
    }

    pub fn internal_auth(&self) -> InternalAuth<'_> {
        InternalAuth { token: self.config.api_token.as_ref(), iam_url: self.config.iam_url }
    }

    /// What the app runs on and with.
    pub fn describe(&self) -> Description {
        Description {
            bus: self.bus.kind(),
            store: self.store.kind(),
            queue: self.queue.kind(),
            integrations: self.registry.list(),
        }
    }

    /// Close every integration; the ones that failed to close, with why.
    pub async fn close(&self) -> Vec<(String, IntegrationError)> {
        self.registry.close_all().await
    }
}

fn redis_inbox(config: &Config, redis: &RedisHandle) -> Option<Arc<dyn Inbox>> {
    let bridge = &config.bridge;
    let stream = bridge.inbox.as_deref()?;
    Some(Arc::new(RedisInbox::new(redis.clone(), stream, bridge.inbox_max_len, bridge.claim_idle)))
}

fn health_check(
    config: &Config,
    registry: &Registry,
    bus: &Arc<dyn EventBus>,
    queue: &Arc<dyn WorkQueue>,
    store: &Arc<dyn Store>,
    cache: &Arc<HealthCache>,
) -> HealthCheck {
    HealthCheck {
        registry: registry.clone(),
        bus: bus.clone(),
        queue: queue.clone(),
        store: store.clone(),
        cache: cache.clone(),
        remote: config.health_remote.clone().into(),
        per_instance: config.in_lambda && config.bus == BusProvider::Memory,
        bridge: config.bus == BusProvider::Redis && config.bridge.enabled,
    }
}

fn compose_ingest(
    config: &Config,
    queue: &Arc<dyn WorkQueue>,
    store: &Arc<dyn Store>,
    health: HealthCheck,
    clock: &Clock,
) -> Ingest {
    let enqueue = Enqueue::new(queue.clone(), store.clone());
    let commands = Commands::new(health, store.clone(), enqueue.clone());
    let (sources, activity) = (webhook_sources(config), ActivityLog::new(store.clone()));
    Ingest::new(sources, enqueue, activity, config.max_body_bytes, clock.clone(), Arc::new(commands))
}

/// Every webhook source, keyed from the config, in the order of
/// [`crate::integrations::source::NAMES`]. A source without a secret is still listed: its
/// requests are refused naming the setting (fail closed).
fn webhook_sources(config: &Config) -> Vec<Arc<dyn WebhookSource>> {
    vec![Arc::new(GithubSource::from_config(&config.github)), Arc::new(SlackSource::from_config(&config.slack))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_endpoints_are_the_sources_built() {
        let config = Config::load(&|_| None).expect("the default config loads");
        let built: Vec<&str> = webhook_sources(&config).iter().map(|s| s.name()).collect();
        assert_eq!(built, crate::integrations::source::NAMES);
    }
}
