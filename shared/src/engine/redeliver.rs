//! Nothing GitHub sent is lost: a scheduled job lists the webhook deliveries GitHub made
//! since its last run and asks GitHub to send again each one that never reached us.
//!
//! GitHub does not retry a failed delivery by itself. A delivery is redelivered when none of
//! the attempts GitHub lists for its GUID succeeded, our ingest has not accepted the GUID
//! (`delivery:github:<guid>`: GitHub also marks a delivery failed when our answer was merely
//! slow), and the GUID has had fewer than `max_attempts` deliveries. Whatever slips through
//! anyway is absorbed by the ingest's dedup.

use crate::backends::error::BackendError;
use crate::backends::store::Store;
use crate::config::{Config, HookRef, RedeliveryConfig};
use crate::engine::ingest::DeliveryMarks;
use crate::integrations::github::{As, GithubClient, GithubError, Repo};
use crate::observe::activity::{ActivityLog, Level};
use crate::observe::metrics::{self, Metrics};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Unix seconds: every delivery GitHub made before it was settled by an earlier run.
pub const WATERMARK_KEY: &str = "github:redeliver:watermark";
/// Held while a run is in progress, so two runs (an EventBridge retry, a runner beside the
/// deployed function) never ask twice for the same delivery.
pub const LOCK_KEY: &str = "github:redeliver:lock";
const LOCK_TTL: Duration = Duration::from_secs(300);
/// GitHub lists a delivery once it has our answer (after up to its 10 s timeout), so one that
/// started before a listed delivery can appear after it: the watermark trails by a minute.
const SETTLE: chrono::Duration = chrono::Duration::seconds(60);
/// With no watermark yet (the first run), how far back the job looks.
const FIRST_LOOKBACK: chrono::Duration = chrono::Duration::hours(1);
/// GitHub redelivers deliveries of the past 3 days (7 on Enterprise Server); a GUID's record
/// is useless after that.
const GUID_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// A bound on one run's listing: 10,000 deliveries, the newest. Older ones are left
/// unexamined (and said so) rather than leave a run that never finishes listing.
const MAX_PAGES: u32 = 100;

/// What the job knows about one GUID: how often it asked, and for which listed delivery last.
pub fn guid_key(guid: &str) -> String {
    format!("github:redeliver:guid:{guid}")
}

#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    #[error("{0}")]
    Setting(String),
    #[error("listing GitHub's webhook deliveries failed: {0}")]
    List(GithubError),
    #[error("asking GitHub for a redelivery failed: {0}")]
    Redeliver(GithubError),
    #[error(transparent)]
    Store(#[from] BackendError),
}

/// One of GitHub's delivery objects (what the job reads of it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Delivery {
    pub id: u64,
    pub guid: String,
    pub delivered_at: DateTime<Utc>,
    #[serde(default)]
    pub redelivery: bool,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub event: String,
    #[serde(default)]
    pub action: Option<String>,
}

impl Delivery {
    pub fn succeeded(&self) -> bool {
        self.status == "OK" || self.status_code.is_some_and(|c| (200..300).contains(&c))
    }

