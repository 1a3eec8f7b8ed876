//! The guide's Prometheus counters, aggregated across Lambda instances in the store (one hash,
//! HINCRBY per increment), served as Prometheus text, and also written as CloudWatch Embedded
//! Metric Format lines when running in Lambda.

use crate::backends::store::{self, Store};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::io::Write as _;
use std::sync::Arc;

pub const KEY: &str = "metrics:counters";
pub const PUBLISHED: &str = "event_bus_messages_published_total";
pub const CONSUMED: &str = "event_bus_messages_consumed_total";
pub const REQUESTS: &str = "integration_requests_total";
pub const REDELIVERIES: &str = "github_redeliveries_total";
pub const BRIDGE_HEARD: &str = "aetherium_bridge_events_heard_total";
pub const BRIDGE_ENQUEUED: &str = "aetherium_bridge_events_enqueued_total";
pub const BRIDGE_REFUSED: &str = "aetherium_bridge_events_refused_total";
pub const SIGNATURES_REJECTED: &str = "webhook_signatures_rejected_total";

const HELP: &[(&str, &str)] = &[
    (PUBLISHED, "Events published on the event bus, by topic."),
    (CONSUMED, "Events consumed by an integration's route, by topic and integration."),
    (REQUESTS, "Calls to an integration's API, by integration, method and outcome."),
    (REDELIVERIES, "GitHub deliveries the redelivery job asked GitHub to send again, by outcome."),
    (BRIDGE_HEARD, "Events the bus bridge heard from the platform (pub/sub or the inbox stream), by topic."),
    (BRIDGE_ENQUEUED, "Events the bus bridge queued for the dispatcher, by topic."),
    (BRIDGE_REFUSED, "Messages on the bus the bridge refused, by topic and reason."),
    (SIGNATURES_REJECTED, "Webhook requests refused for their signature (or its timestamp), by source."),
];

/// The `topic` label a counter carries, from a bounded set whatever the senders name: each
/// series is a field of `metrics:counters` and a CloudWatch metric for good. The guide's
/// standard topics and those `named` (a route's exact topic, a subscribed one) keep their
/// name; the topics of the signed webhooks (`signed`: GitHub's and Slack's, bounded by their
/// vendors) keep theirs, but for `github.repository_dispatch.<type>`, whose type the sender
/// makes up; every other topic counts as its family's `other` (`custom.other`), and a topic
/// outside the families as `other`.
pub fn topic_label<'a>(topic: &'a str, signed: bool, named: &dyn Fn(&str) -> bool) -> Cow<'a, str> {
    use crate::model::event::topics;
    if topics::STANDARD.contains(&topic) || named(topic) {
        return Cow::Borrowed(topic);
    }
    match topics::family(topic) {
        Some("github") if signed && topic.starts_with("github.repository_dispatch.") => {
            Cow::Borrowed("github.repository_dispatch")
        }
        Some("github" | "slack") if signed => Cow::Borrowed(topic),
        Some(family) if topics::FAMILIES.contains(&family) => Cow::Owned(format!("{family}.other")),
        _ => Cow::Borrowed("other"),
    }
}

#[derive(Debug, Clone)]
pub struct Metrics {
    store: Arc<dyn Store>,
    emf: bool,
}

/// `name{a="x",b="y"}`, labels in the given order: the field name in the store.
fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut s =
        String::with_capacity(name.len() + labels.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>() + 2);
    s.push_str(name);
    for (i, (k, v)) in labels.iter().enumerate() {
        s.push(if i == 0 { '{' } else { ',' });
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    if !labels.is_empty() {
        s.push('}');
    }
    s
}

impl Metrics {
    /// EMF lines are written only inside Lambda (where CloudWatch reads stdout).
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, emf: std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() }
    }

    /// Count one. A store failure is logged; metrics never fail the work they count.
    pub async fn incr(&self, name: &str, labels: &[(&str, &str)]) {
        if let Err(error) = self.store.apply(&[self.op(name, labels)]).await {
            tracing::debug!(%error, metric = name, "metric not recorded");
        }
    }

    /// The write that counts one, for a batch ([`Store::apply`]); the EMF line is written now.
    pub fn op(&self, name: &str, labels: &[(&str, &str)]) -> store::Write {
        self.op_by(name, labels, 1)
    }

    /// The write that counts `by` at once (a busy caller's tally since its last flush).
    pub fn op_by(&self, name: &str, labels: &[(&str, &str)], by: i64) -> store::Write {
        if self.emf {
            emit_emf(name, labels, by);
        }
        store::Write::HashIncr { key: KEY.into(), field: series(name, labels), by }
    }

    /// Every counter in the Prometheus text exposition format.
    pub async fn render(&self) -> Result<String, crate::backends::error::BackendError> {
        let all = self.store.hash_all(KEY).await?;
        let mut by_name: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for (series, value) in &all {
            let name = series.split('{').next().unwrap_or(series);
            by_name.entry(name).or_default().push((series, value));
        }
        let mut out = String::new();
        for (name, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (series, value) in by_name.remove(name).unwrap_or_default() {
                let _ = writeln!(out, "{series} {value}");
            }
        }
        for (name, rows) in by_name {
            let _ = writeln!(out, "# TYPE {name} counter");
            for (series, value) in rows {
                let _ = writeln!(out, "{series} {value}");
            }
        }
        Ok(out)
    }
}

