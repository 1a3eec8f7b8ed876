//! `integrations.github`: the token or GitHub App, the webhook secrets, the API base URL,
//! and the redelivery job. The environment (`GITHUB_*`) overrides the file.

use super::fields::{check_url, env_number, id, nonempty, secret};
use super::raw::{RawGithub, RawRedelivery};
use super::{DEFAULT_GITHUB_API_URL, Env, Problem};
use crate::model::repo::{RepoName, owner_ok};
use crate::model::secret::Secret;
use serde_yaml_ng::Value as Yaml;
use std::fmt;

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
    Repo { repo: RepoName, id: u64 },
    /// `org:name#123`
    Org { org: String, id: u64 },
}

impl HookRef {
    /// `owner/repo#123` or `org:name#123`; owner, repo and org names are GitHub's characters.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not owner/repo#<hook id> or org:<name>#<hook id>");
        let (target, id) = text.trim().rsplit_once('#').ok_or_else(bad)?;
        let id: u64 = id.parse().ok().filter(|id| *id > 0).ok_or_else(bad)?;
        if let Some(org) = target.strip_prefix("org:") {
            return if owner_ok(org) { Ok(Self::Org { org: org.to_owned(), id }) } else { Err(bad()) };
        }
        match RepoName::parse(target) {
            Ok(repo) => Ok(Self::Repo { repo, id }),
            Err(e) => Err(format!("{}: {e}", bad())),
        }
    }

    /// The hook's deliveries endpoint.
    pub fn deliveries_path(&self) -> String {
        match self {
            Self::Repo { repo, id } => format!("/repos/{repo}/hooks/{id}/deliveries"),
            Self::Org { org, id } => format!("/orgs/{org}/hooks/{id}/deliveries"),
        }
    }
}

impl fmt::Display for HookRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Repo { repo, id } => write!(f, "{repo}#{id}"),
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

impl GithubConfig {
    /// Resolve the section, pushing a problem for every bad key.
    pub(super) fn resolve(gh: RawGithub, env: Env<'_>, problems: &mut Vec<Problem>) -> Self {
        let e = |name: &str| nonempty(env(name));
        let app_id = e("GITHUB_APP_ID").map(Yaml::String).or(gh.app_id);
        let github = Self {
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
            redelivery: RedeliveryConfig::resolve(gh.redelivery, env, problems),
            enabled: false,
        };
        let github = Self {
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
        github
    }
}

impl RedeliveryConfig {
    /// `integrations.github.redelivery`, with the `GITHUB_REDELIVERY_*` variables over the file.
    pub(super) fn resolve(raw: RawRedelivery, env: Env<'_>, problems: &mut Vec<Problem>) -> Self {
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
                .map_err(|message| {
                    problems.push(Problem { key: format!("{KEY}.hook (GITHUB_REDELIVERY_HOOK)"), message })
                })
                .ok()
        });
        let mut number =
            |var: &str, name: &str, file: Option<u64>, default: u64, range: std::ops::RangeInclusive<u64>| {
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
        Self {
            enabled: enabled.unwrap_or(defaults.enabled),
            hook,
            // The ranges above keep both within u32.
            max_per_run: max_per_run as u32,
            max_attempts: max_attempts as u32,
            interval_secs,
        }
    }
}
