//! The built-in route actions: hand an event to an integration, notify, create an artifact,
//! publish a derived event.

use crate::config::routes::NotifyRoute;
use crate::engine::action::Action;
use crate::engine::ingest::{Enqueue, Id};
use crate::model::event::{Event, Notification};
use crate::model::integration::{Integration, IntegrationError};
use crate::model::markup::Markup;
use crate::model::template::Template;
use async_trait::async_trait;
use std::sync::Arc;

/// The `handle` route: hand the event to an integration's `handle_event`.
#[derive(Debug)]
pub struct Handle {
    name: String,
    integration: Arc<dyn Integration>,
}

impl Handle {
    pub fn new(integration: Arc<dyn Integration>) -> Arc<Self> {
        Self::named(format!("{}.handle", integration.name()), integration)
    }

    pub fn named(name: impl Into<String>, integration: Arc<dyn Integration>) -> Arc<Self> {
        Arc::new(Self { name: name.into(), integration })
    }
}

#[async_trait]
impl Action for Handle {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(&self, event: &Event) -> Result<(), IntegrationError> {
        self.integration.handle_event(event).await
    }

    fn integration(&self) -> Option<&str> {
        Some(self.integration.name())
    }

    fn kind(&self) -> &str {
        "handle"
    }
}

/// The `notify` route: a message rendered from the event's data, sent by an integration to
/// a target that may be templated too (`#team-{{team}}`).
#[derive(Debug)]
pub struct Notify {
    name: String,
    integration: Arc<dyn Integration>,
    target: Template,
    template: Template,
    /// Buttons: `text`, `action_id` and `value`, each rendered from the event.
    buttons: Vec<[Template; 3]>,
}

impl Notify {
    pub fn new(
        name: impl Into<String>,
        integration: Arc<dyn Integration>,
        target: Template,
        template: Template,
    ) -> Arc<Self> {
        Self::with_buttons(name, integration, target, template, Vec::new())
    }

    /// A notify route with buttons under the message: `[text, action_id, value]` each.
    pub fn with_buttons(
        name: impl Into<String>,
        integration: Arc<dyn Integration>,
        target: Template,
        template: Template,
        buttons: Vec<[Template; 3]>,
    ) -> Arc<Self> {
        Arc::new(Self { name: name.into(), integration, target, template, buttons })
    }

    /// The configured `notify` route, its templates parsed at load.
    pub fn from_route(name: impl Into<String>, integration: Arc<dyn Integration>, route: &NotifyRoute) -> Arc<Self> {
        let (target, template) = (route.target.clone(), route.message.clone());
        Self::with_buttons(name, integration, target, template, route.buttons.clone())
    }
}

#[async_trait]
impl Action for Notify {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(&self, event: &Event) -> Result<(), IntegrationError> {
        let fail = |reason: String| IntegrationError::Permanent {
            integration: self.integration.name().to_owned(),
            reason: format!("route `{}`: {reason}", self.name),
        };
        // The message is text the destination parses; the target and the buttons' ids and
        // values are identifiers (button text is Slack plain_text, which parses nothing).
        let message = self.template.render_for(&event.data, self.integration.markup()).map_err(fail)?;
        let target = self.target.render(&event.data).map_err(fail)?;
        let mut notification = Notification::message(target, message);
        if !self.buttons.is_empty() {
            let mut buttons = Vec::with_capacity(self.buttons.len());
            for [text, action_id, value] in &self.buttons {
                buttons.push(serde_json::json!({
                    "text": text.render(&event.data).map_err(fail)?,
                    "action_id": action_id.render(&event.data).map_err(fail)?,
                    "value": value.render(&event.data).map_err(fail)?,
                }));
            }
            notification.data.insert("actions".into(), serde_json::Value::Array(buttons));
        }
        self.integration.send_notification(&notification).await
    }

    fn integration(&self) -> Option<&str> {
        Some(self.integration.name())
    }

    fn kind(&self) -> &str {
        "notify"
    }
}

