//! Typed configuration: the guide's YAML (`AETHERIUM_CONFIG`), `${VAR}` interpolation,
//! environment overrides, and one validation pass at start that names every bad key.
//!
//! Each section resolves itself from the raw serde shapes in `raw.rs` and names its own
//! problems: [`GithubConfig`], [`SlackConfig`], [`Backends`], [`Edge`], the custom integrations
//! and the routes. This module reads the document and puts the sections together.

mod backends;
mod bridge;
mod custom;
mod edge;
mod fields;
mod github;
mod interpolate;
mod raw;
pub mod routes;
mod slack;

pub use backends::{Backends, BusProvider};
pub use bridge::BridgeConfig;
pub use edge::Edge;
pub use github::{GithubConfig, HookRef, RedeliveryConfig};
pub use interpolate::interpolate;
pub use slack::SlackConfig;

use crate::model::integration::IntegrationConfig;
use crate::model::secret::Secret;
use fields::{nonempty, section};
use raw::RawFile;
use serde_yaml_ng::Value as Yaml;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api";
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_NOTIFY_CHANNEL: &str = "#vms";
pub const DEFAULT_RESPONSE_URL_BASE: &str = "https://hooks.slack.com";
/// Lambda function URLs accept 6 MB; GitHub payloads are capped at 25 MB but rarely pass 1 MB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// The environment, injectable for tests.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// One thing wrong with the configuration: the key and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path} (AETHERIUM_CONFIG): {reason}")]
    Read { path: String, reason: String },
    #[error("the config file {path} is not valid: {reason}")]
    Parse { path: String, reason: String },
    #[error("invalid configuration:\n{}", list(.0))]
    Invalid(Vec<Problem>),
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
}

#[derive(Debug, Clone)]
pub struct Config {
    pub github: GithubConfig,
    pub slack: SlackConfig,
    /// `integrations.<name>` sections other than github and slack.
    pub custom: BTreeMap<String, IntegrationConfig>,
    pub bus: BusProvider,
    /// Set when the bus (and so the store) is Redis. Secret: the URL may hold a password.
    pub redis_url: Option<Secret>,
    /// Set for SQS; `None` is the in-memory queue.
    pub queue_url: Option<String>,
    /// How SQS `SendMessage` is sent (`queue.send`, `AETHERIUM_SQS_SEND`).
    pub sqs_send: crate::backends::queue::SendPath,
    /// The delays of a failed record's retries (`queue.retry_seconds`).
    pub queue_retry: crate::backends::queue::RetrySchedule,
    pub api_token: Option<Secret>,
    /// This function's URL has AuthType AWS_IAM (`AETHERIUM_FUNCTION_URL_AUTH=AWS_IAM`, set
    /// by the template per function): only then is the envelope's IAM identity trusted.
    pub iam_url: bool,
    pub addr: SocketAddr,
    pub max_body_bytes: usize,
    /// Integrations whose health comes from the store: this function holds no credentials
    /// for them (`AETHERIUM_HEALTH_REMOTE`).
    pub health_remote: Vec<String>,
    /// Running as a Lambda function, where in-memory state is one instance's.
    pub in_lambda: bool,
    /// Routes from the config, validated.
    pub routes: Vec<routes::RouteSpec>,
    /// Whether the built-in default routes are active (a configured route with a default's
    /// name replaces that default).
    pub default_routes: bool,
    /// What the bus bridge listens to (`events.subscribe`, `events.inbox`, `events.bridge`).
    pub bridge: BridgeConfig,
}

/// Interpolate every string scalar of the document, naming the key of a malformed one.
fn interpolate_tree(value: &mut Yaml, path: &str, env: Env<'_>, problems: &mut Vec<Problem>) {
    match value {
        Yaml::String(s) => match interpolate(s, env) {
            Ok(v) => *s = v,
            Err(message) => problems.push(Problem { key: path.to_owned(), message }),
        },
        Yaml::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = k.as_str().map(str::to_owned).unwrap_or_else(|| format!("{k:?}"));
                let child = if path.is_empty() { key } else { format!("{path}.{key}") };
                interpolate_tree(v, &child, env, problems);
            }
        }
        Yaml::Sequence(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                interpolate_tree(v, &format!("{path}[{i}]"), env, problems);
            }
        }
        Yaml::Tagged(t) => interpolate_tree(&mut t.value, path, env, problems),
        _ => {}
    }
}

/// The YAML compiled into every binary (see shared/build.rs), read when `AETHERIUM_CONFIG`
/// is `embedded`: how a deployed function gets the configuration `sam build` cannot package.
pub const EMBEDDED: &str = include_str!(concat!(env!("OUT_DIR"), "/embedded-config.yaml"));

