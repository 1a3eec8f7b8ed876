//! The application: the composition built once per cold start ([`app`]), and its use cases:
//! the one door in ([`ingest`]), the dispatcher that runs an event's routes, the slash
//! commands, health, GitHub redelivery, and the VM registry the routes keep.

pub mod action;
pub mod app;
pub mod bridge;
pub mod clock;
pub mod commands;
pub mod dispatch;
pub mod health;
pub mod ingest;
pub mod redeliver;
pub mod routes;
pub mod vms;
