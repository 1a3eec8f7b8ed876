//! Where requests arrive: the HTTP endpoints, the slash commands answered inline, and the
//! Lambda envelopes (function URL, SQS, schedule) that carry them.

pub mod api;
pub mod lambda;
pub mod slash_commands;
