//! An in-process queue with SQS's delivery semantics: visibility timeout, receive counts,
//! and a dead-letter list after `max_receives`.

use super::{QueueMessage, WorkQueue};
use crate::backends::error::BackendError;
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    body: String,
    receive_count: u32,
    visible_at: Instant,
    receipt: Option<String>,
}

/// `now + d`, or a day from now when `d` would overflow the clock: a delay from a remote
/// (a Retry-After) must not panic the loop that applies it.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).or_else(|| now.checked_add(Duration::from_secs(86_400))).unwrap_or(now)
}

/// What SQS refuses, refused here too: a stand-in that took it would hide the bug.
fn refuse(body: &str, limit: usize) -> Result<(), BackendError> {
    if body.len() > limit {
        return Err(BackendError::rejected("memory queue", "message is larger than the queue's limit"));
    }
    if let Some(c) = super::refused_char(body) {
        let detail = format!("InvalidMessageContents: the body holds U+{:04X}, which SQS refuses", u32::from(c));
        return Err(BackendError::rejected("memory queue", detail));
    }
    Ok(())
}

#[derive(Debug, Default)]
struct State {
    messages: VecDeque<Stored>,
    dead: Vec<String>,
    next: u64,
}

#[derive(Debug)]
pub struct MemoryQueue {
    state: Mutex<State>,
    arrived: Notify,
    visibility: Duration,
    max_receives: u32,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new(Duration::from_secs(30), super::MAX_RECEIVES)
    }
}

impl MemoryQueue {
    /// `visibility`: how long a received message stays hidden; `max_receives`: receives
    /// after which a message moves to the dead-letter list (SQS's maxReceiveCount).
    pub fn new(visibility: Duration, max_receives: u32) -> Self {
        Self { state: Mutex::default(), arrived: Notify::new(), visibility, max_receives: max_receives.max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bodies of the messages that exhausted their receives.
    pub fn dead_letters(&self) -> Vec<String> {
        self.lock().dead.clone()
    }

    /// Messages not yet deleted (visible or in flight).
    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take_visible(&self, max: usize) -> (Vec<QueueMessage>, Option<Instant>) {
        let now = Instant::now();
        let mut state = self.lock();
        let mut out = Vec::new();
        let mut dead = Vec::new();
        let mut next_visible: Option<Instant> = None;
        let State { messages, next, .. } = &mut *state;
        for m in messages.iter_mut() {
            if out.len() >= max {
                break;
            }
            if m.visible_at > now {
                next_visible = Some(next_visible.map_or(m.visible_at, |t| t.min(m.visible_at)));
                continue;
            }
            if m.receive_count >= self.max_receives {
                dead.push(m.id.clone());
                continue;
            }
            *next = next.wrapping_add(1);
            let receipt = format!("{}#{}", m.id, next);
            m.receive_count = m.receive_count.saturating_add(1);
            m.visible_at = later(now, self.visibility);
            m.receipt = Some(receipt.clone());
            out.push(QueueMessage { id: m.id.clone(), receipt, body: m.body.clone(), receive_count: m.receive_count });
        }
        for id in dead {
            if let Some(pos) = state.messages.iter().position(|m| m.id == id)
                && let Some(m) = state.messages.remove(pos)
            {
                tracing::warn!(message_id = %m.id, receives = m.receive_count, "message moved to the dead-letter list");
                state.dead.push(m.body);
            }
        }
        (out, next_visible)
    }
}

#[async_trait]
impl WorkQueue for MemoryQueue {
    async fn send(&self, body: &str) -> Result<String, BackendError> {
        refuse(body, self.max_message_bytes())?;
        let id = uuid::Uuid::new_v4().to_string();
        self.lock().messages.push_back(Stored {
            id: id.clone(),
            body: body.to_owned(),
            receive_count: 0,
            visible_at: Instant::now(),
            receipt: None,
        });
        self.arrived.notify_waiters();
        Ok(id)
    }

    async fn send_batch(&self, bodies: &[&str]) -> Vec<Result<String, BackendError>> {
        let limit = self.max_message_bytes();
        let now = Instant::now();
        let mut state = self.lock();
        let out = bodies
            .iter()
            .map(|body| {
                refuse(body, limit)?;
                let id = uuid::Uuid::new_v4().to_string();
                let stored = Stored {
                    id: id.clone(),
                    body: (*body).to_owned(),
                    receive_count: 0,
                    visible_at: now,
                    receipt: None,
                };
                state.messages.push_back(stored);
                Ok(id)
            })
            .collect();
        drop(state);
        self.arrived.notify_waiters();
        out
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<QueueMessage>, BackendError> {
        let deadline = later(Instant::now(), wait);
        loop {
            let notified = self.arrived.notified();
            let (batch, next_visible) = self.take_visible(max.max(1));
            if !batch.is_empty() || Instant::now() >= deadline {
                return Ok(batch);
            }
            let wake = next_visible.map_or(deadline, |t| t.min(deadline));
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn delete(&self, receipt: &str) -> Result<(), BackendError> {
        let mut state = self.lock();
        // A stale receipt (the message was received again since) deletes nothing, as in SQS.
        if let Some(pos) = state.messages.iter().position(|m| m.receipt.as_deref() == Some(receipt)) {
            state.messages.remove(pos);
        }
        Ok(())
    }

    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), BackendError> {
        let mut state = self.lock();
        if let Some(m) = state.messages.iter_mut().find(|m| m.receipt.as_deref() == Some(receipt)) {
            m.visible_at = later(Instant::now(), delay);
        }
        drop(state);
        self.arrived.notify_waiters();
        Ok(())
    }

    async fn health(&self) -> Result<(), BackendError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
