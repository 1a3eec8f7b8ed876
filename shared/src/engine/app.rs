//! The application context: config, backends and integrations, built once per cold start
//! and shared by every request. Backends are chosen from config here and nowhere else.

use crate::backends::bus::{EventBus, MemoryBus, RedisBus};
use crate::backends::error::BackendError;
use crate::backends::queue::{MemoryQueue, SqsQueue, WorkQueue};
use crate::backends::redis_conn::RedisHandle;
use crate::backends::store::{MemoryStore, RedisStore, Store};
use crate::config::routes::{RouteAction, RouteSpec};
use crate::config::{BusProvider, Config};
use crate::engine::dispatch::Dispatcher;
use crate::engine::routes::{Action, CreateArtifact, Handle, Notify, Publish, Routes, Rule};
use crate::engine::vms::VmRegistry;
use crate::integrations::github::redeliver::{RedeliverError, Redeliverer};
use crate::integrations::github::{GithubClient, GithubIntegration};
use crate::integrations::signature::HmacVerifier;
use crate::integrations::slack::{SlackClient, SlackIntegration};
use crate::model::integration::{IntegrationFactory, Registry};
use crate::model::template::Template;
use crate::observe::health;
use std::sync::Arc;

/// The guide's message for a new VM.
pub const VM_CREATED_MESSAGE: &str = "🚀 New VM: `{{vm_name}}` (ID: `{{vm_id}}`)";

/// Why the application could not be built at start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is unusable; the message names it.
    #[error("{0}")]
    Setting(String),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

#[derive(Debug, Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub bus: Arc<dyn EventBus>,
    pub queue: Arc<dyn WorkQueue>,
    pub store: Arc<dyn Store>,
    pub registry: Registry,
    /// Keyed with the GitHub webhook secret(s); `None` when none is configured.
    pub github_webhook: Option<HmacVerifier>,
    /// Keyed with the Slack signing secret; `None` when none is configured.
    pub slack_signing: Option<HmacVerifier>,
    /// The time the Slack replay window is measured against (injectable for tests).
    pub clock: Clock,
    /// Recent health results (the health route is public: its checks are rationed).
    pub health: Arc<health::HealthCache>,
}

