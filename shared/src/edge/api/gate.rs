//! The one gate in front of both signed webhooks: the body limit, a configured secret (fail
//! closed), the signature over the exact raw bytes, and on refusal a log line, an activity
//! entry and a 401 that names the header. What it returns, [`Verified`], is the only input
//! the GitHub and Slack parsers accept.

use super::{ApiError, Request};
use crate::engine::app::App;
use crate::integrations::signature::{SignatureError, Verified};
use crate::observe::activity::ActivityLog;

/// Who signed the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    Github,
    Slack,
}

impl Signer {
    fn name(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Slack => "slack",
        }
    }

    fn setting(self) -> &'static str {
        match self {
            Self::Github => "GITHUB_WEBHOOK_SECRET (integrations.github.webhook_secret)",
            Self::Slack => "SLACK_SIGNING_SECRET (integrations.slack.signing_secret)",
        }
    }

    /// What the caller is told: the header at fault, never the expected value.
    fn refusal(self, reason: SignatureError) -> &'static str {
        match (self, reason) {
            (Self::Github, SignatureError::LegacyOnly) => {
                "X-Hub-Signature-256 is required; sha1 X-Hub-Signature is not accepted"
            }
            (Self::Github, SignatureError::Missing) => "X-Hub-Signature-256 is missing",
            (Self::Github, _) => "X-Hub-Signature-256 is not a valid signature of this body",
            (Self::Slack, SignatureError::BadTimestamp) => "X-Slack-Request-Timestamp is missing or malformed",
            (Self::Slack, SignatureError::Stale) => "X-Slack-Request-Timestamp is more than 5 minutes from now",
            (Self::Slack, SignatureError::Missing) => "X-Slack-Signature is missing",
            (Self::Slack, _) => "X-Slack-Signature is not a valid signature of this request",
        }
    }
}

/// Check `req` as `signer` signs it. Nothing of the body is read before this returns `Ok`.
pub async fn verify<'r>(app: &App, signer: Signer, req: &'r Request) -> Result<Verified<'r>, ApiError> {
    let limit = app.config.max_body_bytes;
    if req.body().len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let verifier = match signer {
        Signer::Github => app.github_webhook.as_ref(),
        Signer::Slack => app.slack_signing.as_ref(),
    };
    let verifier = verifier.ok_or(ApiError::Misconfigured { setting: signer.setting() })?;
    let header = |name: &str| req.headers().get(name).map(|v| v.as_bytes());
    let checked = match signer {
        Signer::Github => match header("x-hub-signature-256") {
            None if req.headers().contains_key("x-hub-signature") => Err(SignatureError::LegacyOnly),
            signature => verifier.verify_github(signature, req.body()),
        },
        Signer::Slack => verifier.verify_slack(
            header("x-slack-request-timestamp"),
            header("x-slack-signature"),
            req.body(),
            app.clock.now(),
        ),
    };
    match checked {
        Ok(verified) => Ok(verified),
        Err(reason) => {
            let source = signer.name();
            // The old GitHub message said "webhook", Slack's "slack": both kept for log searches.
            let what = if signer == Signer::Github { "webhook" } else { "slack" };
            tracing::warn!(%reason, source, "{what} signature rejected");
            ActivityLog::new(app.store.clone()).rejected(source, &format!("{what} signature rejected: {reason}")).await;
            Err(ApiError::Unauthorized(signer.refusal(reason)))
        }
    }
}
