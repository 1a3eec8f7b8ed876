//! What a route does with an event: the one trait every route action implements (the
//! integrations' handle, notify and artifact calls, publish, the VM registry).

use crate::model::event::Event;
use crate::model::integration::IntegrationError;
use async_trait::async_trait;

#[async_trait]
pub trait Action: Send + Sync + std::fmt::Debug {
    /// Unique among the routes: it names the action in logs and in its idempotency key.
    fn name(&self) -> &str;

    async fn run(&self, event: &Event) -> Result<(), IntegrationError>;

    /// The integration this route hands events to, for the consumed-events metric.
    fn integration(&self) -> Option<&str> {
        None
    }

    /// What kind of action this is (`handle`, `notify`, `artifact`, `publish`), for the
    /// local runner's start-up banner.
    fn kind(&self) -> &str {
        "custom"
    }
}