/// Unix seconds, from the system clock or a fixed value.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Self(Arc::new(|| chrono::Utc::now().timestamp()))
    }

    pub fn fixed(unix: i64) -> Self {
        Self(Arc::new(move || unix))
    }

    pub fn now(&self) -> i64 {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

impl App {
    /// Choose and build the backends the config names. No I/O happens here: Redis and SQS
    /// connect at first use, so a cold start pays only for what its requests touch.
    pub fn from_config(config: Config) -> Result<Self, StartupError> {
        let (bus, store): (Arc<dyn EventBus>, Arc<dyn Store>) = match (config.bus, &config.redis_url) {
            (BusProvider::Redis, Some(url)) => {
                let redis = RedisHandle::open(url.expose())?;
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
        let app = Self::from_parts(config, bus, queue, store);
        app.register_builtin()?;
        Ok(app)
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

    /// Register the built-in integrations the config enables. A GitHub App key that cannot
    /// be read is a start-up error naming the setting.
    pub fn register_builtin(&self) -> Result<(), StartupError> {
        if self.config.github.enabled {
            let client =
                GithubClient::from_config(&self.config.github, self.store.clone()).map_err(StartupError::Setting)?;
            let github = GithubIntegration::new(client, self.store.clone());
            self.registry.register(Arc::new(github)).map_err(|e| StartupError::Setting(e.to_string()))?;
        }
        if self.config.slack.enabled {
            let client = SlackClient::from_config(&self.config.slack, self.store.clone());
            let slack = SlackIntegration::new(client, self.store.clone());
            self.registry.register(Arc::new(slack)).map_err(|e| StartupError::Setting(e.to_string()))?;
        }
        Ok(())
    }

    /// Build and initialize the custom integrations the config enables, with the factories
    /// this binary links, then check that every configured route's integration exists.
    pub async fn with_integrations(self, factories: &[&dyn IntegrationFactory]) -> Result<Self, StartupError> {
        for (name, section) in self.config.custom.iter().filter(|(_, c)| c.enabled) {
            let kind = section.options.get("type").and_then(|v| v.as_str()).unwrap_or(name);
            let factory = factories.iter().find(|f| f.kind() == kind).ok_or_else(|| {
                StartupError::Setting(format!(
                    "integrations.{name}: no integration of type `{kind}` is built into this binary"
                ))
            })?;
            let integration =
                factory.build(name, section).map_err(|e| StartupError::Setting(format!("integrations.{name}: {e}")))?;
            integration
                .initialize(section)
                .await
                .map_err(|e| StartupError::Setting(format!("integrations.{name}: {e}")))?;
            self.registry.register(integration).map_err(|e| StartupError::Setting(e.to_string()))?;
        }
        self.check_routes()?;
        Ok(self)
    }

    /// Every configured route's integration must be registered.
    pub fn check_routes(&self) -> Result<(), StartupError> {
        for spec in &self.config.routes {
            let needed = match &spec.action {
                RouteAction::Notify(n) => Some(&n.integration),
                RouteAction::Handle(h) => Some(h),
                RouteAction::Artifact(a) => Some(&a.integration),
                RouteAction::Publish(_) => None,
            };
            if let Some(name) = needed
                && self.registry.get(name).is_none()
                && !self.config.is_disabled(name)
            {
                return Err(StartupError::Setting(format!(
                    "route `{}`: integration `{name}` is not available",
                    spec.name
                )));
            }
        }
        Ok(())
    }

    /// The dispatcher over this app's bus, store and routes.
    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(self.bus.clone(), self.store.clone(), self.routes())
    }

    /// The routes the dispatcher runs after publishing an event: the built-in defaults
    /// (unless `default_routes: false`), then the configured routes; a configured route
    /// named like a default replaces it. Defaults:
    /// - `vm.registry` on `vm.*`: the VM registry behind `/aetherium-vm-list`;
    /// - `github.handle` on `task.*`: GitHub's handle_event (a PR comment on task.completed /
    ///   task.failed carrying a `pull_request`);
    /// - `slack.vm_created` on `vm.created`: a Slack message to the notify channel;
    /// - `slack.handle` on `slack.action.*`: the Approve / Reject follow-up.
    pub fn routes(&self) -> Routes {
        let mut rules = Vec::new();
        if self.config.default_routes {
            rules.push(Rule::new("vm.*", VmRegistry::new(self.store.clone())));
            if let Some(github) = self.registry.get("github") {
                rules.push(Rule::new("task.*", Handle::new(github)));
            }
            if let Some(slack) = self.registry.get("slack") {
                let template = Template::parse(VM_CREATED_MESSAGE).expect("the built-in template parses");
                // A channel name is not a template: `{{` in it is taken literally.
                let channel = Template::literal(&self.config.slack.notify_channel);
                rules.push(Rule::new("vm.created", Notify::new("slack.vm_created", slack.clone(), channel, template)));
                rules.push(Rule::new("slack.action.*", Handle::new(slack)));
            }
        }
        for spec in &self.config.routes {
            let Some(action) = self.action(spec) else { continue };
            rules.retain(|r| r.action.name() != spec.name);
            rules.push(Rule::new(spec.on.clone(), action));
        }
        Routes::new(rules).unwrap_or_default()
    }

    /// The action of a configured route (validated at load: its integration exists).
    fn action(&self, spec: &RouteSpec) -> Option<Arc<dyn Action>> {
        let integration = |name: &str| {
            let found = self.registry.get(name);
            match found {
                Some(_) => {}
                None if self.config.is_disabled(name) => {
                    tracing::debug!(route = %spec.name, integration = name, "route inactive: its integration is disabled");
                }
                None => {
                    tracing::error!(route = %spec.name, integration = name, "route names an integration that is not registered; skipped");
                }
            }
            found
        };
        Some(match &spec.action {
            RouteAction::Notify(n) => {
                let (template, target) = (Template::parse(&n.message).ok()?, Template::parse(&n.target).ok()?);
                let mut buttons = Vec::with_capacity(n.actions.len());
                for b in &n.actions {
                    buttons.push([
                        Template::parse(&b.text).ok()?,
                        Template::parse(&b.action_id).ok()?,
                        Template::parse(&b.value).ok()?,
                    ]);
                }
                Notify::with_buttons(spec.name.clone(), integration(&n.integration)?, target, template, buttons)
            }
            RouteAction::Handle(name) => Handle::named(spec.name.clone(), integration(name)?),
            RouteAction::Artifact(a) => {
                CreateArtifact::new(spec.name.clone(), integration(&a.integration)?, a.kind.clone(), a.content.clone())
            }
            RouteAction::Publish(p) => {
                Publish::new(spec.name.clone(), p.kind.clone(), p.data.clone(), self.queue.clone(), self.store.clone())
            }
        })
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
        let slack_signing = HmacVerifier::new(config.slack.signing_secret.iter());
        Self {
            config: Arc::new(config),
            bus,
            queue,
            store,
            registry: Registry::new(),
            github_webhook,
            slack_signing,
            clock: Clock::system(),
            health: Arc::default(),
        }
    }
}

impl<'a> From<&'a App> for health::Components<'a> {
    fn from(app: &'a App) -> Self {
        Self {
            registry: &app.registry,
            bus: app.bus.as_ref(),
            queue: app.queue.as_ref(),
            store: app.store.as_ref(),
            cache: &app.health,
            remote: &app.config.health_remote,
            per_instance: app.config.in_lambda && app.config.bus == crate::config::BusProvider::Memory,
        }
    }
}

// The job lives with GitHub, below the engine; the engine hands it the app's config and store.
impl Redeliverer {
    /// The job for this app's config; `Ok(None)` when it is off (see [`Redeliverer::off_reason`]).
    pub fn from_app(app: &App) -> Result<Option<Self>, RedeliverError> {
        Self::new(&app.config, app.store.clone())
    }
}
