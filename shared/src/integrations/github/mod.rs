//! GitHub: the webhook source (signature, headers, normalisation), the REST client (token or
//! App), and the integration.

pub mod app_auth;
pub mod client;
pub mod integration;
pub mod signature;
pub mod source;
pub mod target;
pub mod token_seal;
pub mod webhook;

pub use client::{As, GithubClient, GithubError, Page, Repo};
pub use integration::GithubIntegration;
pub use source::GithubSource;
