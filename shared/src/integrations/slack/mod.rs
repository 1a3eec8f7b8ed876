//! Slack: request parsing (slash commands, the Events API, interactivity), the Web API client
//! and the integration. Slash commands are answered in `engine::commands`.

pub mod client;
pub mod integration;
pub mod request;
pub mod signature;
pub mod source;

pub use client::{Button, SlackClient, SlackError};
pub use integration::SlackIntegration;
pub use source::SlackSource;
