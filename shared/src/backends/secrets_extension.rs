//! Secrets kept in AWS Secrets Manager or SSM Parameter Store instead of plain environment
//! variables, read through the AWS Parameters and Secrets Lambda Extension's local HTTP
//! endpoint: no AWS SDK, one request per secret, once per instance.
//!
//! A variable whose value is a reference is replaced by what the extension returns before the
//! configuration is read:
//! - `ssm:<parameter name>`: the parameter's value (SecureStrings decrypted);
//! - `secretsmanager:<secret id or ARN>`: the secret's string;
//! - `secretsmanager:<secret id or ARN>#<key>`: one string field of a JSON secret, so that one
//!   secret can hold a set of values (the stack's `{"current": ..., "previous": ...}`).
//!
//! A value that resolves to the empty string leaves the variable unset: the stack creates its
//! provider secrets empty, and an integration without credentials is off, not misconfigured.
//! Without any reference nothing is requested.
//!
//! AWS documents the extension as callable only in the INVOKE phase: during INIT it may not be
//! listening yet, or may answer that it is not ready. So the caller resolves on the first
//! invocation ([`crate::edge::lambda`]), and a not-ready answer is retried with a short backoff
//! for up to [`READY_WAIT`] before it counts as a failure.

use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;

const SSM: &str = "ssm:";
const SECRETS_MANAGER: &str = "secretsmanager:";
/// The extension's port unless `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` says otherwise.
const DEFAULT_PORT: &str = "2773";
/// How long a not-ready extension is waited for, in all, before the read fails.
const READY_WAIT: Duration = Duration::from_secs(4);

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The reason names the variable and the reference, never a value.
    #[error("{variable} ({reference}): {reason}")]
    Fetch { variable: String, reference: String, reason: String },
}

#[derive(Deserialize)]
struct ParameterAnswer {
    #[serde(rename = "Parameter")]
    parameter: ParameterValue,
}

#[derive(Deserialize)]
struct ParameterValue {
    #[serde(rename = "Value")]
    value: String,
}

#[derive(Deserialize)]
struct SecretAnswer {
    #[serde(rename = "SecretString")]
    secret_string: Option<String>,
}

/// Whether any variable of `env` is a reference (and so needs the extension).
pub fn has_references<'a>(mut values: impl Iterator<Item = &'a String>) -> bool {
    values.any(|v| is_reference(v))
}

fn is_reference(value: &str) -> bool {
    value.starts_with(SSM) || value.starts_with(SECRETS_MANAGER)
}

/// What one reference names: the extension's path and query, and a JSON key to pick.
#[derive(Debug, PartialEq, Eq, Hash, Clone)]
struct Source {
    ssm: bool,
    id: String,
}

fn parse(reference: &str) -> Option<(Source, Option<String>)> {
    if let Some(name) = reference.strip_prefix(SSM) {
        return Some((Source { ssm: true, id: name.to_owned() }, None));
    }
    let rest = reference.strip_prefix(SECRETS_MANAGER)?;
    // A secret's name or ARN never holds `#`, so the last one starts the key.
    Some(match rest.rsplit_once('#') {
        Some((id, key)) => (Source { ssm: false, id: id.to_owned() }, Some(key.to_owned())),
        None => (Source { ssm: false, id: rest.to_owned() }, None),
    })
}

/// Why one attempt did not return a value.
enum Failure {
    /// Not listening yet, or said it is not ready: worth waiting for.
    NotReady(String),
    Final(String),
}

async fn fetch_once(http: &reqwest::Client, port: &str, token: &str, source: &Source) -> Result<String, Failure> {
    let (path, name) = if source.ssm {
        ("systemsmanager/parameters/get", ("name", source.id.as_str()))
    } else {
        ("secretsmanager/get", ("secretId", source.id.as_str()))
    };
    let mut url = reqwest::Url::parse(&format!("http://127.0.0.1:{port}/{path}"))
        .map_err(|_| Failure::Final(format!("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT `{port}` is not a port")))?;
    url.query_pairs_mut().append_pair(name.0, name.1);
    if source.ssm {
        url.query_pairs_mut().append_pair("withDecryption", "true");
    }
    let resp = http.get(url).header("X-Aws-Parameters-Secrets-Token", token).send().await.map_err(|e| {
        let why = format!(
            "the Parameters and Secrets extension did not answer ({})",
            crate::backends::http_client::transport_failure(&e)
        );
        if e.is_connect() { Failure::NotReady(why) } else { Failure::Final(why) }
    })?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|_| Failure::Final("the extension's answer was cut short".into()))?;
    if !status.is_success() {
        let why = format!("the extension answered HTTP {}", status.as_u16());
        // Its answer while it starts: "not ready to serve traffic, please wait".
        let starting = String::from_utf8_lossy(&bytes).to_ascii_lowercase().contains("not ready");
        return Err(if starting || status.as_u16() == 503 { Failure::NotReady(why) } else { Failure::Final(why) });
    }
    let value = if source.ssm {
        serde_json::from_slice::<ParameterAnswer>(&bytes).map(|a| a.parameter.value).ok()
    } else {
        serde_json::from_slice::<SecretAnswer>(&bytes).ok().and_then(|a| a.secret_string)
    };
    value.ok_or_else(|| Failure::Final("the extension's answer holds no value".into()))
}

