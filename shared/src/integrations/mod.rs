//! The built-in integrations, GitHub and Slack; the webhook sources they sign requests as,
//! and the signature checks those requests pass before anything is parsed.

pub mod github;
pub mod signature;
pub mod slack;
pub mod source;
