//! The dispatcher core, shared by the SQS-triggered Lambda and the local runner's loop:
//! one queue record in, the event published on the bus.

use crate::bus::EventBus;
use crate::error::BackendError;
use crate::event::Event;
use crate::queue::{QueueMessage, WorkQueue};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The record can never succeed; it goes to the dead-letter queue after its receives.
    #[error("record is not an event: {0}")]
    Malformed(String),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("processing panicked")]
    Panicked,
}

#[derive(Debug, Clone)]
pub struct Dispatcher {
    bus: Arc<dyn EventBus>,
}

impl Dispatcher {
    pub fn new(bus: Arc<dyn EventBus>) -> Self {
        Self { bus }
    }

    /// Process one record body. An error leaves the record on the queue to be retried.
    pub async fn process(&self, body: &str) -> Result<Event, DispatchError> {
        let event = Event::from_json(body).map_err(|e| DispatchError::Malformed(e.to_string()))?;
        self.bus.publish(&event.kind, &event).await?;
        Ok(event)
    }

    /// [`Dispatcher::process`] in its own span, with a panic contained to this record.
    pub async fn process_isolated(&self, message_id: &str, body: &str) -> Result<Event, DispatchError> {
        let event_id = peek_id(body).unwrap_or_default();
        let span = tracing::info_span!("record", %message_id, %event_id);
        let outcome = AssertUnwindSafe(self.process(body)).catch_unwind().instrument(span.clone()).await;
        let _enter = span.enter();
        match outcome {
            Ok(Ok(event)) => {
                tracing::info!(topic = %event.kind, "event dispatched");
                Ok(event)
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "record failed; it will be retried");
                Err(error)
            }
            Err(_) => {
                tracing::error!("record processing panicked; it will be retried");
                Err(DispatchError::Panicked)
            }
        }
    }
}

/// The event id of a record, for log context even when the record is malformed.
fn peek_id(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_str::<Id>(body).ok().map(|i| i.id)
}

/// The local runner's dispatcher: receive from the queue until `shutdown` turns true, then
/// finish the batch in hand (drain) and return.
pub async fn run_loop(queue: Arc<dyn WorkQueue>, dispatcher: Dispatcher, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let batch = tokio::select! {
            r = queue.receive(10, Duration::from_secs(1)) => r,
            _ = shutdown.changed() => return,
        };
        let batch: Vec<QueueMessage> = match batch {
            Ok(b) => {
                backoff = Duration::from_millis(100);
                b
            }
            Err(error) => {
                tracing::warn!(%error, "queue receive failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        for msg in batch {
            if dispatcher.process_isolated(&msg.id, &msg.body).await.is_ok()
                && let Err(error) = queue.delete(&msg.receipt).await
            {
                tracing::warn!(%error, message_id = %msg.id, "could not delete a processed record; it will be seen again");
            }
        }
    }
}
