//! Routes: what the dispatcher does with an event after publishing it. A rule pairs a
//! topic or glob with an action ([`actions`]); [`compile`] builds them from the config.

pub mod actions;
pub mod compile;

pub use crate::engine::action::Action;
pub use actions::{CreateArtifact, Handle, Notify, Publish, derived_id};
pub use compile::{VM_CREATED_MESSAGE, check, compile};

use crate::backends::bus::glob;
use std::sync::Arc;

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
        glob::topic_matches(&self.on, topic)
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
