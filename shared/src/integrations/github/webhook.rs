//! Turn a verified GitHub delivery into a queue record: the event's type and the fields a
//! subscriber needs, parsed from a small borrowed view of the payload, with the raw payload
//! spliced in unparsed.

use crate::integrations::signature::Verified;
use crate::model::event::topics::{MAX_SEGMENT, segment, segment_ok};
use crate::model::event::{Event, Record};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::borrow::Cow;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("the body is not UTF-8")]
    NotUtf8,
    #[error("the body is not a JSON object: {0}")]
    NotJson(String),
    /// The body lacks what the named event always carries: another event's body relabelled.
    #[error("a `{event}` delivery without `{field}`")]
    WrongShape { event: &'static str, field: &'static str },
}

/// Only what we route on and hand to subscribers; everything else is skipped by serde
/// without being built.
#[derive(Deserialize)]
struct View<'a> {
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pull_request: Option<PullRequest<'a>>,
    #[serde(borrow)]
    issue: Option<Issue<'a>>,
    #[serde(borrow)]
    comment: Option<Comment<'a>>,
    #[serde(borrow)]
    repository: Option<Repository<'a>>,
    #[serde(borrow)]
    sender: Option<User<'a>>,
    #[serde(borrow, rename = "ref")]
    git_ref: Option<Cow<'a, str>>,
    #[serde(borrow)]
    before: Option<Cow<'a, str>>,
    #[serde(borrow)]
    after: Option<Cow<'a, str>>,
    commits: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(borrow)]
    compare: Option<Cow<'a, str>>,
    // Present or not, never built: what the shape check reads.
    review: Option<serde::de::IgnoredAny>,
    deployment: Option<serde::de::IgnoredAny>,
    deployment_status: Option<serde::de::IgnoredAny>,
    workflow_run: Option<serde::de::IgnoredAny>,
    workflow_job: Option<serde::de::IgnoredAny>,
    check_run: Option<serde::de::IgnoredAny>,
    check_suite: Option<serde::de::IgnoredAny>,
    release: Option<serde::de::IgnoredAny>,
}

impl View<'_> {
    /// The field `event`'s body always carries (GitHub's webhook payload reference) that this
    /// body lacks, if any. A replayed body sent under another `X-GitHub-Event` fails here.
    fn missing_for(&self, event: &str) -> Option<(&'static str, &'static str)> {
        let need: &[(&'static str, bool)] = match event {
            "pull_request" => &[("pull_request", self.pull_request.is_some())],
            "issues" => &[("issue", self.issue.is_some())],
            "issue_comment" => &[("issue", self.issue.is_some()), ("comment", self.comment.is_some())],
            "push" => &[("ref", self.git_ref.is_some()), ("commits", self.commits.is_some())],
            "pull_request_review" => {
                &[("pull_request", self.pull_request.is_some()), ("review", self.review.is_some())]
            }
            "pull_request_review_comment" => {
                &[("pull_request", self.pull_request.is_some()), ("comment", self.comment.is_some())]
            }
            "deployment" => &[("deployment", self.deployment.is_some())],
            "deployment_status" => &[("deployment_status", self.deployment_status.is_some())],
            "workflow_run" => &[("workflow_run", self.workflow_run.is_some())],
            "workflow_job" => &[("workflow_job", self.workflow_job.is_some())],
            "check_run" => &[("check_run", self.check_run.is_some())],
            "check_suite" => &[("check_suite", self.check_suite.is_some())],
            "release" => &[("release", self.release.is_some())],
            _ => &[],
        };
        let named = KNOWN.iter().find(|k| **k == event).copied()?;
        need.iter().find(|(_, present)| !present).map(|(field, _)| (named, *field))
    }
}

/// The events whose shape is checked ([`View::missing_for`]).
const KNOWN: &[&str] = &[
    "pull_request",
    "issues",
    "issue_comment",
    "push",
    "pull_request_review",
    "pull_request_review_comment",
    "deployment",
    "deployment_status",
    "workflow_run",
    "workflow_job",
    "check_run",
    "check_suite",
    "release",
];

