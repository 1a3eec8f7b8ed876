//! The work queue: durable hand-off between functions (SQS in AWS, memory locally).

pub mod claim;
pub mod memory;
pub mod signed_send;
pub mod sqs;

use crate::backends::error::BackendError;
use async_trait::async_trait;
use std::time::Duration;

pub use memory::MemoryQueue;
pub use signed_send::SignedSender;
pub use sqs::{SendPath, SqsQueue};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_to_ten_entries_and_one_message_in_all() {
        let small = vec!["x"; 23];
        assert_eq!(batches(&small, 100), vec![0..10, 10..20, 20..23]);
        let sized = ["aaaa", "bbbb", "cc", "dddddd", "e"];
        assert_eq!(batches(&sized, 8), vec![0..2, 2..4, 4..5]);
        let too_big = ["a", "bbbbbbbbbbbb", "c"];
        assert_eq!(batches(&too_big, 8), vec![0..1, 1..2, 2..3], "an oversized body goes alone");
        assert!(batches(&[], 8).is_empty());
    }
}

/// SQS's message size limit. Larger events travel by claim check.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// SQS's limit on the entries of one `SendMessageBatch`; their bodies together may not be
/// larger than one message ([`MAX_MESSAGE_BYTES`]).
pub const BATCH_ENTRIES: usize = 10;

/// `bodies` cut, in order, into runs that one `SendMessageBatch` may carry: at most
/// [`BATCH_ENTRIES`] each, and at most `max_bytes` in all (a body larger than that alone is
/// a run of its own, for the queue to refuse).
pub fn batches(bodies: &[&str], max_bytes: usize) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, body) in bodies.iter().enumerate() {
        if i > start && (i - start == BATCH_ENTRIES || bytes + body.len() > max_bytes) {
            runs.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += body.len();
    }
    if start < bodies.len() {
        runs.push(start..bodies.len());
    }
    runs
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub id: String,
    /// The handle for delete and change-visibility; valid for this receive only.
    pub receipt: String,
    pub body: String,
    /// How many times this message has been received, this time included.
    pub receive_count: u32,
}

#[async_trait]
pub trait WorkQueue: Send + Sync + std::fmt::Debug {
    /// Hand a message to the queue; returns its id once the queue has stored it.
    async fn send(&self, body: &str) -> Result<String, BackendError>;

    /// Hand many messages to the queue in as few requests as it takes; one result per body,
    /// in order, since each is stored or fails on its own. By default one [`Self::send`] each.
    async fn send_batch(&self, bodies: &[&str]) -> Vec<Result<String, BackendError>> {
        let mut out = Vec::with_capacity(bodies.len());
        for body in bodies {
            out.push(self.send(body).await);
        }
        out
    }

    /// Up to `max` messages, waiting up to `wait` for the first. Received messages are
    /// hidden from other receivers until deleted or their visibility timeout passes.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<QueueMessage>, BackendError>;

    /// Acknowledge a message: it is done and will not be delivered again.
    async fn delete(&self, receipt: &str) -> Result<(), BackendError>;

    /// Make a received message visible again after `delay` (retry later).
    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), BackendError>;

    async fn health(&self) -> Result<(), BackendError>;

    fn max_message_bytes(&self) -> usize {
        MAX_MESSAGE_BYTES
    }

    /// `memory` or `sqs`, for the start-up banner and logs.
    fn kind(&self) -> &'static str;
}
