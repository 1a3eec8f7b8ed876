//! What the system talks about: events and their topics, the integration trait and registry,
//! message templates. Depends on nothing else in the crate.

pub mod event;
pub mod fingerprint;
pub mod integration;
pub mod json_repair;
pub mod markup;
pub mod repo;
pub mod secret;
pub mod template;
