//! The built-in integrations, GitHub and Slack, and the signature checks their webhooks
//! pass before anything is parsed.

pub mod github;
pub mod signature;
pub mod slack;
