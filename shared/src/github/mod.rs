//! GitHub: webhook normalisation (and, later, the API client and the integration).

pub mod webhook;
