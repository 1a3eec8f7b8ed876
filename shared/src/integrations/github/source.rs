//! GitHub as a webhook source: `X-Hub-Signature-256` over the raw body, then the event and
//! delivery headers, then the payload normalised into one queue record.

use super::webhook::{self, WebhookError};
use crate::config::GithubConfig;
use crate::integrations::signature::{HmacVerifier, SignatureError, Verified};
use crate::integrations::source::{Inbound, InboundError, WebhookSource};
use crate::model::fingerprint::Fingerprint;
use http::HeaderMap;
use serde_json::json;

pub const EVENT_HEADER: &str = "X-GitHub-Event";
pub const DELIVERY_HEADER: &str = "X-GitHub-Delivery";
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
const LEGACY_SIGNATURE_HEADER: &str = "X-Hub-Signature";

#[derive(Debug)]
pub struct GithubSource {
    /// The current secret and, during a rotation, the previous one.
    keys: Option<HmacVerifier>,
}

impl GithubSource {
    pub fn from_config(github: &GithubConfig) -> Self {
        Self { keys: HmacVerifier::new(github.webhook_secret.iter().chain(&github.webhook_secret_previous)) }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, InboundError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(InboundError::MissingHeader(name))
}

impl WebhookSource for GithubSource {
    fn name(&self) -> &'static str {
        "github"
    }

    fn secret_setting(&self) -> &'static str {
        "GITHUB_WEBHOOK_SECRET (integrations.github.webhook_secret)"
    }

    /// `webhook signature rejected`, as the log has said since the first release.
    fn refused_as(&self) -> &'static str {
        "webhook"
    }

    fn verify<'a>(&self, headers: &HeaderMap, body: &'a [u8], _now: i64) -> Result<Verified<'a>, SignatureError> {
        let keys = self.keys.as_ref().ok_or(SignatureError::NoSecret)?;
        match headers.get(SIGNATURE_HEADER) {
            None if headers.contains_key(LEGACY_SIGNATURE_HEADER) => Err(SignatureError::LegacyOnly),
            signature => keys.verify_github(signature.map(|v| v.as_bytes()), body),
        }
    }

    fn refusal(&self, reason: SignatureError) -> &'static str {
        match reason {
            SignatureError::LegacyOnly => "X-Hub-Signature-256 is required; sha1 X-Hub-Signature is not accepted",
            SignatureError::Missing => "X-Hub-Signature-256 is missing",
            _ => "X-Hub-Signature-256 is not a valid signature of this body",
        }
    }

    fn parse(&self, headers: &HeaderMap, verified: Verified<'_>) -> Result<Inbound, InboundError> {
        let event = header(headers, EVENT_HEADER)?;
        if !webhook::event_name_ok(event) {
            return Err(InboundError::BadHeader { header: EVENT_HEADER, rule: "lower-case letters, digits and _" });
        }
        let delivery = header(headers, DELIVERY_HEADER)?;
        if delivery.len() > 128 || !delivery.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(InboundError::BadHeader { header: DELIVERY_HEADER, rule: "a GUID" });
        }
        let record = webhook::normalize(event, delivery, verified).map_err(|e| match e {
            WebhookError::NotUtf8 => InboundError::NotUtf8,
            WebhookError::NotJson(_) => {
                InboundError::Malformed { what: "the body", expected: "a JSON object", detail: None }
            }
            e @ WebhookError::WrongShape { .. } => InboundError::Malformed {
                what: "the body",
                expected: "the payload X-GitHub-Event names",
                detail: Some(e.to_string()),
            },
        })?;
        if event == "ping" {
            return Ok(Inbound::Reply(json!({ "status": "pong", "id": delivery })));
        }
        // The signature stands for the signed bytes: a copy of them under a fresh delivery id
        // (a replay) is known by it.
        let signed = header(headers, SIGNATURE_HEADER).ok().map(|sig| Fingerprint::of(&[sig.as_bytes()]));
        Ok(Inbound::Queue { records: vec![record], reply: None, signed })
    }
}
