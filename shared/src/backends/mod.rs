//! The external dependencies behind one trait each, with a real and an in-memory
//! implementation: the event bus, the work queue (SQS), the key-value store (Redis), plus the
//! Redis connection, the outbound HTTP client and the shared rate limit built on them.

pub mod backoff;
pub mod bus;
pub mod error;
pub mod http_client;
pub mod queue;
pub mod ratelimit;
pub mod redis_conn;
pub mod secrets_extension;
pub mod store;