/// The `artifact` route: create something (a pull request) from the event's data.
#[derive(Debug)]
pub struct CreateArtifact {
    name: String,
    integration: Arc<dyn Integration>,
    kind: String,
    content: serde_json::Map<String, serde_json::Value>,
}

impl CreateArtifact {
    pub fn new(
        name: impl Into<String>,
        integration: Arc<dyn Integration>,
        kind: impl Into<String>,
        content: serde_json::Map<String, serde_json::Value>,
    ) -> Arc<Self> {
        Arc::new(Self { name: name.into(), integration, kind: kind.into(), content })
    }
}

#[async_trait]
impl Action for CreateArtifact {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(&self, event: &Event) -> Result<(), IntegrationError> {
        // `body` is text the destination renders (a pull request's description); every other
        // field is an identifier (owner, repo, branches) or a title, kept as the data says.
        let mut content = serde_json::Map::with_capacity(self.content.len());
        for (key, value) in &self.content {
            let markup = if key == "body" { self.integration.markup() } else { Markup::Plain };
            let rendered = crate::model::template::render_value_for(value, &event.data, markup).map_err(|reason| {
                IntegrationError::Permanent {
                    integration: self.integration.name().to_owned(),
                    reason: format!("route `{}`: {reason}", self.name),
                }
            })?;
            content.insert(key.clone(), rendered);
        }
        let artifact = crate::model::event::Artifact { kind: self.kind.clone(), content };
        self.integration.create_artifact(&artifact).await.map(drop)
    }

    fn integration(&self) -> Option<&str> {
        Some(self.integration.name())
    }

    fn kind(&self) -> &str {
        "artifact"
    }
}

/// The `publish` route: derive a new event and queue it, so it is dispatched (and routed)
/// like any other. Its id derives from the source event's, so a retry cannot double it.
#[derive(Debug)]
pub struct Publish {
    name: String,
    kind: String,
    data: serde_json::Map<String, serde_json::Value>,
    enqueue: Enqueue,
}

impl Publish {
    pub fn new(
        name: impl Into<String>,
        kind: impl Into<String>,
        data: serde_json::Map<String, serde_json::Value>,
        enqueue: Enqueue,
    ) -> Arc<Self> {
        Arc::new(Self { name: name.into(), kind: kind.into(), data, enqueue })
    }
}

/// The id of the event that `route` derives from event `source_id`: its own id (so its keys
/// never meet the source's), and the same on every retry of the source (so a retried source
/// derives the same event, which the dispatcher then runs once).
pub fn derived_id(source_id: &str, route: &str) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a3c_1f0e_9b2d_4c57_8e61_d0a4_b7f3_2c19);
    let mut name = Vec::with_capacity(source_id.len() + route.len() + 1);
    name.extend_from_slice(source_id.as_bytes());
    name.push(0);
    name.extend_from_slice(route.as_bytes());
    uuid::Uuid::new_v5(&NAMESPACE, &name).to_string()
}

#[async_trait]
impl Action for Publish {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(&self, event: &Event) -> Result<(), IntegrationError> {
        let fail = |reason: String| IntegrationError::Permanent {
            integration: "publish".into(),
            reason: format!("route `{}`: {reason}", self.name),
        };
        let data =
            match crate::model::template::render_value(&serde_json::Value::Object(self.data.clone()), &event.data)
                .map_err(fail)?
            {
                serde_json::Value::Object(m) => m,
                _ => serde_json::Map::new(),
            };
        let derived = Event::new(self.kind.clone(), "aetherium", data).with_id(derived_id(&event.id, &self.name));
        // Queued under the derived id like a webhook under its delivery id: a retried source
        // finds its derived event queued already and does not queue it twice.
        self.enqueue.send("aetherium", &derived.record(), Id::Given).await.map(drop).map_err(|e| {
            let reason = match e {
                crate::engine::ingest::IngestError::Unavailable(detail) => detail,
                other => other.to_string(),
            };
            IntegrationError::Transient { integration: "publish".into(), reason, retry_after: None }
        })
    }

    fn kind(&self) -> &str {
        "publish"
    }
}
