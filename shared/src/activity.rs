//! The activity log: what the integrations did and what failed, appended to a capped log in
//! the store that every instance shares. Never holds a secret.

use crate::integration::IntegrationError;
use crate::store::{Store, Write};
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const KEY: &str = "activity:log";
pub const CAP: usize = 10_000;

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
    pub async fn recent(&self, limit: usize) -> Result<Vec<Entry>, crate::error::BackendError> {
        let lines = self.store.log_recent(KEY, limit).await?;
        Ok(lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect())
    }
}

fn line(component: &str, level: Level, message: String, event_id: Option<&str>) -> String {
    let entry = Entry {
        timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        component: component.to_owned(),
        level,
        message,
        event_id: event_id.map(str::to_owned),
    };
    serde_json::to_string(&entry).unwrap_or_default()
}
