//! The platform's event, notification and artifact types and their JSON wire format.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The guide's standard topics. Custom topics live under `custom.`.
pub mod topics {
    pub const TASK_CREATED: &str = "task.created";
    pub const TASK_STARTED: &str = "task.started";
    pub const TASK_COMPLETED: &str = "task.completed";
    pub const TASK_FAILED: &str = "task.failed";
    pub const VM_CREATED: &str = "vm.created";
    pub const VM_STARTED: &str = "vm.started";
    pub const VM_STOPPED: &str = "vm.stopped";
    pub const VM_FAILED: &str = "vm.failed";
    pub const INTEGRATION_WEBHOOK_RECEIVED: &str = "integration.webhook_received";

    pub const STANDARD: &[&str] = &[
        TASK_CREATED,
        TASK_STARTED,
        TASK_COMPLETED,
        TASK_FAILED,
        VM_CREATED,
        VM_STARTED,
        VM_STOPPED,
        VM_FAILED,
        INTEGRATION_WEBHOOK_RECEIVED,
    ];

    /// Topic families: the first dot-separated segment of every topic we accept.
    pub const FAMILIES: &[&str] = &["task", "vm", "integration", "custom", "github", "slack"];

    /// Families that the platform may send to the events ingest; `github.` and `slack.`
    /// topics are only ever produced by the verified webhooks.
    pub const PLATFORM_FAMILIES: &[&str] = &["task", "vm", "integration", "custom"];

    /// Check that `topic` is dot-separated segments of `[a-z0-9_]` in one of `families`.
    pub fn validate(topic: &str, families: &[&str]) -> Result<(), String> {
        if topic.is_empty() || topic.len() > 200 {
            return Err("must be 1 to 200 characters".to_owned());
        }
        if !topic.split('.').all(segment_ok) {
            return Err(format!("`{topic}` must be dot-separated lower-case segments such as vm.created"));
        }
        match family(topic) {
            Some(f) if families.contains(&f) => Ok(()),
            _ => Err(format!("`{topic}` is not in a known family; use one of {}", families.join(".*, ") + ".*")),
        }
    }

    /// The longest segment made from an outside name ([`segment`]) or taken from one as is.
    pub const MAX_SEGMENT: usize = 64;

    /// The one rule for a topic segment: one or more of `[a-z0-9_]`.
    pub fn segment_ok(s: &str) -> bool {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }

    /// One topic segment from an outside name that may hold anything (a GitHub
    /// `repository_dispatch` type, a Slack `action_id`): ASCII letters lower-cased, digits
    /// kept, every run of other characters one `_`, `_` trimmed from the ends, at most 64
    /// characters; `unknown` when nothing is left. `On-Demand Test.v2!` → `on_demand_test_v2`.
    pub fn segment(raw: &str) -> String {
        let mut out = String::with_capacity(raw.len().min(64));
        let mut gap = false;
        for c in raw.chars() {
            if !c.is_ascii_alphanumeric() {
                gap = true;
                continue;
            }
            let sep = gap && !out.is_empty();
            if out.len() + usize::from(sep) >= MAX_SEGMENT {
                break;
            }
            if sep {
                out.push('_');
            }
            gap = false;
            out.push(c.to_ascii_lowercase());
        }
        if out.is_empty() { "unknown".to_owned() } else { out }
    }

    /// The family of a topic (`vm` for `vm.created`), when it has a non-empty one.
    pub fn family(topic: &str) -> Option<&str> {
        match topic.split_once('.') {
            Some((family, rest)) if !family.is_empty() && !rest.is_empty() => Some(family),
            _ => None,
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn any_name_becomes_one_segment() {
            for (raw, want) in [
                ("opened", "opened"),
                ("on-demand-test", "on_demand_test"),
                ("On Demand.Test: v2!!", "on_demand_test_v2"),
                ("__a__b__", "a_b"),
                ("snake_case_stays", "snake_case_stays"),
                ("déploiement prod", "d_ploiement_prod"),
                ("!!!", "unknown"),
                ("", "unknown"),
            ] {
                assert_eq!(super::segment(raw), want, "{raw}");
            }
            assert_eq!(super::segment(&"x".repeat(300)).len(), 64);
            let long = super::segment(&"ab ".repeat(100));
            assert!(long.len() <= 64 && !long.ends_with('_'), "{long}");
        }
    }
}

/// An event on the bus. Wire format:
/// `{"id": "...", "type": "vm.created", "timestamp": "RFC 3339", "source": "...", "data": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "rfc3339")]
    pub timestamp: DateTime<Utc>,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub data: Map<String, Value>,
}