#[derive(Deserialize)]
struct PullRequest<'a> {
    number: Option<u64>,
    #[serde(borrow)]
    html_url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    title: Option<Cow<'a, str>>,
    merged: Option<bool>,
    #[serde(borrow)]
    head: Option<Branch<'a>>,
    #[serde(borrow)]
    base: Option<Branch<'a>>,
}

#[derive(Deserialize)]
struct Branch<'a> {
    #[serde(borrow, rename = "ref")]
    git_ref: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Issue<'a> {
    number: Option<u64>,
    #[serde(borrow)]
    html_url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    title: Option<Cow<'a, str>>,
    pull_request: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Comment<'a> {
    #[serde(borrow)]
    body: Option<Cow<'a, str>>,
    #[serde(borrow)]
    html_url: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Repository<'a> {
    #[serde(borrow)]
    full_name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct User<'a> {
    #[serde(borrow)]
    login: Option<Cow<'a, str>>,
}

/// A name GitHub sends that can be a topic segment as it is.
fn fits(name: &str) -> bool {
    name.len() <= MAX_SEGMENT && segment_ok(name)
}

/// Whether `event` (the `X-GitHub-Event` header) can name a topic.
pub fn event_name_ok(event: &str) -> bool {
    fits(event)
}

fn put(data: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        data.insert(key.to_owned(), v.into());
    }
}

fn owned(s: Option<Cow<'_, str>>) -> Option<String> {
    s.map(Cow::into_owned)
}

