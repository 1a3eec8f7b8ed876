//! Slack: request parsing (slash commands, the Events API, interactivity), the Web API client
//! and the integration. Slash commands are answered in `edge::slash_commands`.

pub mod client;
pub mod integration;
pub mod request;
pub mod signature;

pub use client::{Button, SlackClient, SlackError};
pub use integration::SlackIntegration;
