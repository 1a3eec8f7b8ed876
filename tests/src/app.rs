//! The app a test runs, built one way, and the requests a user sends it, written one way.
//!
//! ```ignore
//! let t = TestApp::builder().env(&[("GITHUB_WEBHOOK_SECRET", SECRET)]).build().await;
//! let answer = t.github("pull_request", "guid-1", &fixtures::github("pull_request.opened.json")).await;
//! assert_eq!(answer.status, 202);
//! assert_eq!(t.queued().await[0].kind, "github.pull_request.opened");
//! ```
//!
//! Backends default to the in-memory ones; give a Redis store or an SQS queue to run the same
//! script on them. The builder keeps a handle on each backend, so a test reads what the app
//! wrote (`t.store`, `t.queue`) without reaching into the app.

use crate::fixtures::{SECRET, sign, slack_headers};
use aetherium::App;
use aetherium::backends::bus::{EventBus, MemoryBus, RedisBus};
use aetherium::backends::queue::{MemoryQueue, WorkQueue};
use aetherium::backends::redis_conn::RedisHandle;
use aetherium::backends::store::{MemoryStore, RedisStore, Store};
use aetherium::config::Config;
use aetherium::edge::api::{self, Endpoint};
use aetherium::engine::app::Needs;
use aetherium::engine::clock::Clock;
use aetherium::model::integration::{Integration, IntegrationFactory};
use aetherium::observe::health::HealthCache;
use aetherium::{Event, edge::lambda};
use bytes::Bytes;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The custom integrations a test app can build (the dispatcher's).
pub const FACTORIES: &[&dyn IntegrationFactory] = &[&aetherium_webhook::WebhookFactory];

/// An app and handles on the backends it runs on.
#[derive(Debug, Clone)]
pub struct TestApp {
    pub app: App,
    pub bus: Arc<dyn EventBus>,
    pub queue: Arc<dyn WorkQueue>,
    pub store: Arc<dyn Store>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Integrations {
    /// None: what github-webhook, events, logs and metrics build.
    #[default]
    None,
    /// GitHub and Slack, when the config enables them.
    Builtin,
    /// GitHub, Slack and the custom integrations, with every route checked.
    All,
}

#[derive(Debug, Default)]
pub struct Builder {
    env: Vec<(String, String)>,
    yaml: Option<String>,
    bus: Option<Arc<dyn EventBus>>,
    queue: Option<Arc<dyn WorkQueue>>,
    store: Option<Arc<dyn Store>>,
    /// Set by [`Builder::redis`]: the inbox stream is read there.
    redis: Option<RedisHandle>,
    clock: Option<Clock>,
    health_cache: Option<HealthCache>,
    integrations: Integrations,
    extra: Vec<Arc<dyn Integration>>,
}

impl TestApp {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// An app from this environment alone, on memory backends, without integrations.
    pub async fn with_env(env: &[(&str, &str)]) -> Self {
        Self::builder().env(env).build().await
    }

    /// Answer a request at `endpoint`, in-process, through the same entry point the Lambda
    /// functions and the local runner use.
    pub async fn call(&self, endpoint: Endpoint, req: http::request::Builder, body: &[u8]) -> Answer {
        let req = req.uri(endpoint.path().as_ref()).body(Bytes::copy_from_slice(body)).expect("a valid request");
        Answer::from(api::handle(&self.app, endpoint, req).await)
    }

    /// A GitHub delivery of `event`, signed with [`SECRET`] as GitHub signs it.
    pub async fn github(&self, event: &str, delivery: &str, body: &[u8]) -> Answer {
        let req = github_request(Some(event), Some(delivery), Some(&sign(body)));
        self.call(Endpoint::Webhook("github"), req, body).await
    }

    /// A Slack request signed now with the Slack signing secret, as Slack signs it.
    pub async fn slack(&self, content_type: &str, body: &[u8]) -> Answer {
        let req = slack_request(content_type, body, chrono::Utc::now().timestamp());
        self.call(Endpoint::Webhook("slack"), req, body).await
    }

    /// A call to an internal endpoint, with `Authorization: Bearer <token>` when given.
    pub async fn internal(&self, endpoint: Endpoint, token: Option<&str>, body: &str) -> Answer {
        self.call(endpoint, bearer(endpoint, token), body.as_bytes()).await
    }

    /// A function URL envelope answered as the Lambda function would.
    pub async fn envelope(&self, endpoint: Endpoint, req: lambda::UrlRequest) -> lambda::UrlResponse {
        lambda::respond(&self.app, endpoint, req).await
    }

    /// What the queue holds now (up to 10 records), each read as an event.
    pub async fn queued(&self) -> Vec<Event> {
        let msgs = self.queue.receive(10, Duration::from_millis(50)).await.expect("receive");
        msgs.iter().map(|m| Event::from_json(&m.body).expect("a queued record is an event")).collect()
    }
}

impl Builder {
    /// Add these variables to the environment the config is loaded from (nothing else of
    /// the process environment is read).
    pub fn env(mut self, pairs: &[(&str, &str)]) -> Self {
        self.env.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// The YAML config file (`AETHERIUM_CONFIG`), written to a temporary file.
    pub fn yaml(mut self, yaml: &str) -> Self {
        self.yaml = Some(yaml.to_owned());
        self
    }

    pub fn bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    pub fn queue(mut self, queue: Arc<dyn WorkQueue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// The bus and the store on one Redis connection, as `REDIS_URL` gives a function.
    pub fn redis(mut self, handle: RedisHandle) -> Self {
        self.redis = Some(handle.clone());
        self.bus(Arc::new(RedisBus::new(handle.clone()))).store(Arc::new(RedisStore::new(handle)))
    }

    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The time replay windows are measured against.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Keep health results as `cache` rations them (`HealthCache::new(ZERO, ZERO)`: check
    /// every time).
    pub fn health_cache(mut self, cache: HealthCache) -> Self {
        self.health_cache = Some(cache);
        self
    }

    /// GitHub and Slack, built as the config enables them.
    pub fn builtin(mut self) -> Self {
        self.integrations = Integrations::Builtin;
        self
    }

    /// Every integration the config enables, custom ones included; routes checked.
    pub fn all_integrations(mut self) -> Self {
        self.integrations = Integrations::All;
        self
    }

    /// An integration built by the test (a stand-in that counts or fails).
    pub fn integration(mut self, integration: Arc<dyn Integration>) -> Self {
        self.extra.push(integration);
        self
    }

    /// The config the app would be built from.
    pub fn config(&self) -> Result<Config, String> {
        let mut env: HashMap<String, String> = self.env.iter().cloned().collect();
        if let Some(yaml) = &self.yaml {
            let dir = std::env::temp_dir().join(format!("aetherium-test-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let file = dir.join("aetherium.yaml");
            std::fs::write(&file, yaml).map_err(|e| e.to_string())?;
            env.insert("AETHERIUM_CONFIG".into(), file.to_string_lossy().into_owned());
        }
        Config::load(&move |k| env.get(k).cloned()).map_err(|e| e.to_string())
    }

    /// The app, or the start-up error a function would stop with.
    pub async fn try_build(self) -> Result<TestApp, String> {
        let config = self.config()?;
        let bus = self.bus.unwrap_or_else(|| Arc::new(MemoryBus::new()));
        let queue = self.queue.unwrap_or_else(|| Arc::new(MemoryQueue::default()));
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let mut app = App::from_parts(config, bus.clone(), queue.clone(), store.clone());
        if let Some(redis) = &self.redis {
            app = app.with_redis_inbox(redis);
        }
        if let Some(clock) = self.clock {
            app = app.with_clock(clock);
        }
        if let Some(cache) = self.health_cache {
            app = app.with_health_cache(cache);
        }
        for integration in self.extra {
            app.register(integration).map_err(|e| e.to_string())?;
        }
        let needs = match self.integrations {
            Integrations::None => Needs::NONE,
            Integrations::Builtin => Needs::BUILTIN,
            Integrations::All => Needs::all(FACTORIES),
        };
        let app = app.build(needs).await.map_err(|e| e.to_string())?;
        Ok(TestApp { app, bus, queue, store })
    }

    pub async fn build(self) -> TestApp {
        self.try_build().await.expect("the test app builds")
    }
}

/// What an endpoint answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON; `Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `(status, JSON body)`, the pair most assertions read.
    pub fn pair(&self) -> (u16, Value) {
        (self.status, self.json())
    }
}

impl From<api::Response> for Answer {
    fn from(resp: api::Response) -> Self {
        let (parts, body) = resp.into_parts();
        Self { status: parts.status.as_u16(), headers: parts.headers, body }
    }
}

/// A POST as GitHub sends a delivery, with each of its three headers when given.
pub fn github_request(event: Option<&str>, delivery: Option<&str>, signature: Option<&str>) -> http::request::Builder {
    let mut b = http::Request::builder().method("POST").uri("/api/v1/webhooks/github");
    b = b.header("content-type", "application/json").header("user-agent", "GitHub-Hookshot/abc123");
    if let Some(e) = event {
        b = b.header("x-github-event", e);
    }
    if let Some(d) = delivery {
        b = b.header("x-github-delivery", d);
    }
    if let Some(s) = signature {
        b = b.header("x-hub-signature-256", s);
    }
    b
}

/// A POST as Slack sends one, signed at `timestamp`.
pub fn slack_request(content_type: &str, body: &[u8], timestamp: i64) -> http::request::Builder {
    let (ts, sig) = slack_headers(body, timestamp);
    http::Request::builder()
        .method("POST")
        .uri("/api/v1/webhooks/slack")
        .header("content-type", content_type)
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig)
}

/// A request to `endpoint` with its method, and `Authorization: Bearer <token>` when given.
pub fn bearer(endpoint: Endpoint, token: Option<&str>) -> http::request::Builder {
    let mut b = http::Request::builder().method(endpoint.method()).uri(endpoint.path().as_ref());
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b
}

/// The webhook secret the [`TestApp::github`] helper signs with.
pub const GITHUB_SECRET: (&str, &str) = ("GITHUB_WEBHOOK_SECRET", SECRET);
/// The signing secret the [`TestApp::slack`] helper signs with.
pub const SLACK_SECRET: (&str, &str) = ("SLACK_SIGNING_SECRET", crate::fixtures::SLACK_SECRET);
