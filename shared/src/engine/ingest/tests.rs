//! The door with a source it has never seen: what a third signed sender gets from the ingest
//! alone, with no edit to the edge (verify, refuse and log, parse, claim once, queue).

use super::*;
use crate::backends::queue::{MemoryQueue, WorkQueue};
use crate::backends::store::MemoryStore;
use crate::integrations::github::signature::sign_github;
use crate::integrations::signature::{HmacVerifier, Verified};
use crate::model::event::Event;
use crate::model::secret::Secret;
use std::time::Duration;

/// A sender that signs like GitHub under its own header names.
#[derive(Debug)]
struct Acme(Option<HmacVerifier>);

impl WebhookSource for Acme {
    fn name(&self) -> &'static str {
        "acme"
    }

    fn secret_setting(&self) -> &'static str {
        "ACME_SECRET"
    }

    fn verify<'a>(&self, headers: &HeaderMap, body: &'a [u8], _now: i64) -> Result<Verified<'a>, SignatureError> {
        let keys = self.0.as_ref().ok_or(SignatureError::NoSecret)?;
        keys.verify_github(headers.get("x-acme-signature").map(|v| v.as_bytes()), body)
    }

    fn refusal(&self, _: SignatureError) -> &'static str {
        "X-Acme-Signature is not a valid signature of this body"
    }

    fn parse(&self, headers: &HeaderMap, verified: Verified<'_>) -> Result<Inbound, InboundError> {
        let id =
            headers.get("x-acme-id").and_then(|v| v.to_str().ok()).ok_or(InboundError::MissingHeader("X-Acme-Id"))?;
        let text = std::str::from_utf8(verified.body()).map_err(|_| InboundError::NotUtf8)?;
        let record = Event::identified(id, "custom.acme_pushed", "acme", Default::default()).record_with_payload(text);
        Ok(Inbound::Queue { records: vec![record], reply: None, signed: None })
    }
}

#[derive(Debug)]
struct NoCommands;

#[async_trait]
impl Answer for NoCommands {
    async fn answer(&self, _: &Command) -> Value {
        Value::Null
    }
}

fn door(secret: Option<&str>) -> (Ingest, Arc<MemoryQueue>, Arc<MemoryStore>) {
    let (queue, store) = (Arc::new(MemoryQueue::default()), Arc::new(MemoryStore::new()));
    let secret = secret.map(Secret::new);
    let sources: Vec<Arc<dyn WebhookSource>> = vec![Arc::new(Acme(HmacVerifier::new(secret.iter())))];
    let enqueue = Enqueue::new(queue.clone(), store.clone());
    let activity = ActivityLog::new(store.clone());
    (Ingest::new(sources, enqueue, activity, 1024, Clock::fixed(0), Arc::new(NoCommands)), queue, store)
}

fn headers(signature: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-acme-signature", signature.parse().expect("header"));
    h.insert("x-acme-id", "acme-1".parse().expect("header"));
    h
}

const BODY: &[u8] = br#"{"pushed":true}"#;

#[tokio::test]
async fn a_new_source_is_verified_queued_once_and_deduplicated_by_the_door_alone() {
    let (ingest, queue, _) = door(Some("acme-secret"));
    let signed = headers(&sign_github("acme-secret", BODY));
    let queued = Accepted::Queued { id: "acme-1".into(), kind: "custom.acme_pushed".into() };
    assert_eq!(ingest.webhook("acme", &signed, BODY).await.expect("accepted"), queued);
    let copy = ingest.webhook("acme", &signed, BODY).await.expect("accepted");
    assert_eq!(copy, Accepted::Duplicate { id: "acme-1".into(), kind: "custom.acme_pushed".into() });
    let msgs = queue.receive(10, Duration::from_millis(50)).await.expect("receive");
    assert_eq!(msgs.len(), 1, "one record for two copies");
    let event = Event::from_json(&msgs[0].body).expect("an event");
    assert_eq!((event.id.as_str(), event.source.as_str()), ("acme-1", "acme"));
    assert_eq!(event.data["payload"], serde_json::json!({ "pushed": true }));
}

#[tokio::test]
async fn a_new_sources_refusals_are_typed_logged_and_queue_nothing() {
    let (ingest, queue, store) = door(Some("acme-secret"));
    let forged = headers(&sign_github("other-secret", BODY));
    let refused = ingest.webhook("acme", &forged, BODY).await.expect_err("refused");
    assert!(matches!(refused, IngestError::Refused("X-Acme-Signature is not a valid signature of this body")));
    let logged = ActivityLog::new(store).rejections().await.expect("rejections");
    assert!(logged.iter().any(|e| e.component == "acme" && e.message.starts_with("acme signature rejected: ")));

    let big = vec![b' '; 1025];
    let too_large = ingest.webhook("acme", &headers(&sign_github("acme-secret", &big)), &big).await;
    assert!(matches!(too_large, Err(IngestError::TooLarge { limit: 1024 })));
    let unknown = ingest.webhook("nobody", &forged, BODY).await;
    assert!(matches!(unknown, Err(IngestError::UnknownSource(name)) if name == "nobody"));
    let mut no_id = headers(&sign_github("acme-secret", BODY));
    no_id.remove("x-acme-id");
    let missing = ingest.webhook("acme", &no_id, BODY).await;
    assert!(matches!(missing, Err(IngestError::Inbound(InboundError::MissingHeader("X-Acme-Id")))));

    let (unkeyed, ..) = door(None);
    let closed = unkeyed.webhook("acme", &headers(&sign_github("acme-secret", BODY)), BODY).await;
    assert!(matches!(closed, Err(IngestError::Unconfigured { setting: "ACME_SECRET" })));
    assert!(queue.receive(10, Duration::from_millis(50)).await.expect("receive").is_empty());
}
