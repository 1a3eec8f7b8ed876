//! The Aetherium integration framework, shared by every Lambda function and the local runner.

pub mod activity;
pub mod api;
pub mod app;
pub mod backoff;
pub mod bus;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod event;
pub mod github;
pub mod health;
pub mod http_client;
pub mod integration;
pub mod json_repair;
pub mod lambda;
pub mod markup;
pub mod metrics;
pub mod queue;
pub mod ratelimit;
pub mod redis_conn;
pub mod routes;
pub mod secret;
pub mod secrets_extension;
pub mod signature;
pub mod slack;
pub mod store;
pub mod telemetry;
pub mod template;
pub mod vms;

pub use app::App;
pub use error::BackendError;
pub use event::{Artifact, ArtifactRef, Event, Notification};
pub use integration::{Health, Integration, IntegrationConfig, IntegrationError, Registry};
pub use secret::Secret;
