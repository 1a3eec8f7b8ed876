//! Typed configuration: the guide's YAML (`AETHERIUM_CONFIG`), `${VAR}` interpolation,
//! environment overrides, and one validation pass at start that names every bad key.

mod interpolate;
pub mod routes;

pub use interpolate::interpolate;

use crate::integration::IntegrationConfig;
use crate::secret::Secret;
use serde::Deserialize;
use serde_json::{Map, Value as Json};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusProvider {
    Memory,
    Redis,
}

#[derive(Debug, Clone)]
pub struct GithubConfig {
    pub enabled: bool,
    pub token: Option<Secret>,
    pub webhook_secret: Option<Secret>,
    /// The secret being rotated out; accepted alongside the current one.
    pub webhook_secret_previous: Option<Secret>,
    pub base_url: String,
    pub app_id: Option<u64>,
    pub private_key: Option<Secret>,
    pub installation_id: Option<u64>,
    pub requests_per_second: u32,
    /// Per-request timeout for GitHub calls.
    pub timeout_ms: u64,
    pub redelivery: RedeliveryConfig,
}

/// Which GitHub webhook the redelivery job watches, when not the App's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookRef {
    /// `owner/repo#123`
    Repo { owner: String, repo: String, id: u64 },
    /// `org:name#123`
    Org { org: String, id: u64 },
}

impl HookRef {
    /// `owner/repo#123` or `org:name#123`; owner, repo and org names are GitHub's characters.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not owner/repo#<hook id> or org:<name>#<hook id>");
        let (target, id) = text.trim().rsplit_once('#').ok_or_else(bad)?;
        let id: u64 = id.parse().ok().filter(|id| *id > 0).ok_or_else(bad)?;
        // Dots alone (`..`) would climb out of the path the name is spliced into.
        let name_ok = |s: &str| {
            s.len() <= 100
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && s.chars().any(|c| c != '.')
        };
        if let Some(org) = target.strip_prefix("org:") {
            return if name_ok(org) { Ok(Self::Org { org: org.to_owned(), id }) } else { Err(bad()) };
        }
        match target.split_once('/') {
            Some((owner, repo)) if name_ok(owner) && name_ok(repo) => {
                Ok(Self::Repo { owner: owner.to_owned(), repo: repo.to_owned(), id })
            }
            _ => Err(bad()),
        }
    }

    /// The hook's deliveries endpoint.
    pub fn deliveries_path(&self) -> String {
        match self {
            Self::Repo { owner, repo, id } => format!("/repos/{owner}/{repo}/hooks/{id}/deliveries"),
            Self::Org { org, id } => format!("/orgs/{org}/hooks/{id}/deliveries"),
        }
    }
}

impl fmt::Display for HookRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Repo { owner, repo, id } => write!(f, "{owner}/{repo}#{id}"),
            Self::Org { org, id } => write!(f, "org:{org}#{id}"),
        }
    }
}

/// `integrations.github.redelivery`: the job that asks GitHub to redeliver what failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeliveryConfig {
    pub enabled: bool,
    /// A repository or organization webhook; `None` watches the GitHub App's webhook.
    pub hook: Option<HookRef>,
    /// Redelivery requests per run.
    pub max_per_run: u32,
    /// Deliveries of one GUID, the first one included, after which the job gives up.
    pub max_attempts: u32,
    /// How often the local runner runs the job (Lambda: the template's RedeliverySchedule).
    pub interval_secs: u64,
}

impl Default for RedeliveryConfig {
    fn default() -> Self {
        Self { enabled: true, hook: None, max_per_run: 100, max_attempts: 3, interval_secs: 300 }
    }
}

#[derive(Debug, Clone)]
pub struct SlackConfig {
    pub enabled: bool,
    pub bot_token: Option<Secret>,
    pub signing_secret: Option<Secret>,
    pub base_url: String,
    pub notify_channel: String,
    /// `scheme://host` every response_url must start with; only tests change it.
    pub response_url_base: String,
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
    pub api_token: Option<Secret>,
    /// This function's URL has AuthType AWS_IAM (`AETHERIUM_FUNCTION_URL_AUTH=AWS_IAM`, set
    /// by the template per function): only then is the envelope's IAM identity trusted.
    pub iam_url: bool,
    pub addr: SocketAddr,
    pub max_body_bytes: usize,
    /// Routes from the config, validated.
    pub routes: Vec<routes::RouteSpec>,
    /// Whether the built-in default routes are active (a configured route with a default's
    /// name replaces that default).
    pub default_routes: bool,
}

