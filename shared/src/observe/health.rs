//! The system's health: every integration and backend, checked concurrently under one
//! deadline, so a hung component answers "timed out" instead of hanging the caller.
//!
//! The health route is public, so its answers are cached: an integration's result (a call to
//! GitHub or Slack) is shared by every instance through the store, and one instance at a time
//! checks it, at most once per [`INTERVAL`], however many requests arrive. Our own backends
//! (the bus, the queue) are cached per instance for [`BACKEND_INTERVAL`]; the bus's result
//! cannot live in the store that it is checking.

use crate::backends::bus::EventBus;
use crate::backends::error::BackendError;
use crate::backends::queue::WorkQueue;
use crate::backends::store::Store;
use crate::model::integration::{Health, Registry};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);
/// How long an integration's result is reused, by every instance.
pub const INTERVAL: Duration = Duration::from_secs(30);
/// How long a backend's result is reused by one instance.
pub const BACKEND_INTERVAL: Duration = Duration::from_secs(5);
/// How old a result another function shared may be and still be shown (the dispatcher's
/// probe runs every 5 minutes: two missed runs and a margin).
pub const REMOTE_FRESH: Duration = Duration::from_secs(15 * 60);
/// Where the bus bridge writes when it last reported (ms since the epoch).
pub const BRIDGE_HEARTBEAT: &str = "bridge:heartbeat";
/// A bridge that reported within this long is healthy.
pub const BRIDGE_FRESH: Duration = Duration::from_secs(120);
/// How long one store call of the cache may take before the instance checks on its own.
const STORE_BUDGET: Duration = Duration::from_millis(500);

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

/// Results of recent checks: this instance's copies, and one check in flight per component.
#[derive(Debug)]
pub struct HealthCache {
    interval: Duration,
    backend_interval: Duration,
    local: Mutex<HashMap<String, (Instant, Health)>>,
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Default for HealthCache {
    fn default() -> Self {
        Self::new(INTERVAL, BACKEND_INTERVAL)
    }
}

impl HealthCache {
    /// Zero intervals check every time (tests of the checks themselves).
    pub fn new(interval: Duration, backend_interval: Duration) -> Self {
        Self { interval, backend_interval, local: Mutex::default(), flights: Mutex::default() }
    }

    fn fresh(&self, name: &str) -> Option<Health> {
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        local.get(name).filter(|(until, _)| *until > Instant::now()).map(|(_, h)| h.clone())
    }

    fn keep(&self, name: &str, health: &Health, for_: Duration) {
        if let Some(until) = Instant::now().checked_add(for_) {
            self.local.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_owned(), (until, health.clone()));
        }
    }

    fn flight(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.flights.lock().unwrap_or_else(|p| p.into_inner()).entry(name.to_owned()).or_default().clone()
    }

    /// A backend's health: this instance's copy, or one check for all concurrent callers.
    async fn backend<F: Future<Output = Health>>(&self, name: &str, check: F) -> Health {
        if self.backend_interval.is_zero() {
            return check.await;
        }
        let flight = self.flight(name);
        let _one = flight.lock().await;
        if let Some(h) = self.fresh(name) {
            return h;
        }
        let h = check.await;
        self.keep(name, &h, self.backend_interval);
        h
    }

