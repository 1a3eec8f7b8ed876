//! The routes a function runs, built from the config once per cold start: the built-in
//! defaults (unless `default_routes: false`), then the configured routes; a configured route
//! named like a default replaces it.

use super::actions::{CreateArtifact, Handle, Notify, Publish};
use super::{Action, Routes, Rule};
use crate::backends::store::Store;
use crate::config::Config;
use crate::config::routes::{RouteAction, RouteSpec};
use crate::engine::ingest::Enqueue;
use crate::engine::vms::VmRegistry;
use crate::model::integration::{Integration, Registry};
use crate::model::template::Template;
use std::sync::Arc;

/// The guide's message for a new VM.
pub const VM_CREATED_MESSAGE: &str = "🚀 New VM: `{{vm_name}}` (ID: `{{vm_id}}`)";

/// The integration a configured route hands its events to, if it names one.
fn needs(spec: &RouteSpec) -> Option<&str> {
    match &spec.action {
        RouteAction::Notify(n) => Some(&n.integration),
        RouteAction::Handle(h) => Some(h),
        RouteAction::Artifact(a) => Some(&a.integration),
        RouteAction::Publish(_) => None,
    }
}

/// Every configured route's integration is registered, or switched off (`enabled: false`).
/// The message names the route.
pub fn check(config: &Config, registry: &Registry) -> Result<(), String> {
    for spec in &config.routes {
        if let Some(name) = needs(spec)
            && registry.get(name).is_none()
            && !config.is_disabled(name)
        {
            return Err(format!("route `{}`: integration `{name}` is not available", spec.name));
        }
    }
    Ok(())
}

/// Defaults:
/// - `vm.registry` on `vm.*`: the VM registry behind `/aetherium-vm-list`;
/// - `github.handle` on `task.*`: GitHub's handle_event (a PR comment on task.completed /
///   task.failed carrying a `pull_request`);
/// - `slack.vm_created` on `vm.created`: a Slack message to the notify channel;
/// - `slack.handle` on `slack.action.*`: the Approve / Reject follow-up.
pub fn compile(config: &Config, registry: &Registry, enqueue: &Enqueue, store: Arc<dyn Store>) -> Routes {
    let mut rules = Vec::new();
    if config.default_routes {
        rules.push(Rule::new("vm.*", VmRegistry::new(store)));
        if let Some(github) = registry.get("github") {
            rules.push(Rule::new("task.*", Handle::new(github)));
        }
        if let Some(slack) = registry.get("slack") {
            let template = Template::parse(VM_CREATED_MESSAGE).expect("the built-in template parses");
            // A channel name is not a template: `{{` in it is taken literally.
            let channel = Template::literal(&config.slack.notify_channel);
            rules.push(Rule::new("vm.created", Notify::new("slack.vm_created", slack.clone(), channel, template)));
            rules.push(Rule::new("slack.action.*", Handle::new(slack)));
        }
    }
    for spec in &config.routes {
        let Some(action) = action(config, registry, enqueue, spec) else { continue };
        rules.retain(|r| r.action.name() != spec.name);
        rules.push(Rule::new(spec.on.clone(), action));
    }
    Routes::new(rules).unwrap_or_default()
}

/// The action of a configured route; `None` (logged) when its integration is not here.
fn action(config: &Config, registry: &Registry, enqueue: &Enqueue, spec: &RouteSpec) -> Option<Arc<dyn Action>> {
    let integration = |name: &str| -> Option<Arc<dyn Integration>> {
        let found = registry.get(name);
        if found.is_none() {
            if config.is_disabled(name) {
                tracing::debug!(route = %spec.name, integration = name, "route inactive: its integration is disabled");
            } else {
                tracing::error!(route = %spec.name, integration = name, "route names an integration that is not registered; skipped");
            }
        }
        found
    };
    let name = spec.name.clone();
    Some(match &spec.action {
        RouteAction::Notify(n) => Notify::from_route(name, integration(&n.integration)?, n),
        RouteAction::Handle(h) => Handle::named(name, integration(h)?),
        RouteAction::Artifact(a) => {
            CreateArtifact::new(name, integration(&a.integration)?, a.kind.clone(), a.content.clone())
        }
        RouteAction::Publish(p) => Publish::new(name, p.kind.clone(), p.data.clone(), enqueue.clone()),
    })
}
