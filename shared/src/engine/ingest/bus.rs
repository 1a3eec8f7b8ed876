//! A message heard on the bus (a PUBLISH on a channel, or an entry of the inbox stream), read
//! as the guide's `types.Event`. The platform's Go services write it with `encoding/json`,
//! which without tags names the fields `ID`, `Type`, `Timestamp`, `Data` and reads names in
//! any case; the lowercase form of our own wire format is the same event.

use crate::backends::bus::glob;
use crate::model::event::{Event, RELAYED_BY, topics};
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Why a message on the bus was not taken. Each is counted under its [`Refusal::reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("not a JSON object: {0}")]
    NotJson(String),
    #[error("{0}")]
    Invalid(String),
    #[error("`type` is `{kind}` but the message came on channel `{channel}`: the channel is the topic")]
    Mismatch { kind: String, channel: String },
    #[error("`{0}` events come only from the verified webhooks, not from the bus")]
    WebhookOnly(String),
    #[error("`{0}` is outside the subscribed topics (events.subscribe)")]
    NotSubscribed(String),
}

impl Refusal {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge(_) => "too_large",
            Self::NotJson(_) => "not_json",
            Self::Invalid(_) => "invalid",
            Self::Mismatch { .. } => "type_mismatch",
            Self::WebhookOnly(_) => "webhook_only",
            Self::NotSubscribed(_) => "not_subscribed",
        }
    }
}

/// What a heard message is.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// An event to queue.
    Event(Event),
    /// One the dispatcher published (it republishes every event it handles): already handled.
    Relayed { id: String, kind: String },
}

/// Read `payload` heard on `channel` (`None` for a stream entry without a `topic`), within
/// `limit` bytes and the `subscribed` patterns.
pub fn read(channel: Option<&str>, payload: &[u8], limit: usize, subscribed: &[String]) -> Result<Message, Refusal> {
    if payload.len() > limit {
        return Err(Refusal::TooLarge(limit));
    }
    let fields: Map<String, Value> = match serde_json::from_slice(payload) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) => return Err(Refusal::NotJson("the message is JSON but not an object".into())),
        Err(e) => return Err(Refusal::NotJson(e.to_string())),
    };
    let mut event = Fields::default();
    for (name, value) in fields {
        // encoding/json matches a field name to a struct field without regard to case.
        match name.to_ascii_lowercase().as_str() {
            "id" => event.id = text("id", value)?,
            "type" => event.kind = text("type", value)?,
            "timestamp" => event.timestamp = text("timestamp", value)?,
            "source" => event.source = text("source", value)?,
            "data" => event.data = Some(value),
            RELAYED_BY => event.relayed = true,
            _ => {}
        }
    }
    let kind = match (event.kind.filter(|k| !k.is_empty()), channel) {
        (Some(kind), Some(channel)) if kind != channel => {
            return Err(Refusal::Mismatch { kind, channel: channel.to_owned() });
        }
        (Some(kind), _) => kind,
        (None, Some(channel)) => channel.to_owned(),
        (None, None) => return Err(Refusal::Invalid("`type` is required, for example \"vm.created\"".into())),
    };
    topics::validate(&kind, topics::FAMILIES).map_err(|e| Refusal::Invalid(format!("`type`: {e}")))?;
    if let Some(family @ ("github" | "slack")) = topics::family(&kind) {
        return Err(Refusal::WebhookOnly(format!("{family}.*")));
    }
    if !subscribed.iter().any(|p| glob::topic_matches(p, &kind)) {
        return Err(Refusal::NotSubscribed(kind));
    }
    let id = match event.id.filter(|id| !id.is_empty()) {
        Some(id) if id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()) => id,
        Some(_) => return Err(Refusal::Invalid("`id` must be 1 to 128 printable ASCII characters".into())),
        None => content_id(&kind, payload),
    };
    if event.relayed {
        return Ok(Message::Relayed { id, kind });
    }
    let data = match event.data {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Refusal::Invalid("`data` must be a JSON object".into())),
    };
    let timestamp = match event.timestamp {
        // Go's zero time.Time: the sender did not set it.
        None => Utc::now().trunc_subsecs(3),
        Some(t) if t.starts_with("0001-01-01T00:00:00") => Utc::now().trunc_subsecs(3),
        Some(t) => DateTime::parse_from_rfc3339(&t)
            .map_err(|_| Refusal::Invalid(format!("`timestamp` `{t}` is not RFC 3339")))?
            .with_timezone(&Utc),
    };
    let source = match event.source.filter(|s| !s.is_empty()) {
        None => "bus".to_owned(),
        Some(s) if s.len() <= 64 => s,
        Some(_) => return Err(Refusal::Invalid("`source` must be at most 64 characters".into())),
    };
    Ok(Message::Event(Event { id, kind, timestamp, source, data }))
}

#[derive(Default)]
struct Fields {
    id: Option<String>,
    kind: Option<String>,
    timestamp: Option<String>,
    source: Option<String>,
    data: Option<Value>,
    relayed: bool,
}

fn text(name: &str, value: Value) -> Result<Option<String>, Refusal> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(Refusal::Invalid(format!("`{name}` must be a string"))),
    }
}

/// The id of a message that carries none: the same bytes on the same topic give the same id,
/// so two bridges hearing one PUBLISH queue it once.
fn content_id(kind: &str, payload: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(kind.as_bytes());
    hash.update([0]);
    hash.update(payload);
    format!("bus-{}", hex::encode(&hash.finalize()[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn families() -> Vec<String> {
        ["task.*", "vm.*", "integration.*", "custom.*"].map(String::from).to_vec()
    }

    fn read_on(channel: &str, payload: &str) -> Result<Message, Refusal> {
        read(Some(channel), payload.as_bytes(), 1024, &families())
    }

    #[test]
    fn the_go_form_and_the_lowercase_form_are_the_same_event() {
        let go = r#"{"ID":"e1","Type":"vm.created","Timestamp":"2026-12-07T10:00:00.123456789+01:00","Data":{"vm_id":"v1"}}"#;
        let lower =
            r#"{"id":"e1","type":"vm.created","timestamp":"2026-12-07T09:00:00.123456789Z","data":{"vm_id":"v1"}}"#;
        let (Message::Event(a), Message::Event(b)) =
            (read_on("vm.created", go).expect("go"), read_on("vm.created", lower).expect("lower"))
        else {
            panic!("both are events")
        };
        assert_eq!(a, b);
        assert_eq!(a.data_str("vm_id"), Some("v1"));
        assert_eq!(a.source, "bus");
    }

    #[test]
    fn each_bad_message_is_refused_with_its_reason() {
        let cases = [
            ("vm.created", "not json", "not_json"),
            ("vm.created", "[1]", "not_json"),
            ("vm.created", r#"{"type":"vm.started"}"#, "type_mismatch"),
            ("github.push", r#"{"type":"github.push"}"#, "webhook_only"),
            ("slack.message", "{}", "webhook_only"),
            ("billing.paid", "{}", "invalid"),
            ("vm.created", r#"{"data":[1]}"#, "invalid"),
            ("vm.created", r#"{"ID":7}"#, "invalid"),
            ("vm.created", r#"{"Timestamp":"yesterday"}"#, "invalid"),
        ];
        for (channel, payload, reason) in cases {
            let refusal = read_on(channel, payload).expect_err(payload);
            assert_eq!(refusal.reason(), reason, "{payload}: {refusal}");
        }
        let big = format!(r#"{{"data":{{"x":"{}"}}}}"#, "a".repeat(2000));
        assert_eq!(read_on("vm.created", &big).expect_err("big").reason(), "too_large");
        let only_vm = vec!["vm.*".to_owned()];
        let refused = read(None, br#"{"type":"task.completed"}"#, 1024, &only_vm).expect_err("not subscribed");
        assert_eq!(refused.reason(), "not_subscribed");
    }

    #[test]
    fn a_message_without_an_id_gets_one_from_its_content() {
        let id = |payload: &str| match read_on("vm.created", payload).expect(payload) {
            Message::Event(e) => e.id,
            other => panic!("{other:?}"),
        };
        let a = r#"{"type":"vm.created","data":{"vm_id":"v1"}}"#;
        assert_eq!(id(a), id(a));
        assert!(id(a).starts_with("bus-"));
        assert_ne!(id(a), id(r#"{"type":"vm.created","data":{"vm_id":"v2"}}"#));
        assert_eq!(id(r#"{"ID":"","Type":"vm.created"}"#), id(r#"{"ID":"","Type":"vm.created"}"#));
    }

    #[test]
    fn what_the_dispatcher_relayed_is_known_as_such() {
        let relayed = format!(r#"{{"{RELAYED_BY}":"aetherium","id":"e1","type":"vm.created","data":{{}}}}"#);
        assert_eq!(
            read_on("vm.created", &relayed).expect("relayed"),
            Message::Relayed { id: "e1".into(), kind: "vm.created".into() }
        );
    }
}
