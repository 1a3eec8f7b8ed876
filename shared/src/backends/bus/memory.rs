//! The in-process bus: the embedded default and a test double with Redis's semantics.

use super::delivery::Subscription;
use super::{EventBus, Heard, RawHandler, SubscriptionId};
use crate::backends::error::BackendError;
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
    async fn publish_json(&self, topic: &str, json: &str) -> Result<(), BackendError> {
        let subs = self.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        let mut heard: Option<Heard> = None;
        for sub in subs.iter().filter(|s| s.matches(topic)) {
            let heard = heard.get_or_insert_with(|| Heard { channel: topic.into(), payload: json.as_bytes().into() });
            sub.mailbox.deliver(heard.clone());
        }
        Ok(())
    }

    async fn subscribe_raw(&self, pattern: &str, handler: RawHandler) -> Result<SubscriptionId, BackendError> {
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
