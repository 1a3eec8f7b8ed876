//! A signed webhook source: what GitHub and Slack (and the next sender) each own about their
//! requests. The engine's ingest (`engine::ingest`) runs every source the same way: body
//! limit, a configured secret (fail closed), [`WebhookSource::verify`] over the exact raw
//! bytes, [`WebhookSource::parse`] of what it verified, then queueing what it parsed once.
//! A new source is one implementation, one line where the app builds its sources
//! (`engine::app`) and its name in [`NAMES`]; its endpoint is `/api/v1/webhooks/<name>`.

use crate::integrations::signature::{SignatureError, Verified};
use crate::model::event::Record;
use crate::model::fingerprint::Fingerprint;
use http::HeaderMap;

pub trait WebhookSource: Send + Sync + std::fmt::Debug {
    /// The name in its endpoint's path, the namespace of its delivery ids, its activity entries.
    fn name(&self) -> &'static str;

    /// The setting that holds its secret, named when none is configured.
    fn secret_setting(&self) -> &'static str;

    /// The first word of a refusal's log line and activity entry (`<word> signature rejected`).
    fn refused_as(&self) -> &'static str {
        self.name()
    }

    /// Check the request's signature over the exact raw `body`; `now` is Unix seconds, for a
    /// replay window. [`SignatureError::NoSecret`] when no secret is configured.
    fn verify<'a>(&self, headers: &HeaderMap, body: &'a [u8], now: i64) -> Result<Verified<'a>, SignatureError>;

    /// What the caller is told of a refusal: the header at fault, never the expected value.
    fn refusal(&self, reason: SignatureError) -> &'static str;

    /// Whether its inline answers report every integration's health (Slack's
    /// `/aetherium-status`), so that its function builds them all; otherwise it builds none.
    fn reports_health(&self) -> bool {
        false
    }

    /// What a verified request asks for.
    fn parse(&self, headers: &HeaderMap, verified: Verified<'_>) -> Result<Inbound, InboundError>;
}

/// What a verified request asks for, the same shape for every source.
#[derive(Debug)]
pub enum Inbound {
    /// Answered at once with this body; nothing is queued (a ping, a URL verification).
    Reply(serde_json::Value),
    /// Events to queue, each once by its id. Answered with `reply` when given, otherwise with
    /// the event's id and type (202, or 200 for a copy already queued). `signed`, the
    /// fingerprint of the request's signature, names the signed bytes of a single record:
    /// their copy under another id is a replay, refused.
    Queue { records: Vec<Record>, reply: Option<serde_json::Value>, signed: Option<Fingerprint> },
    /// A slash command, answered inline.
    Command(Command),
}

/// A slash command as its sender posted it (the form fields we use), answered inline.
#[derive(Debug, Default, Clone)]
pub struct Command {
    pub command: String,
    pub text: String,
    pub user_id: String,
    pub user_name: String,
    pub channel_id: String,
    pub trigger_id: String,
    /// What tells this invocation from a copy of it: the request's signature, over its
    /// timestamp and body (a replay carries the same one). Empty when the source gives none.
    pub invocation: String,
}

/// Why a verified request cannot be taken: the caller's mistake (400), named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("{0} is missing")]
    MissingHeader(&'static str),
    #[error("{header} must be {rule}")]
    BadHeader { header: &'static str, rule: &'static str },
    #[error("the body is not UTF-8")]
    NotUtf8,
    /// Not JSON, or not the JSON object the source sends.
    #[error("{what} is not {expected}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Malformed { what: &'static str, expected: &'static str, detail: Option<String> },
    /// A field the request's kind requires.
    #[error("{kind} without {field}")]
    MissingField { kind: &'static str, field: &'static str },
}

/// The names of the sources the app builds (`engine::app`): the webhook endpoints that exist.
pub const NAMES: &[&str] = &["github", "slack"];
