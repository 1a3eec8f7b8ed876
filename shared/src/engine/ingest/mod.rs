//! The one door into the application: a signed webhook from any [`WebhookSource`], a
//! platform event, a slash command (its task included) and a route's derived event all
//! reach the queue here, under one policy ([`Enqueue`]). What it answers is [`Accepted`] or
//! an [`IngestError`]; the edge maps both to HTTP in one place.

pub mod bus;
pub mod enqueue;
pub mod platform;

pub use enqueue::{DELIVERY_TTL, DeliveryMarks, Enqueue, Fingerprint, Id, Queued};

use crate::engine::clock::Clock;
use crate::integrations::signature::SignatureError;
use crate::integrations::source::{Command, Inbound, InboundError, WebhookSource};
use crate::model::event::Record;
use crate::observe::activity::ActivityLog;
use async_trait::async_trait;
use http::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;

/// How long a slash command's invocation is remembered: past the 5 minutes in which its
/// signature's timestamp is accepted, so no copy can outlive the claim.
const COMMAND_CLAIM: std::time::Duration =
    std::time::Duration::from_secs(2 * crate::integrations::slack::signature::SLACK_WINDOW_SECS as u64);

/// What became of a request the ingest took.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Answered with this body (a ping, a URL verification, a slash command's answer, or a
    /// source's own acknowledgement of what it queued).
    Reply(Value),
    /// Queued now.
    Queued { id: String, kind: String },
    /// Queued before, under the same id: not queued again.
    Duplicate { id: String, kind: String },
}

/// What became of a message heard on the bus.
#[derive(Debug, Clone, PartialEq)]
pub enum FromBus {
    Accepted(Accepted),
    /// The dispatcher's own republication of an event it handled: not queued again.
    Relayed {
        id: String,
        kind: String,
    },
    /// Refused, logged and written to the activity log; `topic` as it was heard.
    Refused {
        topic: String,
        refusal: bus::Refusal,
    },
}

