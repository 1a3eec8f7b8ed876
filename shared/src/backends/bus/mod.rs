//! The event bus: fan-out of events to every subscriber of a topic or glob pattern.

mod delivery;
pub mod glob;
pub mod inbox;
pub mod memory;
pub mod redis;

use crate::backends::error::BackendError;
use crate::model::event::Event;
use async_trait::async_trait;
use futures_util::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;

pub use inbox::{Inbox, RedisInbox};
pub use memory::MemoryBus;
pub use redis::RedisBus;

pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;
pub type HandlerResult = Result<(), HandlerError>;

/// A subscriber's callback. Each subscription receives its events one at a time, in the
/// order they were published on a topic.
pub type Handler = Arc<dyn Fn(Event) -> BoxFuture<'static, HandlerResult> + Send + Sync>;

/// A message as the bus carried it, unparsed: what a bridge takes in, since what arrives on
/// a channel may be anything its publisher wrote.
#[derive(Debug, Clone)]
pub struct Heard {
    pub channel: Arc<str>,
    pub payload: Arc<[u8]>,
}

/// A subscriber's callback over [`Heard`] messages, one at a time per subscription.
pub type RawHandler = Arc<dyn Fn(Heard) -> BoxFuture<'static, HandlerResult> + Send + Sync>;

/// Wrap an async closure as a [`RawHandler`].
pub fn raw_handler<F, Fut>(f: F) -> RawHandler
where
    F: Fn(Heard) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    Arc::new(move |heard| Box::pin(f(heard)))
}

/// An event handler over raw messages: what is not an event is logged and skipped.
fn parsing(handler: Handler) -> RawHandler {
    raw_handler(move |heard: Heard| {
        let parsed = serde_json::from_slice::<Event>(&heard.payload);
        let handler = handler.clone();
        async move {
            match parsed {
                Ok(event) => handler(event).await,
                Err(error) => {
                    tracing::warn!(channel = %heard.channel, %error, "ignoring a message on the bus that is not an event");
                    Ok(())
                }
            }
        }
    })
}

/// Wrap an async closure as a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    Arc::new(move |event| Box::pin(f(event)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(pub u64);

#[async_trait]
pub trait EventBus: Send + Sync + std::fmt::Debug {
    /// Publish `event` on `topic`. Returns once the bus has accepted it.
    async fn publish(&self, topic: &str, event: &Event) -> Result<(), BackendError> {
        self.publish_json(topic, &event.to_json()).await
    }

    /// Publish an event already in its wire form (a queue record as received), so that
    /// forwarding it does not build and re-serialise its payload. `json` must hold an
    /// [`Event`].
    async fn publish_json(&self, topic: &str, json: &str) -> Result<(), BackendError>;

    /// Subscribe to an exact topic (`vm.created`) or a Redis glob pattern (`vm.*`).
    /// Returns once the subscription is active: an event published afterwards reaches it.
    async fn subscribe(&self, pattern: &str, handler: Handler) -> Result<SubscriptionId, BackendError> {
        self.subscribe_raw(pattern, parsing(handler)).await
    }

    /// [`EventBus::subscribe`] for every message, event or not, as it was published.
    async fn subscribe_raw(&self, pattern: &str, handler: RawHandler) -> Result<SubscriptionId, BackendError>;

    /// Stop a subscription; `false` when it did not exist.
    async fn unsubscribe(&self, id: SubscriptionId) -> Result<bool, BackendError>;

    async fn health(&self) -> Result<(), BackendError>;

    /// `memory` or `redis`, for the start-up banner and logs.
    fn kind(&self) -> &'static str;
}