// ---- the file's shape ----

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawFile {
    integrations: BTreeMap<String, Yaml>,
    events: RawEvents,
    queue: RawQueue,
    api: RawApi,
    server: RawServer,
    webhooks: RawWebhooks,
    routes: Vec<routes::RawRoute>,
    #[serde(deserialize_with = "lenient::bool")]
    default_routes: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawGithub {
    #[serde(deserialize_with = "lenient::bool")]
    enabled: Option<bool>,
    token: Option<String>,
    webhook_secret: Option<String>,
    webhook_secret_previous: Option<String>,
    base_url: Option<String>,
    app_id: Option<Yaml>,
    private_key: Option<String>,
    installation_id: Option<Yaml>,
    #[serde(deserialize_with = "lenient::number")]
    requests_per_second: Option<u32>,
    #[serde(deserialize_with = "lenient::number")]
    timeout_ms: Option<u64>,
    redelivery: RawRedelivery,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRedelivery {
    #[serde(deserialize_with = "lenient::bool")]
    enabled: Option<bool>,
    hook: Option<String>,
    #[serde(deserialize_with = "lenient::number")]
    max_per_run: Option<u32>,
    #[serde(deserialize_with = "lenient::number")]
    max_attempts: Option<u32>,
    #[serde(deserialize_with = "lenient::number")]
    interval_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSlack {
    #[serde(deserialize_with = "lenient::bool")]
    enabled: Option<bool>,
    bot_token: Option<String>,
    signing_secret: Option<String>,
    base_url: Option<String>,
    notify_channel: Option<String>,
    response_url_base: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawEvents {
    provider: Option<String>,
    redis: RawRedis,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRedis {
    addr: Option<String>,
    #[serde(deserialize_with = "lenient::number")]
    db: Option<u32>,
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawQueue {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawApi {
    token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawServer {
    addr: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawWebhooks {
    #[serde(deserialize_with = "lenient::number")]
    max_body_bytes: Option<usize>,
}

/// Settings written as `${VAR}` arrive as strings: typed fields accept `"true"` and `"5"`.
mod lenient {
    use serde::{Deserialize, Deserializer, de::Error};
    use serde_yaml_ng::Value;

    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) => match s.trim() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                "" => Ok(None),
                other => Err(D::Error::custom(format!("`{other}` is not true or false"))),
            },
            Some(_) => Err(D::Error::custom("must be true or false")),
        }
    }

    pub fn number<'de, D: Deserializer<'de>, T: std::str::FromStr + serde::de::DeserializeOwned>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => {
                s.trim().parse().map(Some).map_err(|_| D::Error::custom(format!("`{s}` is not a whole number")))
            }
            Some(v) => serde_yaml_ng::from_value(v).map(Some).map_err(D::Error::custom),
        }
    }
}

/// Interpolate every string scalar of the document, naming the key of a malformed one.
fn interpolate_tree(value: &mut Yaml, path: &str, env: &dyn Fn(&str) -> Option<String>, problems: &mut Vec<Problem>) {
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

fn nonempty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn secret(s: Option<String>) -> Option<Secret> {
    s.and_then(Secret::non_empty)
}

fn check_url(key: &str, url: &str, fix: &str, problems: &mut Vec<Problem>) {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.split("://").nth(1).is_some_and(|h| !h.is_empty());
    if !ok {
        let shown = crate::http_client::redact_url(url, true);
        problems.push(Problem { key: key.to_owned(), message: format!("`{shown}` is not an http(s) URL; {fix}") });
    }
}

/// An id given as a number or a numeric string (env interpolation yields strings).
fn id(key: &str, raw: Option<Yaml>, problems: &mut Vec<Problem>) -> Option<u64> {
    let parsed = match &raw {
        None => return None,
        Some(Yaml::Number(n)) => n.as_u64(),
        Some(Yaml::String(s)) if s.trim().is_empty() => return None,
        Some(Yaml::String(s)) => s.trim().parse().ok(),
        Some(Yaml::Null) => return None,
        Some(_) => None,
    };
    if parsed.is_none() {
        problems.push(Problem { key: key.to_owned(), message: "must be a positive whole number".to_owned() });
    }
    parsed
}

fn section<T: Default + serde::de::DeserializeOwned>(name: &str, raw: Option<Yaml>, problems: &mut Vec<Problem>) -> T {
    match raw {
        None | Some(Yaml::Null) => T::default(),
        Some(v) => serde_yaml_ng::from_value(v).unwrap_or_else(|e| {
            problems.push(Problem { key: format!("integrations.{name}"), message: e.to_string() });
            T::default()
        }),
    }
}

/// The YAML compiled into every binary (see shared/build.rs), read when `AETHERIUM_CONFIG`
/// is `embedded`: how a deployed function gets the configuration `sam build` cannot package.
pub const EMBEDDED: &str = include_str!(concat!(env!("OUT_DIR"), "/embedded-config.yaml"));

/// A whole number from the environment, or the file's; a malformed variable is named.
fn env_number<T: std::str::FromStr>(
    var: &str,
    key: &str,
    file: Option<T>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    match nonempty(env(var)) {
        None => file,
        Some(text) => text.parse().map(Some).unwrap_or_else(|_| {
            problems
                .push(Problem { key: format!("{key} ({var})"), message: format!("`{text}` is not a whole number") });
            file
        }),
    }
}

fn redelivery(
    raw: RawRedelivery,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> RedeliveryConfig {
    const KEY: &str = "integrations.github.redelivery";
    let defaults = RedeliveryConfig::default();
    let enabled = match nonempty(env("GITHUB_REDELIVERY_ENABLED")).as_deref() {
        None => raw.enabled,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            problems.push(Problem {
                key: format!("{KEY}.enabled (GITHUB_REDELIVERY_ENABLED)"),
                message: format!("`{other}` is not true or false"),
            });
            raw.enabled
        }
    };
    let hook = nonempty(env("GITHUB_REDELIVERY_HOOK")).or(nonempty(raw.hook)).and_then(|text| {
        HookRef::parse(&text)
            .map_err(|message| problems.push(Problem { key: format!("{KEY}.hook (GITHUB_REDELIVERY_HOOK)"), message }))
            .ok()
    });
    let mut number = |var: &str, name: &str, file: Option<u64>, default: u64, range: std::ops::RangeInclusive<u64>| {
        let key = format!("{KEY}.{name}");
        let value = env_number(var, &key, file, env, problems).unwrap_or(default);
        if !range.contains(&value) {
            problems.push(Problem {
                key: format!("{key} ({var})"),
                message: format!("must be {} to {}", range.start(), range.end()),
            });
            return default;
        }
        value
    };
    let max_per_run = number(
        "GITHUB_REDELIVERY_MAX_PER_RUN",
        "max_per_run",
        raw.max_per_run.map(u64::from),
        defaults.max_per_run.into(),
        1..=1000,
    );
    let max_attempts = number(
        "GITHUB_REDELIVERY_MAX_ATTEMPTS",
        "max_attempts",
        raw.max_attempts.map(u64::from),
        defaults.max_attempts.into(),
        2..=20,
    );
    let interval_secs = number(
        "GITHUB_REDELIVERY_INTERVAL_SECS",
        "interval_secs",
        raw.interval_secs,
        defaults.interval_secs,
        1..=86_400,
    );
    RedeliveryConfig {
        enabled: enabled.unwrap_or(defaults.enabled),
        hook,
        // The ranges above keep both within u32.
        max_per_run: max_per_run as u32,
        max_attempts: max_attempts as u32,
        interval_secs,
    }
}

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
    pub fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
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
    pub fn from_yaml(text: &str, origin: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
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

    fn build(mut file: RawFile, env: &dyn Fn(&str) -> Option<String>, problems: &mut Vec<Problem>) -> Self {
        let e = |name: &str| nonempty(env(name));

        // GitHub: the environment overrides the file.
        let gh: RawGithub = section("github", file.integrations.remove("github"), problems);
        let app_id = e("GITHUB_APP_ID").map(Yaml::String).or(gh.app_id);
        let github = GithubConfig {
            token: secret(e("GITHUB_TOKEN").or(gh.token)),
            webhook_secret: secret(e("GITHUB_WEBHOOK_SECRET").or(gh.webhook_secret)),
            webhook_secret_previous: secret(e("GITHUB_WEBHOOK_SECRET_PREVIOUS").or(gh.webhook_secret_previous)),
            base_url: e("GITHUB_API_URL")
                .or(nonempty(gh.base_url))
                .unwrap_or_else(|| DEFAULT_GITHUB_API_URL.to_owned()),
            app_id: id("integrations.github.app_id (GITHUB_APP_ID)", app_id, problems),
            private_key: secret(e("GITHUB_APP_PRIVATE_KEY").or(gh.private_key)),
            installation_id: id(
                "integrations.github.installation_id (GITHUB_APP_INSTALLATION_ID)",
                e("GITHUB_APP_INSTALLATION_ID").map(Yaml::String).or(gh.installation_id),
                problems,
            ),
            requests_per_second: gh.requests_per_second.unwrap_or(5),
            timeout_ms: gh.timeout_ms.unwrap_or(10_000),
            redelivery: redelivery(gh.redelivery, env, problems),
            enabled: false,
        };
        let github = GithubConfig {
            // Enabled when credentials are present, unless the file says otherwise.
            enabled: gh.enabled.unwrap_or(github.token.is_some() || github.app_id.is_some()),
            ..github
        };
        check_url(
            "integrations.github.base_url (GITHUB_API_URL)",
            &github.base_url,
            "use https://api.github.com or https://<your-ghes-host>/api/v3",
            problems,
        );
        if github.app_id.is_some() != github.private_key.is_some() {
            let (have, missing) = if github.app_id.is_some() {
                ("GITHUB_APP_ID", "integrations.github.private_key (GITHUB_APP_PRIVATE_KEY)")
            } else {
                ("GITHUB_APP_PRIVATE_KEY", "integrations.github.app_id (GITHUB_APP_ID)")
            };
            problems.push(Problem {
                key: missing.to_owned(),
                message: format!(
                    "is missing while {have} is set: a GitHub App needs both its id and its PEM private key"
                ),
            });
        }
        if !(100..=60_000).contains(&github.timeout_ms) {
            problems
                .push(Problem { key: "integrations.github.timeout_ms".into(), message: "must be 100 to 60000".into() });
        }
        if github.requests_per_second == 0 {
            problems.push(Problem {
                key: "integrations.github.requests_per_second".into(),
                message: "must be at least 1".into(),
            });
        }

        let sl: RawSlack = section("slack", file.integrations.remove("slack"), problems);
        let slack = SlackConfig {
            bot_token: secret(e("SLACK_BOT_TOKEN").or(sl.bot_token)),
            signing_secret: secret(e("SLACK_SIGNING_SECRET").or(sl.signing_secret)),
            base_url: e("SLACK_API_URL").or(nonempty(sl.base_url)).unwrap_or_else(|| DEFAULT_SLACK_API_URL.to_owned()),
            notify_channel: e("SLACK_NOTIFY_CHANNEL")
                .or(nonempty(sl.notify_channel))
                .unwrap_or_else(|| DEFAULT_NOTIFY_CHANNEL.to_owned()),
            response_url_base: e("SLACK_RESPONSE_URL_BASE")
                .or(nonempty(sl.response_url_base))
                .unwrap_or_else(|| DEFAULT_RESPONSE_URL_BASE.to_owned()),
            enabled: false,
        };
        let slack = SlackConfig { enabled: sl.enabled.unwrap_or(slack.bot_token.is_some()), ..slack };
        check_url(
            "integrations.slack.base_url (SLACK_API_URL)",
            &slack.base_url,
            "use https://slack.com/api",
            problems,
        );
        check_url(
            "integrations.slack.response_url_base (SLACK_RESPONSE_URL_BASE)",
            &slack.response_url_base,
            "leave it unset (https://hooks.slack.com)",
            problems,
        );

        let mut custom = BTreeMap::new();
        for (name, raw) in file.integrations {
            let key = format!("integrations.{name}");
            let json: Json = match raw {
                Yaml::Null => Json::Object(Map::new()),
                other => match serde_json::to_value(&other) {
                    Ok(v) => v,
                    Err(e) => {
                        problems.push(Problem { key, message: format!("cannot be read as options: {e}") });
                        continue;
                    }
                },
            };
            let Json::Object(mut options) = json else {
                problems.push(Problem { key, message: "must be a mapping of options (enabled: true, ...)".into() });
                continue;
            };
            let enabled = match options.remove("enabled") {
                None => true,
                Some(Json::Bool(b)) => b,
                Some(Json::String(s)) if s == "true" || s == "false" => s == "true",
                Some(_) => {
                    problems.push(Problem { key: format!("{key}.enabled"), message: "must be true or false".into() });
                    false
                }
            };
            custom.insert(name, IntegrationConfig { enabled, options });
        }

        // Event bus and store: REDIS_URL wins; else the file's events.redis.
        // The environment wins over the file, a provider choice included: REDIS_URL means Redis
        // even where the file says `provider: memory` (the sample does, for a first run).
        let redis_from_env = e("REDIS_URL");
        let from_env = redis_from_env.is_some();
        let redis_url = redis_from_env.or(nonempty(file.events.redis.url)).or_else(|| {
            nonempty(file.events.redis.addr).map(|addr| format!("redis://{addr}/{}", file.events.redis.db.unwrap_or(0)))
        });
        let bus = match nonempty(file.events.provider).as_deref() {
            _ if from_env => BusProvider::Redis,
            None if redis_url.is_some() => BusProvider::Redis,
            None | Some("memory") => BusProvider::Memory,
            Some("redis") => BusProvider::Redis,
            Some(other) => {
                problems.push(Problem {
                    key: "events.provider".into(),
                    message: format!("`{other}` is not a provider; use redis or memory"),
                });
                BusProvider::Memory
            }
        };
        if let Some(url) = &redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                problems.push(Problem {
                    key: "events.redis (REDIS_URL)".into(),
                    message:
                        "must be redis://host:port/db or rediss://... (the value is not shown: it may hold a password)"
                            .into(),
                });
            }
        } else if bus == BusProvider::Redis {
            problems.push(Problem {
                key: "events.redis.addr".into(),
                message:
                    "events.provider is redis but no address is set; set events.redis.addr (host:port) or REDIS_URL"
                        .into(),
            });
        }

        let queue_url = e("AETHERIUM_QUEUE_URL").or(nonempty(file.queue.url));
        if let Some(url) = &queue_url {
            check_url(
                "queue.url (AETHERIUM_QUEUE_URL)",
                url,
                "use the queue URL that `aws sqs get-queue-url` prints",
                problems,
            );
        }

        let addr_text = e("AETHERIUM_ADDR").or(nonempty(file.server.addr)).unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let addr = addr_text.parse().unwrap_or_else(|_| {
            problems.push(Problem {
                key: "server.addr (AETHERIUM_ADDR)".into(),
                message: format!("`{addr_text}` is not an ip:port address such as 127.0.0.1:8080"),
            });
            DEFAULT_ADDR.parse().expect("the default address parses")
        });

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

        let iam_url = match e("AETHERIUM_FUNCTION_URL_AUTH").as_deref() {
            None | Some("NONE") => false,
            Some("AWS_IAM") => true,
            Some(_) => {
                problems.push(Problem {
                    key: "AETHERIUM_FUNCTION_URL_AUTH".into(),
                    message: "must be AWS_IAM or NONE, the AuthType of this function's URL".into(),
                });
                false
            }
        };

        let max_body_bytes = file.webhooks.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if !(1024..=6 * 1024 * 1024).contains(&max_body_bytes) {
            problems.push(Problem {
                key: "webhooks.max_body_bytes".into(),
                message: "must be between 1024 and 6291456 (Lambda's request limit)".into(),
            });
        }

        Config {
            github,
            slack,
            custom,
            bus,
            redis_url: redis_url.map(Secret::new),
            queue_url,
            api_token: secret(e("AETHERIUM_API_TOKEN").or(file.api.token)),
            iam_url,
            addr,
            max_body_bytes,
            routes,
            default_routes: file.default_routes.unwrap_or(true),
        }
    }
}

#[cfg(test)]
mod tests;