    /// `pull_request.opened`, or the event alone.
    pub fn label(&self) -> String {
        match &self.action {
            Some(action) if !action.is_empty() => format!("{}.{action}", self.event),
            _ => self.event.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct GuidRecord {
    /// Redeliveries GitHub accepted for this GUID.
    requested: u32,
    /// The listed delivery the job last acted on (asked for, or gave up at): until GitHub
    /// lists a newer attempt, there is nothing new to do for this GUID.
    last: u64,
}

/// What a run decides for one GUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// One of its attempts succeeded.
    Delivered,
    /// Our ingest accepted it; GitHub only saw a slow answer.
    Accepted,
    /// The job already acted on its newest attempt: it waits for GitHub's next one, or gave up.
    Waiting,
    /// `max_attempts` reached.
    GaveUp { attempts: u32 },
    /// Ask GitHub to send `delivery` again, as attempt number `attempt`.
    Redeliver { delivery: u64, attempt: u32 },
}

/// The decision for one GUID's listed attempts (newest last or in any order), given whether
/// the ingest accepted it and the job's record of it.
fn decide(attempts: &[Delivery], accepted: bool, record: GuidRecord, max_attempts: u32) -> Decision {
    if attempts.iter().any(Delivery::succeeded) {
        return Decision::Delivered;
    }
    if accepted {
        return Decision::Accepted;
    }
    let Some(newest) = attempts.iter().max_by_key(|d| (d.delivered_at, d.id)) else {
        return Decision::Delivered;
    };
    if record.last == newest.id {
        return Decision::Waiting;
    }
    // Older attempts may lie before the watermark: the record counts what this job asked for.
    let made = u32::try_from(attempts.len()).unwrap_or(u32::MAX).max(record.requested + 1);
    if made >= max_attempts {
        return Decision::GaveUp { attempts: made };
    }
    Decision::Redeliver { delivery: newest.id, attempt: made + 1 }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every listed GUID was settled.
    #[default]
    Done,
    /// GitHub asked us to wait; the rest waits for the next run.
    RateLimited,
    /// GitHub kept failing; the rest waits for the next run.
    Unavailable,
    /// `max_per_run` redeliveries were asked for.
    Capped,
    /// More deliveries than one run lists ([`MAX_PAGES`] pages).
    Incomplete,
    /// Stopped between two redeliveries (the runner shutting down).
    Stopped,
    /// Another run holds the lock.
    Busy,
    /// The job is switched off.
    Off,
}

/// How a run ended, as the Lambda function answers and the runner logs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub status: Status,
    pub pages: u32,
    /// Deliveries listed since the watermark.
    pub listed: usize,
    /// GUIDs by decision.
    pub delivered: u32,
    pub accepted: u32,
    pub waiting: u32,
    pub gave_up: u32,
    /// Redeliveries GitHub accepted, and those it refused (gone, too old).
    pub redelivered: u32,
    pub refused: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// The watermark after the run (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Report {
    fn with_status(status: Status) -> Self {
        Self { status, ..Self::default() }
    }

    /// The answer of a job that is switched off, and why.
    pub fn off(reason: &str) -> Self {
        Self { reason: Some(reason.to_owned()), ..Self::with_status(Status::Off) }
    }
}

/// Which webhook's deliveries the job reads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// The GitHub App's own webhook, with the App's JWT.
    App,
    /// A repository or organization webhook, with the token (or the App's installation token).
    Hook(HookRef),
}

impl Source {
    fn deliveries_path(&self) -> String {
        match self {
            Self::App => "/app/hook/deliveries".to_owned(),
            Self::Hook(hook) => hook.deliveries_path(),
        }
    }
}

#[derive(Debug)]
pub struct Redeliverer {
    client: GithubClient,
    source: Source,
    /// Finds an App's installation for a repository hook.
    repo: Option<Repo>,
    config: RedeliveryConfig,
    store: Arc<dyn Store>,
    deliveries: DeliveryMarks,
    activity: ActivityLog,
    metrics: Metrics,
}

impl Redeliverer {
    /// The job for this config; `Ok(None)` when it is off (see [`Redeliverer::off_reason`]).
    pub fn new(config: &Config, store: Arc<dyn Store>) -> Result<Option<Self>, RedeliverError> {
        if Self::off_reason(config).is_some() {
            return Ok(None);
        }
        let Some(client) = GithubClient::from_config(&config.github, store.clone()).map_err(RedeliverError::Setting)?
        else {
            return Ok(None);
        };
        let config = config.github.redelivery.clone();
        let source = match &config.hook {
            Some(hook) => Source::Hook(hook.clone()),
            None if client.is_app() => Source::App,
            None => return Ok(None),
        };
        let repo = match &config.hook {
            Some(HookRef::Repo { repo, .. }) => Some(repo.clone()),
            _ => None,
        };
        Ok(Some(Self {
            client,
            source,
            repo,
            config,
            deliveries: DeliveryMarks::new(store.clone()),
            activity: ActivityLog::new(store.clone()),
            metrics: Metrics::new(store.clone()),
            store,
        }))
    }

