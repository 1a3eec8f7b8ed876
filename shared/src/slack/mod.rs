//! Slack: slash commands, the Events API, interactivity, the Web API client and the integration.

pub mod client;
pub mod commands;
pub mod integration;
pub mod request;

pub use client::{Button, SlackClient, SlackError};
pub use integration::SlackIntegration;
