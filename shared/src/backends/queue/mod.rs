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

/// Receives before the queue moves a record to the dead-letter queue: template.yaml's
/// `maxReceiveCount` (its test checks they agree) and the local queue's. Sized with
/// [`RETRY_SCHEDULE`]: the last receive comes 6 + 15 + 60 + 300 + 1200 + 1200 s ≈ 46 minutes
/// after the first, so an outage shorter than 30 minutes sends nothing to the dead-letter
/// queue; a record that can never succeed gets there in about an hour and a quarter.
pub const MAX_RECEIVES: u32 = 7;

/// How long a record that failed on something passing (a backend down or timing out, an
/// integration's transient error without a Retry-After) waits before its next receive, by the
/// receive that failed: the first, the second, ..., and the last step for every one after.
/// The first comes just after the Redis breaker's cool-down and its probe's wait
/// (backends::redis_conn), so the first retry after Redis returns goes through rather than
/// failing fast again. `queue.retry_seconds` replaces it.
pub const RETRY_SCHEDULE: [Duration; 5] = [
    Duration::from_secs(6),
    Duration::from_secs(15),
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(1200),
];

/// SQS's cap on a visibility timeout, and so on one retry's delay.
pub const MAX_DELAY: Duration = Duration::from_secs(12 * 3600);

/// The delays of a failed record's retries ([`RETRY_SCHEDULE`] unless configured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(std::sync::Arc<[Duration]>);

impl Default for RetrySchedule {
    fn default() -> Self {
        Self(RETRY_SCHEDULE.into())
    }
}

impl RetrySchedule {
    /// `steps` in order; `None` when empty, or a step is zero, over [`MAX_DELAY`], or shorter
    /// than the one before.
    pub fn new(steps: &[Duration]) -> Option<Self> {
        let ordered = steps.windows(2).all(|w| w[0] <= w[1]);
        let bounded = steps.iter().all(|d| !d.is_zero() && *d <= MAX_DELAY);
        (!steps.is_empty() && ordered && bounded).then(|| Self(steps.into()))
    }

    /// The delay after receive number `receive_count` (1 for the first) failed, with up to a
    /// fifth more at random, so records that failed together come back spread out.
    pub fn after(&self, receive_count: u32) -> Duration {
        let step = self.0[(receive_count.max(1) as usize - 1).min(self.0.len() - 1)];
        step + crate::backends::backoff::jitter(step / 5)
    }

    /// How long after its first receive a record that fails every time is received for the
    /// last time, at the shortest the jitter allows: the longest outage it survives.
    pub fn survives(&self, receives: u32) -> Duration {
        (1..receives).map(|n| self.0[(n as usize - 1).min(self.0.len() - 1)]).sum()
    }
}

/// The first character of `body` that SQS refuses in a message (`InvalidMessageContents`): it
/// takes only #x9, #xA, #xD, #x20 to #xD7FF, #xE000 to #xFFFD and #x10000 to #x10FFFF.
pub fn refused_char(body: &str) -> Option<char> {
    body.chars()
        .find(|&c| !matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
}

/// A record's JSON text as SQS takes it: the characters it refuses (U+FFFE and U+FFFF; the
/// others cannot stand raw in JSON text) written as JSON escapes, which read back as the same
/// characters. Borrowed when there are none, which is almost always.
pub fn sqs_safe(record: &str) -> std::borrow::Cow<'_, str> {
    if !record.contains(['\u{FFFE}', '\u{FFFF}']) {
        return std::borrow::Cow::Borrowed(record);
    }
    let mut out = String::with_capacity(record.len() + 16);
    for c in record.chars() {
        match c {
            '\u{FFFE}' => out.push_str("\\ufffe"),
            '\u{FFFF}' => out.push_str("\\uffff"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_shorter_than_half_an_hour_sends_nothing_to_the_dead_letter_queue() {
        let schedule = RetrySchedule::default();
        let survives = schedule.survives(MAX_RECEIVES);
        assert!(survives > Duration::from_secs(30 * 60), "{survives:?}");
        for n in 0..=MAX_RECEIVES + 3 {
            let step = RETRY_SCHEDULE[(n.max(1) as usize - 1).min(RETRY_SCHEDULE.len() - 1)];
            let d = schedule.after(n);
            assert!(d >= step && d <= step + step / 5, "receive {n}: {d:?}");
        }
    }

    #[test]
    fn the_first_retry_comes_after_the_breakers_cool_down_and_probe() {
        use crate::backends::redis_conn::{COOL_DOWN, PROBE_WAIT};
        assert!(RETRY_SCHEDULE[0] > COOL_DOWN + PROBE_WAIT, "the first retry finds the breaker ready to probe");
    }

    #[test]
    fn a_schedule_is_ordered_positive_and_within_sqs_cap() {
        let s = |secs: &[u64]| RetrySchedule::new(&secs.iter().map(|s| Duration::from_secs(*s)).collect::<Vec<_>>());
        assert!(s(&[1, 1, 5]).is_some());
        assert!(s(&[]).is_none());
        assert!(s(&[0, 5]).is_none());
        assert!(s(&[10, 5]).is_none());
        assert!(s(&[43_201]).is_none());
    }

    #[test]
    fn what_sqs_refuses_is_escaped_and_reads_back_the_same() {
        let record = serde_json::json!({ "id": "e", "data": { "text": "a\u{FFFF}b\u{FFFE}c ✅ 𝄞" } }).to_string();
        assert_eq!(refused_char(&record), Some('\u{FFFF}'), "serde_json writes them raw");
        let safe = sqs_safe(&record);
        assert_eq!(refused_char(&safe), None, "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back.to_string(), record, "the same event");
        assert!(matches!(sqs_safe("{\"ok\":\"✅\"}"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(refused_char("tab\tok\u{1}"), Some('\u{1}'));
    }

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
