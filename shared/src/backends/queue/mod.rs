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

/// SQS's message size limit. Larger events travel by claim check.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

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
