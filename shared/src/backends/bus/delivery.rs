//! Per-subscription delivery shared by both buses: each subscription has its own ordered
//! queue and task, and a handler that errors or panics affects only that one event.

use super::{Heard, RawHandler, SubscriptionId, glob};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use tokio::sync::mpsc;

/// The sending side of one subscription. Dropping it ends the subscription's task once its
/// queue is drained.
#[derive(Debug, Clone)]
pub(crate) struct Mailbox {
    tx: mpsc::UnboundedSender<Heard>,
}

impl Mailbox {
    pub(crate) fn spawn(id: SubscriptionId, pattern: String, handler: RawHandler) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Heard>();
        tokio::spawn(async move {
            while let Some(heard) = rx.recv().await {
                let topic = heard.channel.clone();
                // The handler is called inside the guarded future so a panic while building
                // its future is caught as well as one while running it.
                let outcome = AssertUnwindSafe(async { handler(heard).await }).catch_unwind().await;
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::warn!(
                        subscription = id.0, %pattern, %topic, %error,
                        "event handler failed; the subscription continues"
                    ),
                    Err(_) => tracing::error!(
                        subscription = id.0, %pattern, %topic,
                        "event handler panicked; the subscription continues"
                    ),
                }
            }
        });
        Self { tx }
    }

    pub(crate) fn deliver(&self, heard: Heard) {
        // A closed mailbox means the subscription was just removed; the message is not for it.
        let _ = self.tx.send(heard);
    }
}

/// One subscription as both buses keep it.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) id: SubscriptionId,
    pub(crate) pattern: String,
    pub(crate) glob: bool,
    pub(crate) mailbox: Mailbox,
}

impl Subscription {
    pub(crate) fn new(id: SubscriptionId, pattern: &str, handler: RawHandler) -> Self {
        let mailbox = Mailbox::spawn(id, pattern.to_owned(), handler);
        Self { id, pattern: pattern.to_owned(), glob: glob::is_glob(pattern), mailbox }
    }

    /// Whether an event on `topic` is for this subscription, by Redis's rules.
    pub(crate) fn matches(&self, topic: &str) -> bool {
        glob::topic_matches(&self.pattern, topic)
    }
}