impl Config {
    /// An integration configured but switched off (`enabled: false`, or GitHub / Slack without
    /// credentials): its routes are inactive.
    pub fn is_disabled(&self, name: &str) -> bool {
        match name {
            "github" => !self.github.enabled,
            "slack" => !self.slack.enabled,
            other => self.custom.get(other).is_some_and(|c| !c.enabled),
        }
    }

    /// Load from the process environment (and the file `AETHERIUM_CONFIG` names, if any).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::load(&|name| std::env::var(name).ok())
    }

    /// Load with an injected environment; reads the file that `AETHERIUM_CONFIG` names, or
    /// the configuration compiled in ([`EMBEDDED`]) when it says `embedded`.
    pub fn load(env: Env<'_>) -> Result<Self, ConfigError> {
        match nonempty(env("AETHERIUM_CONFIG")) {
            None => Self::from_yaml("", "(none)", env),
            Some(embedded) if embedded == "embedded" => {
                if EMBEDDED.trim().is_empty() {
                    return Err(ConfigError::Read {
                        path: "embedded".into(),
                        reason: "this binary was built without a configuration: set AETHERIUM_EMBED_CONFIG \
                                 (.cargo/config.toml) to a YAML file and build again"
                            .into(),
                    });
                }
                Self::from_yaml(EMBEDDED, "the embedded configuration (AETHERIUM_EMBED_CONFIG at build time)", env)
            }
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ConfigError::Read { path: path.clone(), reason: e.to_string() })?;
                Self::from_yaml(&text, &path, env)
            }
        }
    }

    /// Parse a YAML document (`origin` names it in errors), then apply the environment.
    pub fn from_yaml(text: &str, origin: &str, env: Env<'_>) -> Result<Self, ConfigError> {
        let mut doc: Yaml = if text.trim().is_empty() {
            Yaml::Mapping(Default::default())
        } else {
            serde_yaml_ng::from_str(text)
                .map_err(|e| ConfigError::Parse { path: origin.to_owned(), reason: e.to_string() })?
        };
        let mut problems = Vec::new();
        interpolate_tree(&mut doc, "", env, &mut problems);
        let file: RawFile = serde_yaml_ng::from_value(doc)
            .map_err(|e| ConfigError::Parse { path: origin.to_owned(), reason: e.to_string() })?;
        let config = Self::build(file, env, &mut problems);
        if problems.is_empty() { Ok(config) } else { Err(ConfigError::Invalid(problems)) }
    }

    fn build(mut file: RawFile, env: Env<'_>, problems: &mut Vec<Problem>) -> Self {
        let github =
            GithubConfig::resolve(section("github", file.integrations.remove("github"), problems), env, problems);
        let slack = SlackConfig::resolve(section("slack", file.integrations.remove("slack"), problems), env, problems);
        let custom = custom::resolve(std::mem::take(&mut file.integrations), problems);
        let bridge = BridgeConfig::resolve(
            file.events.subscribe.take(),
            std::mem::take(&mut file.events.inbox),
            std::mem::take(&mut file.events.bridge),
            env,
            problems,
        );
        let Backends { bus, redis_url, queue_url, sqs_send, retry: queue_retry } =
            Backends::resolve(file.events, file.queue, env, problems);
        let Edge { api_token, iam_url, addr, max_body_bytes, health_remote, in_lambda } =
            Edge::resolve(file.server, file.api, file.webhooks, env, problems);

        let mut enabled: Vec<String> = custom.iter().filter(|(_, c)| c.enabled).map(|(n, _)| n.clone()).collect();
        if github.enabled {
            enabled.push("github".into());
        }
        if slack.enabled {
            enabled.push("slack".into());
        }
        let mut disabled: Vec<String> = custom.iter().filter(|(_, c)| !c.enabled).map(|(n, _)| n.clone()).collect();
        disabled.extend(["github", "slack"].into_iter().filter(|n| !enabled.iter().any(|e| e == n)).map(String::from));
        let routes = routes::validate(std::mem::take(&mut file.routes), &enabled, &disabled, problems);

        Config {
            github,
            slack,
            custom,
            bus,
            redis_url,
            queue_url,
            sqs_send,
            queue_retry,
            api_token,
            iam_url,
            addr,
            max_body_bytes,
            health_remote,
            in_lambda,
            routes,
            default_routes: file.default_routes.unwrap_or(true),
            bridge,
        }
    }
}

#[cfg(test)]
mod tests;