/// Why the ingest refused a request. Each maps to one HTTP status (`edge::api::error`).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The secret that would check the request is not configured: refused (fail closed).
    #[error("the service is not configured to accept this request")]
    Unconfigured { setting: &'static str },
    /// The signature did not check out; the text names the header at fault.
    #[error("{0}")]
    Refused(&'static str),
    #[error("no webhook source is named `{0}`")]
    UnknownSource(String),
    #[error(transparent)]
    Inbound(#[from] InboundError),
    /// A platform event that breaks the envelope's rules.
    #[error("{0}")]
    Invalid(String),
    /// A platform event's id was used before for another event (its type or data differ).
    #[error("event id `{0}` was already used for a different event (another type or data); give each event its own id")]
    IdReused(String),
    /// The queue (or the store holding a large record) failed; the sender should retry.
    #[error("temporarily unavailable, retry later")]
    Unavailable(String),
}

/// What answers a slash command inline (`engine::commands`).
#[async_trait]
pub trait Answer: Send + Sync + std::fmt::Debug {
    async fn answer(&self, command: &Command) -> Value;
}

#[derive(Debug, Clone)]
pub struct Ingest {
    sources: Arc<[Arc<dyn WebhookSource>]>,
    enqueue: Enqueue,
    activity: ActivityLog,
    max_body: usize,
    clock: Clock,
    commands: Arc<dyn Answer>,
}

impl Ingest {
    pub fn new(
        sources: Vec<Arc<dyn WebhookSource>>,
        enqueue: Enqueue,
        activity: ActivityLog,
        max_body: usize,
        clock: Clock,
        commands: Arc<dyn Answer>,
    ) -> Self {
        Self { sources: sources.into(), enqueue, activity, max_body, clock, commands }
    }

    fn within_limit(&self, body: &[u8]) -> Result<(), IngestError> {
        if body.len() > self.max_body { Err(IngestError::TooLarge { limit: self.max_body }) } else { Ok(()) }
    }

    /// The largest body taken, for a host that buffers the request itself (the local runner).
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// Whether source `name` answers with every integration's health (so its function
    /// builds them all).
    pub fn reports_health(&self, name: &str) -> bool {
        self.sources.iter().any(|s| s.name() == name && s.reports_health())
    }

    /// A request to `/api/v1/webhooks/<source>`. Nothing of the body is read before its
    /// signature checks out.
    pub async fn webhook(&self, source: &str, headers: &HeaderMap, body: &[u8]) -> Result<Accepted, IngestError> {
        let source = self
            .sources
            .iter()
            .find(|s| s.name() == source)
            .ok_or_else(|| IngestError::UnknownSource(source.to_owned()))?;
        self.within_limit(body)?;
        let verified = match source.verify(headers, body, self.clock.now()) {
            Ok(verified) => verified,
            Err(SignatureError::NoSecret) => {
                return Err(IngestError::Unconfigured { setting: source.secret_setting() });
            }
            Err(reason) => {
                let (name, what) = (source.name(), source.refused_as());
                tracing::warn!(%reason, source = name, "{what} signature rejected");
                self.activity.signature_rejected(name, &format!("{what} signature rejected: {reason}")).await;
                return Err(IngestError::Refused(source.refusal(reason)));
            }
        };
        match source.parse(headers, verified)? {
            Inbound::Reply(body) => Ok(Accepted::Reply(body)),
            Inbound::Command(command) => {
                tracing::info!(command = %command.command, user = %command.user_id, "slash command");
                // A captured signed command replays for as long as its timestamp is fresh: each
                // invocation (its signature, over timestamp and body) is run once.
                let key =
                    format!("command:{}:{}", source.name(), Fingerprint::of(&[command.invocation.as_bytes()]).hex());
                if !command.invocation.is_empty() && !self.enqueue.first_time(&key, COMMAND_CLAIM).await {
                    tracing::warn!(command = %command.command, "copy of a slash command already run; not run again");
                    return Ok(Accepted::Reply(json!({
                        "response_type": "ephemeral",
                        "text": "This command was already received, and is not run again."
                    })));
                }
                Ok(Accepted::Reply(self.commands.answer(&command).await))
            }
            Inbound::Queue { records, reply, signed } => {
                let mut answer = reply.map(Accepted::Reply);
                // The signature stands for one record's bytes.
                let id = match (signed, records.len()) {
                    (Some(print), 1) => Id::Signed(print),
                    _ => Id::Given,
                };
                for record in &records {
                    let outcome = self.enqueue.send(source.name(), record, id).await?;
                    if outcome == Queued::Replay {
                        let (name, id) = (source.name(), record.id.as_str());
                        tracing::warn!(
                            source = name,
                            delivery = id,
                            "signed body replayed under another delivery id; refused"
                        );
                        let why = "a signed body already received under another delivery id: replay refused";
                        self.activity.rejected(name, why).await;
                    }
                    answer = answer.or_else(|| Some(accepted(record, outcome)));
                    let duplicate = outcome == Queued::Duplicate;
                    tracing::info!(source = source.name(), event_id = %record.id, topic = %record.kind, duplicate, "webhook accepted");
                }
                Ok(answer.unwrap_or_else(|| Accepted::Reply(json!({ "ok": true }))))
            }
        }
    }

    /// A platform event for `POST /api/v1/events` (the caller is authenticated by the edge).
    pub async fn platform(&self, body: &[u8]) -> Result<Accepted, IngestError> {
        self.within_limit(body)?;
        let (event, given) = platform::parse(body)?;
        let id = if given { Id::Checked(Fingerprint::of_event(&event.kind, &event.data)) } else { Id::Minted };
        let record = event.record();
        let outcome = self.enqueue.send("platform", &record, id).await?;
        let duplicate = outcome == Queued::Duplicate;
        tracing::info!(event_id = %record.id, topic = %record.kind, duplicate, "platform event accepted");
        Ok(accepted(&record, outcome))
    }
}

/// A message heard on the bus: on `channel` (pub/sub), or from the inbox stream with the
/// entry's `topic` if it gave one.
#[derive(Debug, Clone, Copy)]
pub struct BusMessage<'a> {
    pub channel: Option<&'a str>,
    pub payload: &'a [u8],
}

impl Ingest {
    /// Messages heard on the bus. The bus is a source like a webhook: the same body limit,
    /// the same claim by id, the same queue; the events among them go to the queue together
    /// (`SendMessageBatch` on SQS). One outcome per message, in order. Only a failed enqueue
    /// is an error, for that message alone: the caller keeps it (a stream entry stays
    /// pending) and tries again.
    pub async fn bus(&self, messages: &[BusMessage<'_>], subscribed: &[String]) -> Vec<Result<FromBus, IngestError>> {
        // Each message's outcome, or `None` for an event whose outcome is its enqueue's.
        let mut read = Vec::with_capacity(messages.len());
        let mut records = Vec::new();
        for message in messages {
            read.push(match bus::read(message.channel, message.payload, self.max_body, subscribed) {
                Err(refusal) => Some(self.refused(message.channel, refusal).await),
                Ok(bus::Message::Relayed { id, kind }) => Some(FromBus::Relayed { id, kind }),
                Ok(bus::Message::Event(event)) => {
                    records.push(event.record());
                    None
                }
            });
        }
        let mut sent = self.enqueue.send_many("bus", &records).await.into_iter().zip(&records);
        read.into_iter()
            .map(|done| {
                let Some(done) = done else {
                    let (outcome, record) = sent
                        .next()
                        .ok_or_else(|| IngestError::Unavailable("an event's enqueue has no outcome".into()))?;
                    let outcome = outcome?;
                    let duplicate = outcome == Queued::Duplicate;
                    tracing::info!(event_id = %record.id, topic = %record.kind, duplicate, "bus event accepted");
                    return Ok(FromBus::Accepted(accepted(record, outcome)));
                };
                Ok(done)
            })
            .collect()
    }

    async fn refused(&self, channel: Option<&str>, refusal: bus::Refusal) -> FromBus {
        let mut topic = channel.unwrap_or("(inbox)").to_owned();
        let mut end = topic.len().min(200);
        while !topic.is_char_boundary(end) {
            end -= 1;
        }
        topic.truncate(end);
        tracing::warn!(%topic, reason = refusal.reason(), %refusal, "message on the bus refused");
        self.activity.rejected("bus", &format!("message on `{topic}` refused: {refusal}")).await;
        FromBus::Refused { topic, refusal }
    }
}

fn accepted(record: &Record, outcome: Queued) -> Accepted {
    let (id, kind) = (record.id.clone(), record.kind.clone());
    match outcome {
        Queued::Queued => Accepted::Queued { id, kind },
        Queued::Duplicate | Queued::Replay => Accepted::Duplicate { id, kind },
    }
}

#[cfg(test)]
mod tests;
