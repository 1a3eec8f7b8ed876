//! Slack as a webhook source: `X-Slack-Signature` over `v0:{timestamp}:{raw body}` inside the
//! replay window, then one URL for the Events API, slash commands and interactivity.

use super::request::{self, SlackRequest};
use crate::config::SlackConfig;
use crate::integrations::signature::{HmacVerifier, SignatureError, Verified};
use crate::integrations::source::{Inbound, InboundError, WebhookSource};
use http::HeaderMap;
use serde_json::json;

pub const TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Slack-Signature";

#[derive(Debug)]
pub struct SlackSource {
    keys: Option<HmacVerifier>,
}

impl SlackSource {
    pub fn from_config(slack: &SlackConfig) -> Self {
        Self { keys: HmacVerifier::new(slack.signing_secret.iter()) }
    }
}

impl WebhookSource for SlackSource {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn secret_setting(&self) -> &'static str {
        "SLACK_SIGNING_SECRET (integrations.slack.signing_secret)"
    }

    fn reports_health(&self) -> bool {
        true
    }

    fn verify<'a>(&self, headers: &HeaderMap, body: &'a [u8], now: i64) -> Result<Verified<'a>, SignatureError> {
        let keys = self.keys.as_ref().ok_or(SignatureError::NoSecret)?;
        let header = |name: &str| headers.get(name).map(|v| v.as_bytes());
        keys.verify_slack(header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), body, now)
    }

    fn refusal(&self, reason: SignatureError) -> &'static str {
        match reason {
            SignatureError::BadTimestamp => "X-Slack-Request-Timestamp is missing or malformed",
            SignatureError::Stale => "X-Slack-Request-Timestamp is more than 5 minutes from now",
            SignatureError::Missing => "X-Slack-Signature is missing",
            _ => "X-Slack-Signature is not a valid signature of this request",
        }
    }

    fn parse(&self, headers: &HeaderMap, verified: Verified<'_>) -> Result<Inbound, InboundError> {
        let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let ok = || json!({ "ok": true });
        Ok(match request::parse(content_type, verified)? {
            SlackRequest::UrlVerification { challenge } => Inbound::Reply(json!({ "challenge": challenge })),
            SlackRequest::Command(mut cmd) => {
                cmd.invocation =
                    headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                Inbound::Command(cmd)
            }
            // Slack wants a 200 within 3 s, and retries anything else: a copy is answered alike.
            SlackRequest::Event(record) => Inbound::Queue { records: vec![record], reply: Some(ok()), signed: None },
            SlackRequest::Actions(records) => Inbound::Queue { records, reply: Some(ok()), signed: None },
            SlackRequest::SslCheck => Inbound::Reply(ok()),
            SlackRequest::BotMessage => Inbound::Reply(json!({ "ok": true, "ignored": "bot message" })),
            SlackRequest::Ignored(what) => {
                tracing::info!(%what, "slack request acknowledged and ignored");
                Inbound::Reply(ok())
            }
        })
    }
}