impl Event {
    /// A new event with a fresh UUID v4 id and the current time.
    pub fn new(kind: impl Into<String>, source: impl Into<String>, data: Map<String, Value>) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            kind: kind.into(),
            // The wire format carries milliseconds; keep no more so an event round-trips exactly.
            timestamp: Utc::now().trunc_subsecs(3),
            source: source.into(),
            data,
        }
    }

    /// A new event with the given id (a webhook's delivery id, a derived id) and the current time.
    pub fn identified(
        id: impl Into<String>,
        kind: impl Into<String>,
        source: impl Into<String>,
        data: Map<String, Value>,
    ) -> Self {
        Self { id: id.into(), kind: kind.into(), timestamp: Utc::now().trunc_subsecs(3), source: source.into(), data }
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    pub fn to_json(&self) -> String {
        // Serialising a struct of strings and a JSON map cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The event in its wire form, for the queue.
    pub fn record(&self) -> Record {
        Record { id: self.id.clone(), kind: self.kind.clone(), json: self.to_json() }
    }

    /// The wire form with `payload` added to `data` as it is, unparsed: a webhook's raw body,
    /// which its source has just checked to be a JSON object.
    pub fn record_with_payload(&self, payload: &str) -> Record {
        let mut json = self.to_json();
        // `data` is serialised last, so the text ends with its `}` and the event's.
        let at = json.len() - 2;
        let mut field = String::with_capacity(payload.len() + 12);
        if !self.data.is_empty() {
            field.push(',');
        }
        field.push_str("\"payload\":");
        field.push_str(payload);
        json.insert_str(at, &field);
        Record { id: self.id.clone(), kind: self.kind.clone(), json }
    }

    pub fn from_json(raw: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(raw)
    }

    /// A string field of `data`, for routing and templates.
    pub fn data_str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }
}

/// The field the dispatcher adds to each event it republishes on the bus, so that a bridge
/// listening there knows the event as already handled and does not queue it again. Readers
/// of the event ignore it (Go's `encoding/json` skips unknown fields, and so do we).
pub const RELAYED_BY: &str = "relayed_by";

/// `json` (an event's wire form, an object) with `"relayed_by":"aetherium"` as its first field.
pub fn relayed(json: &str) -> String {
    let body = json.trim_start().strip_prefix('{').unwrap_or(json);
    let mut out = String::with_capacity(json.len() + 28);
    out.push_str("{\"");
    out.push_str(RELAYED_BY);
    out.push_str("\":\"aetherium\"");
    if !body.trim_start().starts_with('}') {
        out.push(',');
    }
    out.push_str(body);
    out
}

/// An event in its wire form ([`Event`]'s JSON), with the id and type the ingest dedups and
/// logs by, so that nothing parses it again before the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub kind: String,
    pub json: String,
}

/// Timestamps go out as RFC 3339 with millisecond precision and a `Z` suffix, and come in
/// as any RFC 3339 offset.
/// An event in its wire form read for routing only: the envelope's fields, with `data`
/// checked to be an object but not built. A 25 KB GitHub payload forwarded by the dispatcher
/// costs a scan instead of a tree of values.
#[derive(Debug, Deserialize)]
pub struct EventHead<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(with = "rfc3339")]
    pub timestamp: DateTime<Utc>,
    #[serde(default, borrow)]
    pub source: Cow<'a, str>,
    #[serde(default, rename = "data")]
    _data: AnyObject,
}

impl<'a> EventHead<'a> {
    /// Accepts exactly the records [`Event::from_json`] accepts.
    pub fn from_json(raw: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(raw)
    }
}

/// A JSON object, read the way a full parse reads it and then dropped.
#[derive(Debug, Default)]
struct AnyObject;

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = AnyObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<AnyObject, A::Error> {
                while map.next_entry::<Checked, Checked>()?.is_some() {}
                Ok(AnyObject)
            }
        }
        d.deserialize_map(Object)
    }
}

/// Any JSON value, checked as a `serde_json::Value` would be (escapes decoded, surrogates
/// paired, numbers in range) without building it. `IgnoredAny` checks less, and a record it
/// let through would fail later, after the event was published.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Checked)
    }
}

impl<'de> serde::de::Visitor<'de> for Checked {
    type Value = Checked;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

mod rfc3339 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&ts.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("timestamp is not RFC 3339: {e}")))
    }
}

/// A message for a person: a chat message, a PR comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// `message`, `comment`, ... (integration specific).
    #[serde(rename = "type", default = "Notification::default_kind")]
    pub kind: String,
    /// Where it goes: `#channel`, a channel id, `owner/repo#123`, a PR URL.
    pub target: String,
    pub message: String,
    /// Extra structured content (blocks, buttons, ...).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub data: Map<String, Value>,
}

impl Notification {
    fn default_kind() -> String {
        "message".to_owned()
    }