/// One secret's value, waiting out a not-ready extension for up to `wait`.
async fn fetch(
    http: &reqwest::Client,
    port: &str,
    token: &str,
    source: &Source,
    wait: Duration,
) -> Result<String, String> {
    let give_up = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(5);
    loop {
        match fetch_once(http, port, token, source).await {
            Ok(v) => return Ok(v),
            Err(Failure::Final(why)) => return Err(why),
            Err(Failure::NotReady(why)) => {
                if tokio::time::Instant::now() + pause > give_up {
                    return Err(format!("{why}, still after {} ms", wait.as_millis()));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
        }
    }
}

fn pick(whole: &str, key: Option<&str>) -> Result<String, String> {
    let Some(key) = key else { return Ok(whole.to_owned()) };
    let fields: HashMap<String, serde_json::Value> = serde_json::from_str(whole)
        .map_err(|_| format!("the secret is not a JSON object, so it has no key `{key}`"))?;
    match fields.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Null) | None => Ok(String::new()),
        Some(_) => Err(format!("the secret's `{key}` is not a string")),
    }
}

/// `env` with every reference replaced by its value, and removed where that value is empty.
pub async fn resolve(mut env: HashMap<String, String>) -> Result<HashMap<String, String>, SecretsError> {
    let mut wanted: Vec<(String, String)> =
        env.iter().filter(|(_, v)| is_reference(v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    if wanted.is_empty() {
        return Ok(env);
    }
    wanted.sort();
    let port = env.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT").cloned().unwrap_or_else(|| DEFAULT_PORT.into());
    // The extension authenticates its caller by the function's own session token.
    let token = env.get("AWS_SESSION_TOKEN").cloned().unwrap_or_default();
    let http = crate::backends::http_client::builder().timeout(Duration::from_secs(2)).build().unwrap_or_default();
    // One request per secret, however many of its keys are read.
    let mut fetched: HashMap<Source, String> = HashMap::new();
    for (variable, reference) in wanted {
        let fail =
            |reason: String| SecretsError::Fetch { variable: variable.clone(), reference: reference.clone(), reason };
        let (source, key) = parse(&reference).ok_or_else(|| fail("not a reference".into()))?;
        let whole = match fetched.get(&source) {
            Some(v) => v.clone(),
            None => {
                let v = fetch(&http, &port, &token, &source, READY_WAIT).await.map_err(fail)?;
                fetched.insert(source.clone(), v.clone());
                v
            }
        };
        let value = pick(&whole, key.as_deref()).map_err(fail)?;
        if value.is_empty() {
            env.remove(&variable);
        } else {
            env.insert(variable, value);
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_prefixed_values_are_references() {
        assert!(is_reference("ssm:/aetherium/github-webhook-secret"));
        assert!(is_reference("secretsmanager:aetherium/slack"));
        assert!(!is_reference("whsec_abc"));
        assert!(!is_reference("https://ssm:8080"));
    }

    #[test]
    fn a_key_picks_one_field_of_a_json_secret() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:GithubWebhookSecret-AbCdEf";
        let (source, key) = parse(&format!("secretsmanager:{arn}#current")).expect("reference");
        assert_eq!((source.id.as_str(), key.as_deref()), (arn, Some("current")));
        let whole = r#"{"current": "s3cret", "previous": ""}"#;
        assert_eq!(pick(whole, Some("current")).as_deref(), Ok("s3cret"));
        assert_eq!(pick(whole, Some("previous")).as_deref(), Ok(""));
        assert_eq!(pick(whole, Some("absent")).as_deref(), Ok(""));
        assert_eq!(pick("plain", None).as_deref(), Ok("plain"));
        assert!(pick("plain", Some("current")).is_err_and(|e| e.contains("`current`") && !e.contains("plain")));
    }
}
