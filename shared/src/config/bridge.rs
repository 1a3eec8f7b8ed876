//! `events.subscribe`, `events.inbox` and `events.bridge`: what the bus bridge listens to.
//! Each key has an environment override, like every other.

use super::fields::{env_number, nonempty};
use super::raw::{RawBridge, RawInbox};
use super::{Env, Problem};
use crate::model::event::topics;
use std::time::Duration;

/// The families the HTTP ingest accepts, one pattern each.
pub const DEFAULT_SUBSCRIBE: &[&str] = &["task.*", "vm.*", "integration.*", "custom.*"];
/// Hash-tagged, so that on a cluster the stream and anything keyed beside it share a slot.
pub const DEFAULT_INBOX: &str = "aetherium:{inbox}";
pub const DEFAULT_INBOX_MAX_LEN: usize = 100_000;
const DEFAULT_CLAIM_IDLE: u64 = 30;
/// A minute's schedule plus ten seconds of overlap with the next invocation.
const DEFAULT_LISTEN: u64 = 70;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// Whether a bridge is deployed (`events.bridge.enabled`, `AETHERIUM_BUS_BRIDGE`): health
    /// expects its heartbeat only then.
    pub enabled: bool,
    /// Channels and glob patterns, each inside one of the platform's families.
    pub subscribe: Vec<String>,
    /// The durable stream read with a consumer group; `None` when turned off.
    pub inbox: Option<String>,
    /// The bridge trims the inbox to about this many entries.
    pub inbox_max_len: usize,
    /// How long an entry may sit pending with a consumer before another claims it.
    pub claim_idle: Duration,
    /// How long one Lambda invocation listens.
    pub listen: Duration,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            subscribe: DEFAULT_SUBSCRIBE.iter().map(|s| (*s).to_owned()).collect(),
            inbox: Some(DEFAULT_INBOX.to_owned()),
            inbox_max_len: DEFAULT_INBOX_MAX_LEN,
            claim_idle: Duration::from_secs(DEFAULT_CLAIM_IDLE),
            listen: Duration::from_secs(DEFAULT_LISTEN),
        }
    }
}

impl BridgeConfig {
    pub(super) fn resolve(
        subscribe: Option<Vec<String>>,
        inbox: RawInbox,
        bridge: RawBridge,
        env: Env<'_>,
        problems: &mut Vec<Problem>,
    ) -> Self {
        let from_env =
            nonempty(env("AETHERIUM_EVENTS_SUBSCRIBE")).map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
        let key = if from_env.is_some() { "events.subscribe (AETHERIUM_EVENTS_SUBSCRIBE)" } else { "events.subscribe" };
        let subscribe: Vec<String> = match from_env.or(subscribe) {
            None => DEFAULT_SUBSCRIBE.iter().map(|s| (*s).to_owned()).collect(),
            Some(list) => list.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect(),
        };
        for pattern in &subscribe {
            if let Err(message) = check_pattern(pattern) {
                problems.push(Problem { key: key.to_owned(), message });
            }
        }
        let inbox_name = match nonempty(env("AETHERIUM_EVENTS_INBOX")).or(nonempty(inbox.stream)) {
            None => Some(DEFAULT_INBOX.to_owned()),
            Some(off) if off == "off" => None,
            Some(name) => Some(name),
        };
        let max_len = env_number("AETHERIUM_INBOX_MAX_LEN", "events.inbox.max_len", inbox.max_len, env, problems)
            .unwrap_or(DEFAULT_INBOX_MAX_LEN);
        if max_len == 0 {
            problems.push(Problem { key: "events.inbox.max_len".into(), message: "must be at least 1".into() });
        }
        let idle = env_number(
            "AETHERIUM_INBOX_CLAIM_IDLE_SECONDS",
            "events.inbox.claim_idle_seconds",
            inbox.claim_idle_seconds,
            env,
            problems,
        )
        .unwrap_or(DEFAULT_CLAIM_IDLE);
        let listen = env_number(
            "AETHERIUM_BRIDGE_LISTEN_SECONDS",
            "events.bridge.listen_seconds",
            bridge.listen_seconds,
            env,
            problems,
        )
        .unwrap_or(DEFAULT_LISTEN);
        if !(1..=840).contains(&listen) {
            problems.push(Problem {
                key: "events.bridge.listen_seconds".into(),
                message: "must be 1 to 840: a Lambda invocation ends at 900 seconds".into(),
            });
        }
        let enabled = match nonempty(env("AETHERIUM_BUS_BRIDGE")).as_deref() {
            None => bridge.enabled.unwrap_or(true),
            Some("true") => true,
            Some("false") => false,
            Some(other) => {
                problems.push(Problem {
                    key: "events.bridge.enabled (AETHERIUM_BUS_BRIDGE)".into(),
                    message: format!("`{other}` is not true or false"),
                });
                true
            }
        };
        Self {
            enabled,
            subscribe,
            inbox: inbox_name,
            inbox_max_len: max_len.max(1),
            claim_idle: Duration::from_secs(idle.max(1)),
            listen: Duration::from_secs(listen),
        }
    }
}

/// A pattern is a family, a dot, then a topic or a Redis glob over the rest (`vm.*`,
/// `task.completed`). `github.` and `slack.` topics come only from the verified webhooks.
fn check_pattern(pattern: &str) -> Result<(), String> {
    let (family, rest) = pattern.split_once('.').unwrap_or((pattern, ""));
    if matches!(family, "github" | "slack") {
        return Err(format!(
            "`{pattern}`: {family}.* events come only from the verified {family} webhook, not from the bus"
        ));
    }
    if !topics::PLATFORM_FAMILIES.contains(&family) || rest.is_empty() {
        return Err(format!(
            "`{pattern}` must start with one of the families {}, for example vm.*",
            topics::PLATFORM_FAMILIES.iter().map(|f| format!("{f}.")).collect::<Vec<_>>().join(", ")
        ));
    }
    let ok = rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.*?[]".contains(&b));
    if !ok {
        return Err(format!("`{pattern}` may hold only a-z, 0-9, `_`, `.` and the glob characters * ? [ ]"));
    }
    Ok(())
}
