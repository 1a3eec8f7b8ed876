//! `POST /api/v1/webhooks/slack`: one URL for slash commands, the Events API and
//! interactivity. Verified before anything is parsed.

use super::gate::{self, Signer};
use super::ingest::{self, Queued};
use super::{ApiError, Request, Response, json};
use crate::edge::slash_commands;
use crate::engine::app::App;
use crate::integrations::slack::request::{self, SlackRequest};
use http::StatusCode;
use serde_json::json;

pub async fn handle(app: &App, req: Request) -> Result<Response, ApiError> {
    let verified = gate::verify(app, Signer::Slack, &req).await?;

    let content_type = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let parsed = request::parse(content_type, verified).map_err(ApiError::BadRequest)?;
    match parsed {
        SlackRequest::UrlVerification { challenge } => Ok(json(StatusCode::OK, &json!({ "challenge": challenge }))),
        SlackRequest::Command(cmd) => {
            tracing::info!(command = %cmd.command, user = %cmd.user_id, "slash command");
            Ok(json(StatusCode::OK, &slash_commands::answer(app, &cmd).await))
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
