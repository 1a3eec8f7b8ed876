//! Every integration test, one binary (one link of the AWS SDK, redis, axum and wiremock
//! instead of one per file). Each module is the suite that was once its own `tests/*.rs`;
//! `cargo test -p aetherium-tests --test it <module>::` runs one.

mod bus;
mod bus_bridge;
mod canary;
mod cargo_lambda;
mod declared_features;
mod deploy;
mod dispatcher;
mod envelopes;
mod events_ingest;
mod faults;
mod github;
mod github_webhook;
mod hardening;
mod lambda_binaries;
mod operations;
mod properties;
mod queue;
mod redeliver;
mod redis_shapes;
mod runner;
mod sam_local;
mod signed_send;
mod slack;
mod store;
mod template;
