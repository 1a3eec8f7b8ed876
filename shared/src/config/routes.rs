//! Declarative routes: the guide's subscriptions, written in the config.
//!
//! ```yaml
//! routes:
//!   - on: vm.created
//!     notify: { integration: slack, target: "#vms", message: "🚀 New VM: `{{vm_name}}`" }
//!   - on: task.*
//!     handle: github
//!   - on: custom.release_ready
//!     artifact: { integration: github, type: pull_request, content: { owner: acme, repo: "{{repo}}", ... } }
//!   - on: github.pull_request.opened
//!     publish: { type: task.created, data: { kind: create_vm, parameters: { name: "pr-{{number}}", vcpus: 2, memory_mb: 2048 } } }
//! ```

use super::Problem;
use crate::backends::bus::glob;
use crate::model::event::topics;
use crate::model::template::{self, Template};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    name: Option<String>,
    on: Option<String>,
    notify: Option<NotifySpec>,
    handle: Option<String>,
    artifact: Option<ArtifactSpec>,
    publish: Option<PublishSpec>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    pub integration: String,
    pub target: String,
    pub message: String,
    /// Buttons under the message (Slack): each one's `text`, `action_id` and `value` are
    /// templates; a click arrives as `slack.action.<action_id>`.
    #[serde(default)]
    pub actions: Vec<ButtonSpec>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonSpec {
    pub text: String,
    pub action_id: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactSpec {
    pub integration: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub content: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishSpec {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: Map<String, Value>,
}

/// A `notify` route with its templates parsed, once, at load.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyRoute {
    pub integration: String,
    pub target: Template,
    pub message: Template,
    /// Each button's `text`, `action_id` and `value`.
    pub buttons: Vec<[Template; 3]>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    Notify(NotifyRoute),
    Handle(String),
    Artifact(ArtifactSpec),
    Publish(PublishSpec),
}

/// A validated route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    pub name: String,
    pub on: String,
    pub action: RouteAction,
}

fn pattern_ok(on: &str) -> Result<(), String> {
    if on.is_empty() {
        return Err("`on` is empty".into());
    }
    let family = on.split('.').next().unwrap_or_default();
    if glob::is_glob(family) || on == "*" {
        return Ok(());
    }
    if !topics::FAMILIES.contains(&family) {
        return Err(format!("`on: {on}` is not in a known topic family ({})", topics::FAMILIES.join(", ")));
    }
    if !glob::is_glob(on) {
        topics::validate(on, topics::FAMILIES)?;
    }
    Ok(())
}

/// Validate every route; `integrations` are the enabled integrations' names, `disabled` those
/// configured with `enabled: false` (a route to one is inactive, not an error, so an
/// integration can be switched by its variable without editing its routes). Problems name
/// the route as `routes[i]` and its name.
pub fn validate(
    raw: Vec<RawRoute>,
    integrations: &[String],
    disabled: &[String],
    problems: &mut Vec<Problem>,
) -> Vec<RouteSpec> {
    let mut out = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, r) in raw.into_iter().enumerate() {
        let name = r.name.clone().unwrap_or_else(|| format!("route-{}", i + 1));
        let key = format!("routes[{i}] ({name})");
        let mut bad = |message: String| problems.push(Problem { key: key.clone(), message });
        if !names.insert(name.clone()) {
            bad(format!("the name `{name}` is used by another route"));
        }
        let Some(on) = r.on.clone() else {
            bad("`on` is required: a topic or glob such as vm.created or task.*".into());
            continue;
        };
        if let Err(e) = pattern_ok(&on) {
            bad(e);
        }
        let given = [r.notify.is_some(), r.handle.is_some(), r.artifact.is_some(), r.publish.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if given != 1 {
            bad("give exactly one of notify, handle, artifact, publish".into());
            continue;
        }
        let known = |integration: &str, bad: &mut dyn FnMut(String)| {
            if !integrations.iter().chain(disabled).any(|n| n == integration) {
                bad(format!("integration `{integration}` is not enabled (configure integrations.{integration})"));
            }
        };
        let action = if let Some(n) = r.notify {
            known(&n.integration, &mut bad);
            let mut parse =
                |field: String, text: &str| Template::parse(text).map_err(|e| bad(format!("notify.{field}: {e}"))).ok();
            let message = parse("message".into(), &n.message);
            let target = parse("target".into(), &n.target);
            let mut buttons = Vec::with_capacity(n.actions.len());
            for (j, b) in n.actions.iter().enumerate() {
                let [text, action_id, value] = [("text", &b.text), ("action_id", &b.action_id), ("value", &b.value)]
                    .map(|(field, text)| parse(format!("actions[{j}].{field}"), text));
                buttons.extend(text.zip(action_id).zip(value).map(|((t, a), v)| [t, a, v]));
            }
            if !n.actions.is_empty() && n.integration != "slack" {
                bad("notify.actions: buttons are a Slack feature; use integration: slack".into());
            }
            let (Some(message), Some(target)) = (message, target) else { continue };
            if buttons.len() != n.actions.len() {
                continue;
            }
            RouteAction::Notify(NotifyRoute { integration: n.integration, target, message, buttons })
        } else if let Some(h) = r.handle {
            known(&h, &mut bad);
            RouteAction::Handle(h)
        } else if let Some(a) = r.artifact {
            known(&a.integration, &mut bad);
            if let Err(e) = template::check_value(&Value::Object(a.content.clone())) {
                bad(format!("artifact.content: {e}"));
            }
            RouteAction::Artifact(a)
        } else if let Some(p) = r.publish {
            if let Err(e) = topics::validate(&p.kind, topics::PLATFORM_FAMILIES) {
                bad(format!("publish.type: {e}"));
            }
            if let Err(e) = template::check_value(&Value::Object(p.data.clone())) {
                bad(format!("publish.data: {e}"));
            }
            RouteAction::Publish(p)
        } else {
            continue;
        };
        out.push(RouteSpec { name, on, action });
    }
    if let Some(cycle) = publish_loop(&out) {
        problems.push(Problem {
            key: "routes".into(),
            message: format!(
                "publish routes form a loop ({}): each event would publish the next forever; \
                 change one route's `on` or `publish.type`",
                cycle.join(" → ")
            ),
        });
    }
    out
}

/// The names of `publish` routes that lead back to the first of them, if any do: route A
/// publishes a topic that route B listens on, and so on back to A.
pub fn publish_loop(routes: &[RouteSpec]) -> Option<Vec<String>> {
    (0..routes.len()).filter(|&i| publishes(&routes[i]).is_some()).find_map(|i| walk(routes, &mut vec![i]))
}

fn publishes(r: &RouteSpec) -> Option<&str> {
    match &r.action {
        RouteAction::Publish(p) => Some(p.kind.as_str()),
        _ => None,
    }
}

/// Depth first from the last route of `path` along "publishes a topic the next one listens
/// on"; the loop's names when the walk comes back to a route on the path.
fn walk(routes: &[RouteSpec], path: &mut Vec<usize>) -> Option<Vec<String>> {
    let topic = publishes(&routes[*path.last()?])?;
    for (next, r) in routes.iter().enumerate() {
        if publishes(r).is_none() || !glob::topic_matches(&r.on, topic) {
            continue;
        }
        if let Some(at) = path.iter().position(|&p| p == next) {
            let mut names: Vec<String> = path[at..].iter().map(|&p| routes[p].name.clone()).collect();
            names.push(routes[next].name.clone());
            return Some(names);
        }
        path.push(next);
        if let Some(found) = walk(routes, path) {
            return Some(found);
        }
        path.pop();
    }
    None
}
