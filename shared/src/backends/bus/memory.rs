//! The in-process bus: the embedded default and a test double with Redis's semantics.

use super::delivery::Subscription;
use super::{EventBus, Handler, SubscriptionId};
use crate::backends::error::BackendError;
use crate::model::event::Event;
use async_trait::async_trait;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct MemoryBus {
    next_id: AtomicU64,
    subscriptions: Mutex<Vec<Subscription>>,
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, topic: &str, event: &Event) -> Result<(), BackendError> {
        let subs = self.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        for sub in subs.iter() {
            if sub.matches(topic) {
                sub.mailbox.deliver(event.clone());
            }
        }
        Ok(())
    }

    async fn publish_json(&self, topic: &str, json: &str) -> Result<(), BackendError> {
        // Parsed only when a subscriber wants it.
        let wanted = {
            let subs = self.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
            subs.iter().any(|s| s.matches(topic))
        };
        if !wanted {
            return Ok(());
        }
        let event =
            Event::from_json(json).map_err(|e| BackendError::rejected("memory bus", format!("not an event: {e}")))?;
        self.publish(topic, &event).await
    }

    async fn subscribe(&self, pattern: &str, handler: Handler) -> Result<SubscriptionId, BackendError> {
        let id = SubscriptionId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let sub = Subscription::new(id, pattern, handler);
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner()).push(sub);
        Ok(id)
    }

    async fn unsubscribe(&self, id: SubscriptionId) -> Result<bool, BackendError> {
        let mut subs = self.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        let before = subs.len();
        subs.retain(|s| s.id != id);
        Ok(subs.len() != before)
    }

    async fn health(&self) -> Result<(), BackendError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