/// One EMF document: CloudWatch turns it into a metric with the labels as dimensions.
fn emit_emf(name: &str, labels: &[(&str, &str)], by: i64) {
    let line = emf_counted(name, labels, chrono::Utc::now().timestamp_millis(), by);
    // EMF must be its own line on stdout; the lock keeps it from interleaving with logs.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

pub fn emf_line(name: &str, labels: &[(&str, &str)], timestamp_ms: i64) -> String {
    emf_counted(name, labels, timestamp_ms, 1)
}

fn emf_counted(name: &str, labels: &[(&str, &str)], timestamp_ms: i64, count: i64) -> String {
    let mut doc = serde_json::Map::new();
    let dims: Vec<&str> = labels.iter().map(|(k, _)| *k).collect();
    doc.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Aetherium",
                "Dimensions": [dims],
                "Metrics": [{ "Name": name, "Unit": "Count" }],
            }],
        }),
    );
    for (k, v) in labels {
        doc.insert((*k).into(), (*v).into());
    }
    doc.insert(name.into(), count.into());
    serde_json::Value::Object(doc).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::store::MemoryStore;

    #[test]
    fn topic_labels_are_bounded_whatever_the_senders_name() {
        let none = |_: &str| false;
        assert_eq!(topic_label("vm.created", false, &none), "vm.created");
        assert_eq!(topic_label("custom.deploy_7f3a", false, &none), "custom.other");
        assert_eq!(topic_label("custom.my_event", false, &|t| t == "custom.my_event"), "custom.my_event");
        assert_eq!(topic_label("github.repository_dispatch.build-4711", true, &none), "github.repository_dispatch");
        assert_eq!(topic_label("github.pull_request.opened", true, &none), "github.pull_request.opened");
        assert_eq!(topic_label("github.pull_request.opened", false, &none), "github.other", "not from a webhook");
        assert_eq!(topic_label("billing.paid", false, &none), "other");
    }

    #[test]
    fn emf_documents_name_the_metric_and_its_dimensions() {
        let line = emf_line(CONSUMED, &[("topic", "vm.created"), ("integration", "slack")], 1_795_672_800_000);
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["_aws"]["Timestamp"], 1_795_672_800_000i64);
        let m = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "Aetherium");
        assert_eq!(m["Dimensions"], serde_json::json!([["topic", "integration"]]));
        assert_eq!(m["Metrics"], serde_json::json!([{"Name": CONSUMED, "Unit": "Count"}]));
        assert_eq!(v["topic"], "vm.created");
        assert_eq!(v["integration"], "slack");
        assert_eq!(v[CONSUMED], 1);
    }

    #[tokio::test]
    async fn counters_render_in_prometheus_text() {
        let m = Metrics { store: Arc::new(MemoryStore::new()), emf: false };
        m.incr(PUBLISHED, &[("topic", "vm.created")]).await;
        m.incr(PUBLISHED, &[("topic", "vm.created")]).await;
        m.incr(CONSUMED, &[("topic", "vm.created"), ("integration", "slack")]).await;
        m.incr(REQUESTS, &[("integration", "github"), ("method", "create_pr"), ("outcome", "ok")]).await;
        m.incr(REQUESTS, &[("integration", "x\"y"), ("method", "a\\b"), ("outcome", "error")]).await;
        let text = m.render().await.expect("render");
        assert!(text.contains("# TYPE event_bus_messages_published_total counter\nevent_bus_messages_published_total{topic=\"vm.created\"} 2\n"), "{text}");
        assert!(
            text.contains("event_bus_messages_consumed_total{topic=\"vm.created\",integration=\"slack\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("integration_requests_total{integration=\"github\",method=\"create_pr\",outcome=\"ok\"} 1\n"),
            "{text}"
        );
        assert!(text.contains(r#"integration="x\"y",method="a\\b""#), "{text}");
    }
}