    pub fn message(target: impl Into<String>, message: impl Into<String>) -> Self {
        Self { kind: Self::default_kind(), target: target.into(), message: message.into(), data: Map::new() }
    }
}

/// Something an integration creates in the outside world, such as a pull request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub content: Map<String, Value>,
}

/// What creating an artifact produced, for the caller to show (`number`, `url`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_head_accepts_exactly_what_the_event_accepts() {
        let ts = r#""timestamp":"2026-11-26T08:00:00.000Z""#;
        let cases = [
            format!(r#"{{"id":"e1","type":"vm.created",{ts},"source":"s","data":{{"a":[1,{{"b":null}}]}}}}"#),
            format!(r#"{{"id":"e\"2","type":"vm.created",{ts}}}"#),
            format!(r#"{{"id":"e3","type":"vm.created",{ts},"data":null}}"#),
            format!(r#"{{"id":"e4","type":"vm.created",{ts},"data":[1]}}"#),
            format!(r#"{{"id":"e5","type":"vm.created",{ts},"data":{{"a":}}}}"#),
            format!(r#"{{"id":5,"type":"vm.created",{ts}}}"#),
            format!(r#"{{"id":"e7","type":"vm.created",{ts},"source":null}}"#),
            r#"{"id":"e8","type":"vm.created","timestamp":"yesterday"}"#.to_owned(),
            format!(r#"{{"type":"vm.created",{ts}}}"#),
            format!(r#"{{"id":"e10","type":"vm.created",{ts},"extra":true}}"#),
            format!(r#"{{"id":"e11","type":"vm.created",{ts}}} trailing"#),
            format!(r#"{{"id":"e12","type":"vm.created",{ts},"data":{{"s":"\ud800"}}}}"#),
            format!(r#"{{"id":"e13","type":"vm.created",{ts},"data":{{"s":"\ud83d\ude80","n":1e400}}}}"#),
            format!(r#"{{"id":"e14","type":"vm.created",{ts},"data":{{"s":"\x"}}}}"#),
            format!(r#"{{"id":"e15","type":"vm.created",{ts},"data":{{"a":1,"a":2}}}}"#),
        ];
        for raw in &cases {
            let (head, full) = (EventHead::from_json(raw), Event::from_json(raw));
            assert_eq!(head.is_ok(), full.is_ok(), "{raw}");
            if let (Ok(head), Ok(full)) = (head, full) {
                assert_eq!(
                    (head.id.as_ref(), head.kind.as_ref(), head.timestamp),
                    (full.id.as_str(), full.kind.as_str(), full.timestamp)
                );
            }
        }
    }

    #[test]
    fn wire_format_round_trips_with_type_and_rfc3339() {
        let raw = r#"{"id":"e1","type":"vm.created","timestamp":"2026-11-26T06:00:00+01:00","source":"platform","data":{"vm_id":"v1","vm_name":"my-vm"}}"#;
        let ev = Event::from_json(raw).expect("parse");
        assert_eq!(ev.kind, "vm.created");
        assert_eq!(ev.data_str("vm_name"), Some("my-vm"));
        let out: Value = serde_json::from_str(&ev.to_json()).expect("json");
        assert_eq!(out["type"], "vm.created");
        assert_eq!(out["timestamp"], "2026-11-26T05:00:00.000Z");
        assert_eq!(out["data"], json!({"vm_id": "v1", "vm_name": "my-vm"}));
        assert!(out.get("kind").is_none());
    }

    #[test]
    fn bad_timestamp_is_named() {
        let err = Event::from_json(r#"{"id":"x","type":"vm.created","timestamp":"yesterday"}"#).expect_err("must fail");
        assert!(err.to_string().contains("RFC 3339"), "{err}");
    }

    #[test]
    fn topic_validation_names_the_problem() {
        assert!(topics::validate("task.completed", topics::PLATFORM_FAMILIES).is_ok());
        assert!(topics::validate("custom.my_event", topics::PLATFORM_FAMILIES).is_ok());
        let e = topics::validate("github.push", topics::PLATFORM_FAMILIES).expect_err("reserved");
        assert!(e.contains("task.*"), "{e}");
        assert!(topics::validate("Task.Completed", topics::PLATFORM_FAMILIES).is_err());
        assert!(topics::validate("task..x", topics::PLATFORM_FAMILIES).is_err());
        assert!(topics::validate("task", topics::PLATFORM_FAMILIES).is_err());
        assert!(topics::validate("", topics::PLATFORM_FAMILIES).is_err());
    }

    #[test]
    fn families() {
        assert_eq!(topics::family("vm.created"), Some("vm"));
        assert_eq!(topics::family("github.pull_request.opened"), Some("github"));
        assert_eq!(topics::family("vm"), None);
        assert_eq!(topics::family(".x"), None);
        assert_eq!(topics::family("vm."), None);
    }
}