/// Normalise a verified delivery into its queue record: `github.<event>[.<action>]`
/// (`github.pull_request.merged` for a merged close), the routing fields, and the raw body
/// as `data.payload`. `event` must satisfy [`event_name_ok`].
pub fn normalize(event: &str, delivery: &str, verified: Verified<'_>) -> Result<Record, WebhookError> {
    let body = verified.body();
    let text = std::str::from_utf8(body).map_err(|_| WebhookError::NotUtf8)?;
    let view: View<'_> = serde_json::from_str(text).map_err(|e| WebhookError::NotJson(e.to_string()))?;
    if let Some((event, field)) = view.missing_for(event) {
        return Err(WebhookError::WrongShape { event, field });
    }

    // GitHub's actions are snake_case, but `repository_dispatch`'s is the sender's free-form
    // `event_type`: the topic gets a segment made from it, the data keeps it verbatim.
    let action = view.action.as_deref();
    let merged = view.pull_request.as_ref().and_then(|p| p.merged).unwrap_or(false);
    let topic = match (event, action) {
        ("pull_request", Some("closed")) if merged => "github.pull_request.merged".to_owned(),
        (e, Some(a)) if fits(a) => format!("github.{e}.{a}"),
        (e, Some(a)) => format!("github.{e}.{}", segment(a)),
        (e, None) => format!("github.{e}"),
    };

    let mut data = Map::new();
    data.insert("event".into(), json!(event));
    put(&mut data, "action", action);
    put(&mut data, "repository", view.repository.and_then(|r| owned(r.full_name)));
    put(&mut data, "sender", view.sender.and_then(|u| owned(u.login)));
    match event {
        "pull_request" => {
            if let Some(pr) = view.pull_request {
                put(&mut data, "number", pr.number);
                put(&mut data, "url", owned(pr.html_url));
                put(&mut data, "title", owned(pr.title));
                put(&mut data, "head", pr.head.and_then(|b| owned(b.git_ref)));
                put(&mut data, "base", pr.base.and_then(|b| owned(b.git_ref)));
                data.insert("merged".into(), json!(merged));
            }
        }
        "issue_comment" => {
            if let Some(issue) = view.issue {
                put(&mut data, "number", issue.number);
                put(&mut data, "url", owned(issue.html_url));
                put(&mut data, "title", owned(issue.title));
                data.insert("is_pull_request".into(), json!(issue.pull_request.is_some()));
            }
            if let Some(c) = view.comment {
                put(&mut data, "body", owned(c.body));
                put(&mut data, "comment_url", owned(c.html_url));
            }
        }
        "push" => {
            put(&mut data, "ref", owned(view.git_ref));
            put(&mut data, "before", owned(view.before));
            put(&mut data, "after", owned(view.after));
            put(&mut data, "commits", view.commits.map(|c| c.len()));
            put(&mut data, "compare", owned(view.compare));
        }
        _ => {}
    }

    Ok(Event::identified(delivery, topic, "github", data).record_with_payload(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_request_becomes_a_topic_with_routing_fields_and_the_raw_payload() {
        let body = r#"{"action":"opened","number":5,"pull_request":{"number":5,"html_url":"https://github.com/o/r/pull/5","title":"Fix ✅","merged":false,"head":{"ref":"feat"},"base":{"ref":"main"}},"repository":{"full_name":"o/r"},"sender":{"login":"octocat"}}"#;
        let n = normalize("pull_request", "d-1", Verified::for_test(body.as_bytes())).expect("normalize");
        assert_eq!((n.id.as_str(), n.kind.as_str()), ("d-1", "github.pull_request.opened"));
        let ev = Event::from_json(&n.json).expect("record is an event");
        assert_eq!(ev.id, "d-1");
        assert_eq!(ev.kind, "github.pull_request.opened");
        assert_eq!(ev.source, "github");
        assert_eq!(ev.data["number"], 5);
        assert_eq!(ev.data["url"], "https://github.com/o/r/pull/5");
        assert_eq!(ev.data["title"], "Fix ✅");
        assert_eq!(ev.data["head"], "feat");
        assert_eq!(ev.data["base"], "main");
        assert_eq!(ev.data["repository"], "o/r");
        assert_eq!(ev.data["sender"], "octocat");
        let raw: Value = serde_json::from_str(body).expect("json");
        assert_eq!(ev.data["payload"], raw);
    }

    #[test]
    fn merged_close_and_actionless_events() {
        let merged = r#"{"action":"closed","pull_request":{"number":1,"merged":true}}"#;
        assert_eq!(
            normalize("pull_request", "d", Verified::for_test(merged.as_bytes())).expect("ok").kind,
            "github.pull_request.merged"
        );
        let closed = r#"{"action":"closed","pull_request":{"number":1,"merged":false}}"#;
        assert_eq!(
            normalize("pull_request", "d", Verified::for_test(closed.as_bytes())).expect("ok").kind,
            "github.pull_request.closed"
        );
        let create = r#"{"ref":"v1","ref_type":"tag"}"#;
        let n = normalize("create", "d", Verified::for_test(create.as_bytes())).expect("ok");
        assert_eq!(n.kind, "github.create");
        let ev = Event::from_json(&n.json).expect("event");
        assert_eq!(ev.data["payload"]["ref_type"], "tag");
    }

    #[test]
    fn bad_bodies_are_named() {
        assert_eq!(normalize("push", "d", Verified::for_test(b"\xff\xfe")), Err(WebhookError::NotUtf8));
        assert!(matches!(normalize("push", "d", Verified::for_test(b"not json")), Err(WebhookError::NotJson(_))));
        assert!(matches!(normalize("push", "d", Verified::for_test(b"[1,2]")), Err(WebhookError::NotJson(_))));
        assert!(matches!(normalize("push", "d", Verified::for_test(b"{} trailing")), Err(WebhookError::NotJson(_))));
    }

    #[test]
    fn a_free_form_action_gets_a_safe_segment_and_stays_verbatim_in_the_data() {
        let body = br#"{"action":"Deploy Prod: v2.1 (canary)!","branch":"main"}"#;
        let n = normalize("repository_dispatch", "d", Verified::for_test(body)).expect("accepted");
        assert_eq!(n.kind, "github.repository_dispatch.deploy_prod_v2_1_canary");
        let ev = Event::from_json(&n.json).expect("event");
        assert_eq!(ev.data["action"], "Deploy Prod: v2.1 (canary)!");
        assert_eq!(ev.data["payload"]["action"], "Deploy Prod: v2.1 (canary)!");
    }
}
