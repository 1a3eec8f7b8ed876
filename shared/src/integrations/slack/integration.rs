//! The Slack integration: notifications and interactive messages through chat.postMessage,
//! follow-ups to button clicks through response_url, and a health check.

use super::client::{Button, SlackClient};
use crate::backends::store::Store;
use crate::model::event::{Artifact, ArtifactRef, Event, Notification};
use crate::model::integration::{Health, Integration, IntegrationConfig, IntegrationError};
use crate::model::markup::{self, Markup};
use crate::observe::activity::ActivityLog;
use async_trait::async_trait;
use serde_json::json;
use std::sync::Arc;

const NAME: &str = "slack";

#[derive(Debug)]
pub struct SlackIntegration {
    client: Option<SlackClient>,
    activity: ActivityLog,
}

impl SlackIntegration {
    pub fn new(client: Option<SlackClient>, store: Arc<dyn Store>) -> Self {
        Self { client, activity: ActivityLog::new(store) }
    }

    fn client(&self) -> Result<&SlackClient, IntegrationError> {
        self.client.as_ref().ok_or_else(|| IntegrationError::NotConfigured {
            integration: NAME.into(),
            reason: "set SLACK_BOT_TOKEN".into(),
        })
    }

    /// The guide's `SendInteractiveMessage`: text and a row of buttons.
    pub async fn send_interactive_message(
        &self,
        channel: &str,
        text: &str,
        buttons: &[Button],
    ) -> Result<(), IntegrationError> {
        // The client writes how it went to the activity log.
        self.client()?.send_interactive_message(channel, text, buttons).await.map(drop).map_err(Into::into)
    }

    /// Replace an Approve/Reject message with who decided.
    async fn follow_up(&self, event: &Event) -> Result<(), IntegrationError> {
        let verdict = match event.data_str("action_id") {
            Some("approve") => "✅ Approved",
            Some("reject") => "❌ Rejected",
            _ => return Ok(()),
        };
        let Some(url) = event.data_str("response_url") else {
            return Err(IntegrationError::Permanent {
                integration: NAME.into(),
                reason: "the action has no response_url".into(),
            });
        };
        let user = event.data_str("user_name").or(event.data_str("user_id")).unwrap_or("someone");
        let body = json!({ "replace_original": true, "text": format!("{verdict} by {}", markup::slack(user)) });
        let result = self.client()?.respond(url, &body).await.map_err(Into::into);
        self.activity.outcome(NAME, &format!("{verdict} follow-up"), result.as_ref().map(drop), Some(&event.id)).await;
        result
    }
}

#[async_trait]
impl Integration for SlackIntegration {
    fn name(&self) -> &str {
        NAME
    }

    async fn initialize(&self, _config: &IntegrationConfig) -> Result<(), IntegrationError> {
        Ok(())
    }

    /// Button clicks (`slack.action.approve` / `reject`) get their follow-up; other events
    /// reach Slack through notify routes.
    async fn handle_event(&self, event: &Event) -> Result<(), IntegrationError> {
        if event.kind.starts_with("slack.action.") { self.follow_up(event).await } else { Ok(()) }
    }

    async fn send_notification(&self, n: &Notification) -> Result<(), IntegrationError> {
        let client = self.client()?;
        // The client writes how it went to the activity log.
        match n.data.get("actions") {
            Some(actions) => {
                let buttons: Vec<Button> =
                    serde_json::from_value(actions.clone()).map_err(|e| IntegrationError::Permanent {
                        integration: NAME.into(),
                        reason: format!("`actions` must be a list of {{text, action_id, value}}: {e}"),
                    })?;
                client.send_interactive_message(&n.target, &n.message, &buttons).await
            }
            None => client.post_message(&n.target, &n.message, None).await,
        }
        .map(drop)
        .map_err(IntegrationError::from)
    }

    async fn create_artifact(&self, artifact: &Artifact) -> Result<ArtifactRef, IntegrationError> {
        Err(IntegrationError::unsupported(NAME, format!("artifacts (of type `{}`)", artifact.kind)))
    }

    fn markup(&self) -> Markup {
        Markup::Slack
    }

    async fn health(&self) -> Health {
        let Some(client) = &self.client else { return Health::Disabled };
        match client.probe().await {
            Ok(_) => Health::Healthy,
            Err(super::client::SlackError::Api(code)) => Health::Unhealthy(code),
            Err(super::client::SlackError::RateLimited { .. }) => Health::Unhealthy("rate limited".into()),
            Err(_) => Health::Unhealthy("unreachable".into()),
        }
    }
}