    /// Why the job does not run with this config, if it does not.
    pub fn off_reason(config: &Config) -> Option<&'static str> {
        let github = &config.github;
        if !github.redelivery.enabled {
            Some("integrations.github.redelivery.enabled is false")
        } else if !github.enabled || (github.token.is_none() && github.app_id.is_none()) {
            Some("no GitHub credentials (GITHUB_TOKEN or a GitHub App)")
        } else if github.app_id.is_none() && github.redelivery.hook.is_none() {
            Some("a token needs the webhook to watch: integrations.github.redelivery.hook (GITHUB_REDELIVERY_HOOK)")
        } else {
            None
        }
    }

    /// What the job watches, for the runner's banner: `the GitHub App's webhook`, `owner/repo#1`.
    pub fn watching(&self) -> String {
        match &self.source {
            Source::App => "the GitHub App's webhook".to_owned(),
            Source::Hook(hook) => hook.to_string(),
        }
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.config.interval_secs)
    }

    /// The local runner's schedule: a run every interval until `stop` turns true. A run in
    /// progress stops between two redeliveries, leaving the rest to the next start.
    pub async fn run_every(self, mut stop: watch::Receiver<bool>) {
        let interval = self.interval();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            match self.run_until(&stop).await {
                Ok(report) => tracing::info!(?report, "GitHub redelivery run"),
                Err(error) => tracing::warn!(%error, "GitHub redelivery run failed; the next run tries again"),
            }
        }
    }

    /// One run to the end.
    pub async fn run(&self) -> Result<Report, RedeliverError> {
        let (_keep, stop) = watch::channel(false);
        self.run_until(&stop).await
    }

    /// One run, stopping between two redeliveries once `stop` is true.
    pub async fn run_until(&self, stop: &watch::Receiver<bool>) -> Result<Report, RedeliverError> {
        let run = uuid::Uuid::new_v4().to_string();
        if !self.store.set_if_absent(LOCK_KEY, &run, LOCK_TTL).await? {
            return Ok(Report::with_status(Status::Busy));
        }
        let result = self.run_locked(stop).await;
        if let Err(error) = self.store.delete(LOCK_KEY).await {
            tracing::warn!(%error, "could not release the redelivery lock; it expires in 5 minutes");
        }
        result
    }

    async fn run_locked(&self, stop: &watch::Receiver<bool>) -> Result<Report, RedeliverError> {
        let started = Utc::now();
        let previous = self.store.get(WATERMARK_KEY).await?.and_then(|w| w.parse::<i64>().ok());
        let since = previous.and_then(|w| DateTime::from_timestamp(w, 0)).unwrap_or(started - FIRST_LOOKBACK);
        let mut report = Report::with_status(Status::Done);

        let listed = match self.list_since(since, &mut report).await {
            Ok(listed) => listed,
            // The watermark stays: the next run lists the same span again.
            Err(GithubError::RateLimited { retry_after }) => {
                self.paused("listing deliveries", retry_after, None, &mut report).await;
                return Ok(report);
            }
            Err(e) => {
                self.activity
                    .record("github", Level::Error, format!("redelivery: listing deliveries failed: {e}"), None)
                    .await;
                return Err(RedeliverError::List(e));
            }
        };
        report.listed = listed.len();

        let mut by_guid: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
        for d in listed {
            by_guid.entry(d.guid.clone()).or_default().push(d);
        }
        let mut groups: Vec<(String, Vec<Delivery>)> = by_guid.into_iter().collect();
        // Oldest first, so that a run cut short leaves a suffix, which the watermark keeps.
        let newest = |attempts: &[Delivery]| attempts.iter().map(|d| (d.delivered_at, d.id)).max();
        groups.sort_by_key(|(_, attempts)| newest(attempts));

        let mut requests = 0u32;
        let mut unprocessed_from = None;
        for (i, (guid, attempts)) in groups.iter().enumerate() {
            if *stop.borrow() {
                report.status = Status::Stopped;
                unprocessed_from = Some(i);
                break;
            }
            if requests >= self.config.max_per_run {
                report.status = Status::Capped;
                unprocessed_from = Some(i);
                break;
            }
            match self.settle(guid, attempts, &mut report).await {
                Ok(asked) => requests += u32::from(asked),
                Err(Halt::Paused) => {
                    unprocessed_from = Some(i);
                    break;
                }
                Err(Halt::Failed(e)) => return Err(e),
            }
        }

        let mut watermark = started - SETTLE;
        if let Some(i) = unprocessed_from
            && let Some(oldest_left) =
                groups[i..].iter().filter_map(|(_, a)| a.iter().map(|d| d.delivered_at).max()).min()
        {
            watermark = watermark.min(oldest_left);
        }
        let watermark = watermark.max(since);
        self.store.set(WATERMARK_KEY, &watermark.timestamp().to_string(), None).await?;
        report.watermark = Some(watermark.to_rfc3339_opts(SecondsFormat::Secs, true));
        Ok(report)
    }

    /// Every delivery at or after `since` (up to [`MAX_PAGES`] pages), following the `Link` cursor.
    async fn list_since(&self, since: DateTime<Utc>, report: &mut Report) -> Result<Vec<Delivery>, GithubError> {
        let base = self.source.deliveries_path();
        let mut cursor: Option<String> = None;
        let mut listed = Vec::new();
        loop {
            if report.pages >= MAX_PAGES {
                report.status = Status::Incomplete;
                let message = format!(
                    "redelivery: more than {} deliveries since the last run; older ones were not examined",
                    listed.len()
                );
                self.activity.record("github", Level::Warn, message, None).await;
                return Ok(listed);
            }
            let mut path = format!("{base}?per_page=100");
            if let Some(c) = &cursor {
                path.push_str("&cursor=");
                path.push_str(c);
            }
            let page = match &self.source {
                Source::App => self.client.get_page("list_deliveries", &path, As::App).await?,
                Source::Hook(_) => {
                    self.client.get_page("list_deliveries", &path, As::Installation(self.repo.as_ref())).await?
                }
            };
            report.pages += 1;
            let mut reached = page.items.is_empty();
            for item in page.items {
                match serde_json::from_value::<Delivery>(item) {
                    Ok(d) if d.delivered_at >= since => listed.push(d),
                    Ok(_) => reached = true,
                    Err(error) => tracing::warn!(%error, "a delivery GitHub listed could not be read; skipped"),
                }
            }
            // GitHub lists newest first: a page reaching past the watermark is the last needed.
            match page.next_cursor {
                Some(next) if !reached && cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
                _ => return Ok(listed),
            }
        }
    }

    /// Decide for one GUID and act; `Ok(true)` when a redelivery was requested.
    async fn settle(&self, guid: &str, attempts: &[Delivery], report: &mut Report) -> Result<bool, Halt> {
        // Only a delivery the queue holds counts: a claim still `pending` may be one whose
        // function died before queueing it.
        let accepted = self.deliveries.queued("github", guid).await.map_err(|e| Halt::Failed(e.into()))?;
        let key = guid_key(guid);
        let record: GuidRecord = self
            .store
            .get(&key)
            .await
            .map_err(|e| Halt::Failed(e.into()))?
            .and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or_default();
        let Some(newest) = attempts.iter().max_by_key(|d| (d.delivered_at, d.id)) else { return Ok(false) };
        let what = format!("delivery {guid} ({}, GitHub delivery {})", newest.label(), newest.id);
        match decide(attempts, accepted, record, self.config.max_attempts) {
            Decision::Delivered => report.delivered += 1,
            Decision::Accepted => report.accepted += 1,
            Decision::Waiting => report.waiting += 1,
            Decision::GaveUp { attempts } => {
                report.gave_up += 1;
                self.save(&key, GuidRecord { last: newest.id, ..record }).await?;
                self.count("gave_up").await;
                let message = format!("redelivery: gave up on {what}: {attempts} attempts failed");
                self.activity.record("github", Level::Error, message, Some(guid)).await;
            }
            Decision::Redeliver { delivery, attempt } => {
                let path = format!("{}/{delivery}/attempts", self.source.deliveries_path());
                let who = match self.source {
                    Source::App => As::App,
                    Source::Hook(_) => As::Installation(self.repo.as_ref()),
                };
                match self.client.post_empty("redeliver", &path, who).await {
                    Ok(_) => {
                        report.redelivered += 1;
                        let updated = GuidRecord { requested: record.requested + 1, last: delivery };
                        self.save(&key, updated).await?;
                        self.count("ok").await;
                        let message = format!("redelivery requested: {what}, attempt {attempt}");
                        self.activity.record("github", Level::Info, message, Some(guid)).await;
                    }
                    Err(GithubError::RateLimited { retry_after }) => {
                        self.count("rate_limited").await;
                        self.paused(&format!("redelivering {what}"), retry_after, Some(guid), report).await;
                        return Err(Halt::Paused);
                    }
                    Err(GithubError::Unavailable(reason)) => {
                        self.count("unavailable").await;
                        report.status = Status::Unavailable;
                        let message = format!("redelivery of {what} paused, GitHub is failing: {reason}");
                        self.activity.record("github", Level::Warn, message, Some(guid)).await;
                        return Err(Halt::Paused);
                    }
                    Err(GithubError::Status { status, message }) => {
                        // Gone or too old: GitHub will not send it, however often we ask.
                        report.refused += 1;
                        self.save(&key, GuidRecord { last: delivery, ..record }).await?;
                        self.count("error").await;
                        let message = format!(
                            "redelivery of {what}, attempt {attempt}, refused: GitHub answered {status}: {message}"
                        );
                        self.activity.record("github", Level::Error, message, Some(guid)).await;
                    }
                    Err(e @ GithubError::Auth(_)) => {
                        self.count("error").await;
                        self.activity.record("github", Level::Error, format!("redelivery: {e}"), Some(guid)).await;
                        return Err(Halt::Failed(RedeliverError::Redeliver(e)));
                    }
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn save(&self, key: &str, record: GuidRecord) -> Result<(), Halt> {
        let value = serde_json::to_string(&record).unwrap_or_default();
        self.store.set(key, &value, Some(GUID_TTL)).await.map_err(|e| Halt::Failed(e.into()))
    }

    async fn count(&self, outcome: &str) {
        self.metrics.incr(metrics::REDELIVERIES, &[("outcome", outcome)]).await;
    }

    async fn paused(&self, what: &str, retry_after: Duration, guid: Option<&str>, report: &mut Report) {
        report.status = Status::RateLimited;
        report.retry_after_secs = Some(retry_after.as_secs());
        let message = format!(
            "redelivery paused while {what}: GitHub asked to wait {}s (rate limit); the next run continues",
            retry_after.as_secs()
        );
        self.activity.record("github", Level::Warn, message, guid).await;
    }
}

/// Why a run stops before its last GUID.
enum Halt {
    /// Rate limited or GitHub failing: this GUID and the rest wait for the next run.
    Paused,
    Failed(RedeliverError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: u64, secs_ago: i64, status_code: u16) -> Delivery {
        Delivery {
            id,
            guid: "g".into(),
            delivered_at: Utc::now() - chrono::Duration::seconds(secs_ago),
            redelivery: id > 1,
            status: if status_code == 202 { "OK".into() } else { format!("Invalid HTTP Response: {status_code}") },
            status_code: Some(status_code),
            event: "pull_request".into(),
            action: Some("opened".into()),
        }
    }

    #[test]
    fn the_newest_failed_attempt_is_redelivered_once_and_only_while_attempts_remain() {
        let none = GuidRecord::default();
        let first = [delivery(1, 60, 503)];
        assert_eq!(decide(&first, false, none, 3), Decision::Redeliver { delivery: 1, attempt: 2 });
        // Any success, or our ingest's acceptance, settles the GUID.
        assert_eq!(decide(&[delivery(1, 60, 503), delivery(2, 30, 202)], false, none, 3), Decision::Delivered);
        assert_eq!(decide(&first, true, none, 3), Decision::Accepted);
        // Asked for delivery 1 already: wait for GitHub's attempt to be listed.
        let asked = GuidRecord { requested: 1, last: 1 };
        assert_eq!(decide(&first, false, asked, 3), Decision::Waiting);
        // The second attempt failed too: the newest is redelivered, as attempt 3.
        let two = [delivery(1, 60, 503), delivery(2, 30, 503)];
        assert_eq!(decide(&two, false, asked, 3), Decision::Redeliver { delivery: 2, attempt: 3 });
        // Only the newest attempt is listed (the first lies before the watermark): the record counts.
        assert_eq!(decide(&[delivery(2, 30, 503)], false, asked, 3), Decision::Redeliver { delivery: 2, attempt: 3 });
        let three = [delivery(1, 90, 503), delivery(2, 60, 503), delivery(3, 30, 503)];
        assert_eq!(decide(&three, false, none, 3), Decision::GaveUp { attempts: 3 });
        let asked_twice = GuidRecord { requested: 2, last: 2 };
        assert_eq!(decide(&[delivery(3, 30, 503)], false, asked_twice, 3), Decision::GaveUp { attempts: 3 });
        // Given up at delivery 3: nothing more until GitHub lists another attempt.
        let gave_up = GuidRecord { last: 3, ..asked_twice };
        assert_eq!(decide(&three, false, gave_up, 3), Decision::Waiting);
        assert_eq!(decide(&three, false, none, 5), Decision::Redeliver { delivery: 3, attempt: 4 });
    }

    #[test]
    fn deliveries_parse_from_githubs_objects() {
        let json = serde_json::json!({
            "id": 12345678, "guid": "0b989ba4-242f-11e5-81e1-c7b6966d2516",
            "delivered_at": "2019-06-03T00:57:16Z", "redelivery": false, "duration": 0.27,
            "status": "OK", "status_code": 200, "event": "issues", "action": "opened",
            "installation_id": 123, "repository_id": 456, "throttled_at": null
        });
        let d: Delivery = serde_json::from_value(json).expect("a delivery");
        assert!(d.succeeded());
        assert_eq!(d.label(), "issues.opened");
        let failed = serde_json::json!({"id": 1, "guid": "g", "delivered_at": "2019-06-03T00:57:16Z",
            "status": "Invalid HTTP Response: 503", "status_code": 503, "event": "push", "action": null});
        let d: Delivery = serde_json::from_value(failed).expect("a delivery");
        assert!(!d.succeeded());
        assert_eq!(d.label(), "push");
    }
}
