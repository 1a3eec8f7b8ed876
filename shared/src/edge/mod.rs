//! Where requests arrive: the HTTP endpoints and the Lambda envelopes (function URL, SQS,
//! schedule) that carry them. Each maps what the engine answers to its wire.

pub mod api;
pub mod lambda;
