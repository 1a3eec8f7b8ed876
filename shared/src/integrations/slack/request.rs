//! What a verified Slack request is: an Events API callback (JSON), a slash command or an
//! interaction (form bodies), parsed into the events we queue.

use crate::integrations::signature::Verified;
pub use crate::integrations::source::Command;
use crate::integrations::source::InboundError;
use crate::model::event::topics::segment;
use crate::model::event::{Event, Record};
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Debug)]
pub enum SlackRequest {
    UrlVerification {
        challenge: String,
    },
    /// An Events API event to queue (`slack.event.<type>`, id = Slack's event_id), with the
    /// whole callback as its `payload`.
    Event(Record),
    /// A message posted by a bot (ours included): acknowledged, not queued.
    BotMessage,
    Command(Command),
    /// One event per clicked action (`slack.action.<action_id>`).
    Actions(Vec<Record>),
    /// Anything else Slack may send: acknowledged, not queued.
    Ignored(String),
    /// `ssl_check=1`: Slack checking the certificate of a slash command's URL; it wants 200.
    SslCheck,
}

/// What is read of an Events API request; the rest is carried as the raw `payload`.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    challenge: Option<String>,
    event_id: Option<String>,
    team_id: Option<String>,
    event: Option<Map<String, Value>>,
}

fn malformed(what: &'static str, expected: &'static str, e: impl std::fmt::Display) -> InboundError {
    InboundError::Malformed { what, expected, detail: Some(e.to_string()) }
}

fn missing(kind: &'static str, field: &'static str) -> InboundError {
    InboundError::MissingField { kind, field }
}

#[derive(Deserialize)]
struct Interaction {
    #[serde(rename = "type")]
    kind: String,
    trigger_id: Option<String>,
    response_url: Option<String>,
    user: Option<User>,
    channel: Option<Channel>,
    container: Option<Container>,
    #[serde(default)]
    actions: Vec<ActionItem>,
}

#[derive(Deserialize)]
struct User {
    id: Option<String>,
    username: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Channel {
    id: Option<String>,
}

#[derive(Deserialize)]
struct Container {
    message_ts: Option<String>,
}

#[derive(Deserialize)]
struct ActionItem {
    action_id: String,
    value: Option<String>,
    action_ts: Option<String>,
}

fn field(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// Parse a verified body. Slack sends the Events API as JSON and commands and interactions
/// as `application/x-www-form-urlencoded`.
pub fn parse(content_type: Option<&str>, verified: Verified<'_>) -> Result<SlackRequest, InboundError> {
    let body = verified.body();
    let is_json = content_type.is_some_and(|c| c.starts_with("application/json"))
        || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if is_json { events_api(body) } else { form(body) }
}

fn events_api(body: &[u8]) -> Result<SlackRequest, InboundError> {
    let text = std::str::from_utf8(body).map_err(|_| InboundError::NotUtf8)?;
    // The raw text becomes the event's payload unparsed: it must be one JSON object (serde
    // would also read a struct from an array).
    if !text.trim_start().starts_with('{') {
        return Err(InboundError::Malformed { what: "the body", expected: "a JSON object", detail: None });
    }
    let env: Envelope = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            malformed("the body", "an Events API request", e)
        } else {
            malformed("the body", "valid JSON", e)
        }
    })?;
    match env.kind.as_str() {
        "url_verification" => Ok(SlackRequest::UrlVerification {
            challenge: env.challenge.ok_or(missing("url_verification", "a challenge"))?,
        }),
        "event_callback" => {
            let event_id = env.event_id.filter(|id| !id.is_empty()).ok_or(missing("event_callback", "an event_id"))?;
            let inner = env.event.ok_or(missing("event_callback", "an event"))?;
            let kind = inner.get("type").and_then(Value::as_str).ok_or(missing("the event", "a type"))?;
            let subtype = inner.get("subtype").and_then(Value::as_str);
            if inner.contains_key("bot_id") || subtype == Some("bot_message") {
                return Ok(SlackRequest::BotMessage);
            }
            let mut data = Map::new();
            data.insert("event_type".into(), json!(kind));
            for key in ["user", "text", "channel", "channel_type", "ts", "thread_ts", "subtype"] {
                if let Some(v) = inner.get(key) {
                    data.insert(key.into(), v.clone());
                }
            }
            if let Some(team) = env.team_id {
                data.insert("team_id".into(), json!(team));
            }
            let topic = format!("slack.event.{}", segment(kind));
            Ok(SlackRequest::Event(Event::identified(event_id, topic, "slack", data).record_with_payload(text)))
        }
        other => Ok(SlackRequest::Ignored(format!("Events API type `{other}`"))),
    }
}

fn form(body: &[u8]) -> Result<SlackRequest, InboundError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    if let Some(raw) = field(&pairs, "payload") {
        return interaction(&raw);
    }
    if field(&pairs, "ssl_check").as_deref() == Some("1") {
        return Ok(SlackRequest::SslCheck);
    }
    let command = field(&pairs, "command").ok_or(missing("the form", "`command` or `payload`"))?;
    Ok(SlackRequest::Command(Command {
        command,
        text: field(&pairs, "text").unwrap_or_default(),
        user_id: field(&pairs, "user_id").unwrap_or_default(),
        user_name: field(&pairs, "user_name").unwrap_or_default(),
        channel_id: field(&pairs, "channel_id").unwrap_or_default(),
        trigger_id: field(&pairs, "trigger_id").unwrap_or_default(),
        invocation: String::new(),
    }))
}

fn interaction(raw: &str) -> Result<SlackRequest, InboundError> {
    let i: Interaction = serde_json::from_str(raw).map_err(|e| {
        if e.is_data() {
            malformed("`payload`", "an interaction payload", e)
        } else {
            malformed("`payload`", "valid JSON", e)
        }
    })?;
    if i.kind != "block_actions" {
        return Ok(SlackRequest::Ignored(format!("interaction type `{}`", i.kind)));
    }
    let trigger = i.trigger_id.unwrap_or_default();
    let user = i.user.as_ref();
    let mut events = Vec::new();
    for a in &i.actions {
        let data = json!({
            "action_id": a.action_id,
            "value": a.value,
            "user_id": user.and_then(|u| u.id.clone()),
            "user_name": user.and_then(|u| u.username.clone().or_else(|| u.name.clone())),
            "response_url": i.response_url,
            "channel": i.channel.as_ref().and_then(|c| c.id.clone()),
            "message_ts": i.container.as_ref().and_then(|c| c.message_ts.clone()),
            "trigger_id": trigger,
        });
        // Deterministic, so a retried delivery of the same click is recognised.
        let id = format!("slack-action-{trigger}-{}-{}", segment(&a.action_id), a.action_ts.as_deref().unwrap_or(""));
        let topic = format!("slack.action.{}", segment(&a.action_id));
        events.push(Event::identified(id, topic, "slack", data.as_object().cloned().unwrap_or_default()).record());
    }
    Ok(SlackRequest::Actions(events))
}