    /// An integration's health, shared through `store`: a fresh result from any instance, or
    /// this instance checks after claiming the interval's one check. When the store cannot
    /// answer, the instance checks on its own (still at most once per interval).
    async fn integration<F: Future<Output = Health>>(
        &self,
        store: &dyn Store,
        name: &str,
        deadline: Duration,
        check: F,
    ) -> Health {
        if self.interval.is_zero() {
            return check.await;
        }
        let flight = self.flight(name);
        let _one = flight.lock().await;
        if let Some(h) = self.fresh(name) {
            return h;
        }
        let (key, lock) = (key(name), format!("{}:checking", key(name)));
        let shared = bounded(store.get(&key)).await.map(|v| v.and_then(|v| Stored::parse(&v)));
        if let Ok(Some(stored)) = &shared
            && let Some(left) = stored.left(self.interval)
        {
            self.keep(name, &stored.health, left);
            return stored.health.clone();
        }
        let claimed = match shared {
            Ok(_) => bounded(store.set_if_absent(&lock, "1", self.interval)).await,
            Err(e) => Err(e),
        };
        match claimed {
            Ok(true) | Err(_) => {
                let h = check.await;
                let value = Stored { at_ms: now_ms(), health: h.clone() }.render();
                // Kept past the interval so that an instance that finds the check claimed
                // but not yet done has the last result to show.
                if let Err(error) = bounded(store.set(&key, &value, Some(self.interval * 10))).await {
                    tracing::debug!(%error, component = name, "health result not shared");
                }
                self.keep(name, &h, self.interval);
                h
            }
            // Another instance is checking: its result arrives within its deadline.
            Ok(false) => {
                let give_up = Instant::now() + deadline + Duration::from_millis(200);
                let mut last = None;
                while Instant::now() < give_up {
                    if let Ok(Some(stored)) = bounded(store.get(&key)).await.map(|v| v.and_then(|v| Stored::parse(&v)))
                    {
                        if let Some(left) = stored.left(self.interval) {
                            self.keep(name, &stored.health, left);
                            return stored.health;
                        }
                        last = Some(stored.health);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                last.unwrap_or_else(|| Health::Unhealthy("check in progress".into()))
            }
        }
    }
}

async fn bounded<T>(call: impl Future<Output = Result<T, BackendError>>) -> Result<T, BackendError> {
    tokio::time::timeout(STORE_BUDGET, call).await.unwrap_or(Err(BackendError::Timeout { backend: "store" }))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A result in the store: `<unix ms of the check> <health as the route shows it>`.
struct Stored {
    at_ms: i64,
    health: Health,
}

impl Stored {
    fn render(&self) -> String {
        format!("{} {}", self.at_ms, self.health)
    }

    fn parse(v: &str) -> Option<Self> {
        let (at, shown) = v.split_once(' ')?;
        let health = match shown {
            "healthy" => Health::Healthy,
            "disabled" => Health::Disabled,
            other => Health::Unhealthy(other.strip_prefix("unhealthy: ")?.to_owned()),
        };
        Some(Self { at_ms: at.parse().ok()?, health })
    }

    /// How long the result stays fresh, if it still is.
    fn left(&self, interval: Duration) -> Option<Duration> {
        let age = u64::try_from(now_ms().saturating_sub(self.at_ms)).ok()?;
        interval.checked_sub(Duration::from_millis(age)).filter(|d| !d.is_zero())
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

/// What a health check looks at. `engine::app::App` converts into it.
#[derive(Debug, Clone, Copy)]
pub struct Components<'a> {
    pub registry: &'a Registry,
    pub bus: &'a dyn EventBus,
    pub queue: &'a dyn WorkQueue,
    pub store: &'a dyn Store,
    pub cache: &'a HealthCache,
    /// Integrations this function holds no credentials for, shown as another function last
    /// found them ([`probe_and_share`]).
    pub remote: &'a [String],
    /// State kept in this instance's memory where instances should share it (a Lambda
    /// function without Redis): a component of its own, unhealthy, so that it is never missed.
    pub per_instance: bool,
    /// A bus bridge should be running (the bus is Redis and the stack deploys one).
    pub bridge: bool,
}

/// The health of every registered integration, checked now and shared through the store for
/// the functions that read it as [`Components::remote`].
pub async fn probe_and_share(parts: Components<'_>) -> HealthReport {
    for i in parts.registry.all() {
        let value = Stored { at_ms: now_ms(), health: probe(i.as_ref(), DEFAULT_DEADLINE).await }.render();
        if let Err(error) = bounded(parts.store.set(&key(i.name()), &value, Some(REMOTE_FRESH * 2))).await {
            tracing::warn!(%error, component = i.name(), "health result not shared");
        }
    }
    // The report reads back what was just shared (no second call to GitHub or Slack).
    let cache = HealthCache::new(INTERVAL, Duration::ZERO);
    check(Components { cache: &cache, ..parts }, DEFAULT_DEADLINE).await
}

/// Where an integration's last result is shared.
fn key(name: &str) -> String {
    format!("health:{name}")
}

/// One integration's own check, under `deadline`.
async fn probe(i: &dyn crate::model::integration::Integration, deadline: Duration) -> Health {
    match tokio::time::timeout(deadline, i.health()).await {
        Ok(h) => h,
        Err(_) => Health::Unhealthy("health check timed out".to_owned()),
    }
}

/// Whether a bus bridge reported within [`BRIDGE_FRESH`].
async fn bridge_reported(store: &dyn Store) -> Health {
    match bounded(store.get(BRIDGE_HEARTBEAT)).await {
        Ok(Some(at)) => match at.parse::<i64>() {
            Ok(at) if now_ms().saturating_sub(at) <= BRIDGE_FRESH.as_millis() as i64 => Health::Healthy,
            _ => Health::Unhealthy("no report from a bus bridge in the last 2 minutes".into()),
        },
        Ok(None) => Health::Unhealthy("no bus bridge has reported (it runs every minute)".into()),
        Err(e) => Health::Unhealthy(e.public_reason().to_owned()),
    }
}

/// What another function shared of `name`, if it is recent enough to show.
async fn remote(store: &dyn Store, name: &str) -> Health {
    match bounded(store.get(&key(name))).await {
        Ok(Some(v)) => match Stored::parse(&v) {
            Some(stored) if stored.left(REMOTE_FRESH).is_some() => stored.health,
            _ => Health::Unhealthy("no check in the last 15 minutes (the dispatcher's probe shares it)".into()),
        },
        Ok(None) => Health::Unhealthy("not checked yet (the dispatcher's probe shares it every 5 minutes)".into()),
        Err(e) => Health::Unhealthy(e.public_reason().to_owned()),
    }
}

/// Components: `github`, `slack`, `event_bus`, `queue`, and any other registered
/// integration. An integration that is not registered is `disabled`.
pub async fn check(parts: Components<'_>, deadline: Duration) -> HealthReport {
    let Components { registry, bus, queue, store, cache, remote: remote_names, per_instance, bridge } = parts;
    let integrations = registry.all().into_iter().map(|i| async move {
        let h = cache.integration(store, i.name(), deadline, probe(i.as_ref(), deadline)).await;
        (i.name().to_owned(), h)
    });
    let remotes = remote_names
        .iter()
        .filter(|name| registry.get(name).is_none())
        // Read per instance at most every BACKEND_INTERVAL: the route is public.
        .map(|name| async move { (name.clone(), cache.backend(name, remote(store, name)).await) });
    let bridge_health =
        async { if bridge { cache.backend("bus_bridge", bridge_reported(store)).await } else { Health::Disabled } };
    let (integrations, remotes, bus, queue, bridge) = tokio::join!(
        futures_util::future::join_all(integrations),
        futures_util::future::join_all(remotes),
        cache.backend("event_bus", backend(deadline, bus.health())),
        cache.backend("queue", backend(deadline, queue.health())),
        bridge_health,
    );
    let mut components: BTreeMap<String, Health> = BTreeMap::new();
    components.insert("github".into(), Health::Disabled);
    components.insert("slack".into(), Health::Disabled);
    components.extend(integrations);
    components.extend(remotes);
    if per_instance {
        components.insert(
            "shared_state".into(),
            Health::Unhealthy(
                "per-instance memory: each Lambda instance keeps its own dedup, limits and logs (deploy with Network=create or existing)"
                    .into(),
            ),
        );
    }
    components.insert("event_bus".into(), bus);
    components.insert("bus_bridge".into(), bridge);
    components.insert("queue".into(), queue);
    let ok = components.values().all(Health::is_ok);
    HealthReport {
        status: if ok { "ok" } else { "degraded" },
        components: components.into_iter().map(|(k, v)| (k, v.to_string())).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_results_round_trip_and_age() {
        for h in [Health::Healthy, Health::Disabled, Health::Unhealthy("bad credentials (401)".into())] {
            let s = Stored { at_ms: now_ms(), health: h.clone() };
            let back = Stored::parse(&s.render()).expect("parses");
            assert_eq!(back.health, h);
            assert!(back.left(INTERVAL).is_some_and(|l| l <= INTERVAL));
        }
        let old = Stored { at_ms: now_ms() - 31_000, health: Health::Healthy };
        assert!(old.left(INTERVAL).is_none(), "31 s old is stale");
        assert!(Stored::parse("garbage").is_none());
    }
}
