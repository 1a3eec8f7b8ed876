//! The Aetherium integration framework, shared by every Lambda function and the local runner.
//!
//! Seven layers, each a folder; a module imports only from its own layer and the layers
//! listed before it (checked by `scripts/check-layers`, run by `scripts/test`):
//! 1. [`model`]: what an event, an integration and a template are. Imports nothing of ours.
//! 2. [`backends`]: the event bus, the work queue (in memory, SQS), the key-value store
//!    (in memory, Redis), the outbound HTTP client.
//! 3. [`config`]: the YAML and environment, resolved section by section.
//! 4. [`observe`]: the activity log, metrics, health and tracing set-up.
//! 5. [`integrations`]: GitHub and Slack, each a webhook source and an integration.
//! 6. [`engine`]: the application, its only door (`engine::ingest`), the dispatcher and its
//!    routes, slash commands, health, GitHub redelivery, the VM registry.
//! 7. [`edge`]: HTTP endpoints and the Lambda envelopes, mapping the engine's answers to wire.

pub mod model;

pub mod backends;

pub mod config;

pub mod observe;

pub mod integrations;

pub mod engine;

pub mod edge;

pub use backends::error::BackendError;
pub use engine::app::App;
pub use model::event::{Artifact, ArtifactRef, Event, Notification};
pub use model::integration::{Health, Integration, IntegrationConfig, IntegrationError, Registry};
pub use model::secret::Secret;
