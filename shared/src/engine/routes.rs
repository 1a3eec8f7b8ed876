//! Routes: what the dispatcher does with an event after publishing it. A rule pairs a
//! topic or glob with an action; actions call integrations.

use crate::backends::bus::glob;
use crate::model::event::Event;
use crate::model::event::Notification;
use crate::model::integration::{Integration, IntegrationError};
use crate::model::markup::Markup;
use crate::model::template::Template;
use async_trait::async_trait;
use std::sync::Arc;

#[async_trait]
pub trait Action: Send + Sync + std::fmt::Debug {
    /// Unique among the routes: it names the action in logs and in its idempotency key.
    fn name(&self) -> &str;

    async fn run(&self, event: &Event) -> Result<(), IntegrationError>;

    /// The integration this route hands events to, for the consumed-events metric.
    fn integration(&self) -> Option<&str> {
        None
    }

    /// What kind of action this is (`handle`, `notify`, `artifact`, `publish`), for the
    /// local runner's start-up banner.
    fn kind(&self) -> &str {
        "custom"
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub on: String,
    pub action: Arc<dyn Action>,
}

impl Rule {
    pub fn new(on: impl Into<String>, action: Arc<dyn Action>) -> Self {
        Self { on: on.into(), action }
    }

    pub fn matches(&self, topic: &str) -> bool {
        if glob::is_glob(&self.on) { glob::matches(&self.on, topic) } else { self.on == topic }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Routes {
    rules: Vec<Rule>,
}

#[derive(Debug, thiserror::Error)]
#[error("two routes are named `{0}`; route names must be unique")]
pub struct DuplicateRoute(pub String);

impl Routes {
    pub fn new(rules: Vec<Rule>) -> Result<Self, DuplicateRoute> {
        let mut names = std::collections::BTreeSet::new();
        for r in &rules {
            if !names.insert(r.action.name().to_owned()) {
                return Err(DuplicateRoute(r.action.name().to_owned()));
            }
        }
        Ok(Self { rules })
    }

    pub fn matching<'a>(&'a self, topic: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |r| r.matches(topic))
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every rule, in the order they were given.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

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
    queue: Arc<dyn crate::backends::queue::WorkQueue>,
    store: Arc<dyn crate::backends::store::Store>,
}

impl Publish {
    pub fn new(
        name: impl Into<String>,
        kind: impl Into<String>,
        data: serde_json::Map<String, serde_json::Value>,
        queue: Arc<dyn crate::backends::queue::WorkQueue>,
        store: Arc<dyn crate::backends::store::Store>,
    ) -> Arc<Self> {
        Arc::new(Self { name: name.into(), kind: kind.into(), data, queue, store })
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
        crate::backends::queue::claim::enqueue(self.queue.as_ref(), self.store.as_ref(), &derived.to_json())
            .await
            .map(drop)
            .map_err(|e| IntegrationError::Transient {
                integration: "publish".into(),
                reason: e.to_string(),
                retry_after: None,
            })
    }

    fn kind(&self) -> &str {
        "publish"
    }
}
