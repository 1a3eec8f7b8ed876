//! `POST /api/v1/webhooks/slack`: one URL for slash commands, the Events API and
//! interactivity. Verified before anything is parsed.

use super::ingest::{self, Queued};
use super::{ApiError, Request, Response, json};
use crate::activity::ActivityLog;
use crate::app::App;
use crate::signature::SignatureError;
use crate::slack::commands;
use crate::slack::request::{self, SlackRequest};
use http::StatusCode;
use serde_json::json;

pub async fn handle(app: &App, req: Request) -> Result<Response, ApiError> {
    let limit = app.config.max_body_bytes;
    if req.body().len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let verifier = app
        .slack_signing
        .as_ref()
        .ok_or(ApiError::Misconfigured { setting: "SLACK_SIGNING_SECRET (integrations.slack.signing_secret)" })?;
    let h = |name: &str| req.headers().get(name).map(|v| v.as_bytes());
    let verified =
        verifier.verify_slack(h("x-slack-request-timestamp"), h("x-slack-signature"), req.body(), app.clock.now());
    if let Err(reason) = verified {
        tracing::warn!(%reason, "slack signature rejected");
        ActivityLog::new(app.store.clone()).rejected("slack", &format!("slack signature rejected: {reason}")).await;
        return Err(ApiError::Unauthorized(match reason {
            SignatureError::BadTimestamp => "X-Slack-Request-Timestamp is missing or malformed",
            SignatureError::Stale => "X-Slack-Request-Timestamp is more than 5 minutes from now",
            SignatureError::Missing => "X-Slack-Signature is missing",
            _ => "X-Slack-Signature is not a valid signature of this request",
        }));
    }

    let content_type = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let parsed = request::parse(content_type, req.body()).map_err(ApiError::BadRequest)?;
    match parsed {
        SlackRequest::UrlVerification { challenge } => Ok(json(StatusCode::OK, &json!({ "challenge": challenge }))),
        SlackRequest::Command(cmd) => {
            tracing::info!(command = %cmd.command, user = %cmd.user_id, "slash command");
            Ok(json(StatusCode::OK, &commands::answer(app, &cmd).await))
        }
        SlackRequest::Event(event) => {
            let outcome = ingest::enqueue_once(app, "slack", &event.id, &event.to_json()).await?;
            tracing::info!(event_id = %event.id, topic = %event.kind, duplicate = (outcome == Queued::Duplicate), "slack event acknowledged");
            Ok(json(StatusCode::OK, &json!({ "ok": true })))
        }
        SlackRequest::Actions(events) => {
            for event in &events {
                ingest::enqueue_once(app, "slack", &event.id, &event.to_json()).await?;
                tracing::info!(event_id = %event.id, topic = %event.kind, "slack action queued");
            }
            Ok(json(StatusCode::OK, &json!({ "ok": true })))
        }
        SlackRequest::SslCheck => Ok(json(StatusCode::OK, &json!({ "ok": true }))),
        SlackRequest::BotMessage => Ok(json(StatusCode::OK, &json!({ "ok": true, "ignored": "bot message" }))),
        SlackRequest::Ignored(what) => {
            tracing::info!(%what, "slack request acknowledged and ignored");
            Ok(json(StatusCode::OK, &json!({ "ok": true })))
        }
    }
}
