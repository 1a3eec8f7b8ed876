//! What operators see: the activity log, metrics, health checks and the tracing set-up.

pub mod activity;
pub mod health;
pub mod metrics;
pub mod telemetry;
