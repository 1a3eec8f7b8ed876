//! The application: the context built once per cold start, the dispatcher that runs an
//! event's routes, the route actions, and the VM registry the routes keep.

pub mod app;
pub mod dispatch;
pub mod routes;
pub mod vms;
