//! Reading one setting: the environment over the file, blanks as unset, and a named
//! [`Problem`] for a value that cannot be used.

use super::{Env, Problem};
use crate::model::secret::Secret;
use serde_yaml_ng::Value as Yaml;

pub(super) fn nonempty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

pub(super) fn secret(s: Option<String>) -> Option<Secret> {
    s.and_then(Secret::non_empty)
}

pub(super) fn check_url(key: &str, url: &str, fix: &str, problems: &mut Vec<Problem>) {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.split("://").nth(1).is_some_and(|h| !h.is_empty());
    if !ok {
        let shown = crate::backends::http_client::redact_url(url, true);
        problems.push(Problem { key: key.to_owned(), message: format!("`{shown}` is not an http(s) URL; {fix}") });
    }
}

/// An id given as a number or a numeric string (env interpolation yields strings).
pub(super) fn id(key: &str, raw: Option<Yaml>, problems: &mut Vec<Problem>) -> Option<u64> {
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

pub(super) fn section<T: Default + serde::de::DeserializeOwned>(
    name: &str,
    raw: Option<Yaml>,
    problems: &mut Vec<Problem>,
) -> T {
    match raw {
        None | Some(Yaml::Null) => T::default(),
        Some(v) => serde_yaml_ng::from_value(v).unwrap_or_else(|e| {
            problems.push(Problem { key: format!("integrations.{name}"), message: e.to_string() });
            T::default()
        }),
    }
}

/// A whole number from the environment, or the file's; a malformed variable is named.
pub(super) fn env_number<T: std::str::FromStr>(
    var: &str,
    key: &str,
    file: Option<T>,
    env: Env<'_>,
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
