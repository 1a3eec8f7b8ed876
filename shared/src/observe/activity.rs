//! The activity log: what the integrations did and what failed, appended to a capped log in
//! the store that every instance shares. Never holds a secret.
//!
//! Rejected requests (bad signatures: anyone on the internet can send them) are kept apart
//! and counted: one tally per day, one field per minute, source and reason. However many
//! arrive, they add at most one line per minute, source and reason, and never push an
//! integration's entries out of the capped log.

use crate::backends::store::{Store, Write};
use crate::model::integration::IntegrationError;
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const KEY: &str = "activity:log";
pub const CAP: usize = 10_000;
/// `activity:rejected:<YYYY-MM-DD>`: a hash of `HH:MM|<source>|<message>` → count.
pub const REJECTED_PREFIX: &str = "activity:rejected:";
/// How many days of rejections are kept and shown (today and the two before).
pub const REJECTED_DAYS: i64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub timestamp: String,
    pub component: String,
    pub level: Level,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// For a tally of rejected requests: how many arrived in that minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct ActivityLog {
    store: Arc<dyn Store>,
}

impl ActivityLog {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Append an entry. A store failure is logged, never returned: the log must not turn a
    /// success into a failure.
    pub async fn record(&self, component: &str, level: Level, message: impl Into<String>, event_id: Option<&str>) {
        self.append(Self::op(component, level, message, event_id)).await;
    }

    async fn append(&self, entry: Write) {
        if let Err(error) = self.store.apply(&[entry]).await {
            tracing::warn!(%error, "could not append to the activity log");
        }
    }

    /// The write that appends an entry, for a batch ([`Store::apply`]).
    pub fn op(component: &str, level: Level, message: impl Into<String>, event_id: Option<&str>) -> Write {
        Write::LogAppend { key: KEY.into(), entry: line(component, level, message.into(), event_id), cap: CAP }
    }

    /// Record how an integration call went: info when it succeeded, warn when it will be
    /// retried, error when it failed for good.
    pub async fn outcome(
        &self,
        component: &str,
        what: &str,
        outcome: Result<(), &IntegrationError>,
        event_id: Option<&str>,
    ) {
        self.append(Self::outcome_op(component, what, outcome, event_id)).await;
    }

    /// [`ActivityLog::outcome`] as a write for a batch ([`Store::apply`]).
    pub fn outcome_op(
        component: &str,
        what: &str,
        outcome: Result<(), &IntegrationError>,
        event_id: Option<&str>,
    ) -> Write {
        match outcome {
            Ok(()) => Self::op(component, Level::Info, format!("{what}: ok"), event_id),
            Err(e) if e.is_retryable() => {
                Self::op(component, Level::Warn, format!("{what}: {e} (will retry)"), event_id)
            }
            Err(e) => Self::op(component, Level::Error, format!("{what}: {e}"), event_id),
        }
    }

    /// The newest entries first.
    pub async fn recent(&self, limit: usize) -> Result<Vec<Entry>, crate::backends::error::BackendError> {
        let lines = self.store.log_recent(KEY, limit).await?;
        Ok(lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect())
    }

    /// Count a rejected request from `source` (`github`, `slack`) in this minute's tally.
    /// A store failure is logged, never returned.
    pub async fn rejected(&self, source: &str, message: &str) {
        let now = Utc::now();
        let key = format!("{REJECTED_PREFIX}{}", now.format("%Y-%m-%d"));
        let field = format!("{}|{source}|{message}", now.format("%H:%M"));
        let ttl = std::time::Duration::from_secs(REJECTED_DAYS as u64 * 24 * 3600);
        if let Err(error) = self.store.hash_incr_window(&key, &field, 1, ttl).await {
            tracing::warn!(%error, "could not count a rejected request");
        }
    }

    /// A webhook refused for its signature: [`Self::rejected`], and counted in
    /// `webhook_signatures_rejected_total{source}`, which the stack alarms on (a wrong secret
    /// after a deploy turns every delivery into a 401, and 401s are not Lambda errors).
    pub async fn signature_rejected(&self, source: &str, message: &str) {
        let metrics = crate::observe::metrics::Metrics::new(self.store.clone());
        let labels = [("source", source)];
        let counted = metrics.incr(crate::observe::metrics::SIGNATURES_REJECTED, &labels);
        futures_util::join!(self.rejected(source, message), counted);
    }

    /// The tallies of rejected requests, one entry per minute, source and reason (level
    /// warn, with its `count`), newest first.
    pub async fn rejections(&self) -> Result<Vec<Entry>, crate::backends::error::BackendError> {
        let today = Utc::now().date_naive();
        let mut entries = Vec::new();
        for back in 0..REJECTED_DAYS {
            let day = today - chrono::Duration::days(back);
            let key = format!("{REJECTED_PREFIX}{}", day.format("%Y-%m-%d"));
            for (field, count) in self.store.hash_all(&key).await? {
                let mut parts = field.splitn(3, '|');
                let (Some(minute), Some(source), Some(message)) = (parts.next(), parts.next(), parts.next()) else {
                    continue;
                };
                entries.push(Entry {
                    timestamp: format!("{}T{minute}:00.000Z", day.format("%Y-%m-%d")),
                    component: source.to_owned(),
                    level: Level::Warn,
                    message: message.to_owned(),
                    event_id: None,
                    count: count.parse().ok(),
                });
            }
        }
        entries.sort_by(|a, b| b.timestamp.cmp(&a.timestamp));
        Ok(entries)
    }
}

fn line(component: &str, level: Level, message: String, event_id: Option<&str>) -> String {
    let entry = Entry {
        timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        component: component.to_owned(),
        level,
        message,
        event_id: event_id.map(str::to_owned),
        count: None,
    };
    serde_json::to_string(&entry).unwrap_or_default()
}
