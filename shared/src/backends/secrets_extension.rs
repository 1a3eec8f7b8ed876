//! Secrets kept in AWS Secrets Manager or SSM Parameter Store instead of plain environment
//! variables, read through the AWS Parameters and Secrets Lambda Extension's local HTTP
//! endpoint: no AWS SDK, one request per secret, once per cold start.
//!
//! A variable whose value is `ssm:<parameter name>` or `secretsmanager:<secret id>` is replaced
//! by what the extension returns before the configuration is read. Without such a value
//! nothing is requested, so a function that keeps its secrets in its environment pays nothing.

use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;

const SSM: &str = "ssm:";
const SECRETS_MANAGER: &str = "secretsmanager:";
/// The extension's port unless `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` says otherwise.
const DEFAULT_PORT: &str = "2773";

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

fn is_reference(value: &str) -> bool {
    value.starts_with(SSM) || value.starts_with(SECRETS_MANAGER)
}

/// `env` with every `ssm:` / `secretsmanager:` reference replaced by its value.
pub async fn resolve(mut env: HashMap<String, String>) -> Result<HashMap<String, String>, SecretsError> {
    let wanted: Vec<(String, String)> =
        env.iter().filter(|(_, v)| is_reference(v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    if wanted.is_empty() {
        return Ok(env);
    }
    let port = env.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT").cloned().unwrap_or_else(|| DEFAULT_PORT.into());
    // The extension authenticates its caller by the function's own session token.
    let token = env.get("AWS_SESSION_TOKEN").cloned().unwrap_or_default();
    let http = crate::backends::http_client::builder().timeout(Duration::from_secs(2)).build().unwrap_or_default();
    for (variable, reference) in wanted {
        let fail =
            |reason: String| SecretsError::Fetch { variable: variable.clone(), reference: reference.clone(), reason };
        let (path, name) = match reference.strip_prefix(SSM) {
            Some(name) => ("systemsmanager/parameters/get", ("name", name)),
            None => ("secretsmanager/get", ("secretId", reference.trim_start_matches(SECRETS_MANAGER))),
        };
        let mut url = reqwest::Url::parse(&format!("http://127.0.0.1:{port}/{path}"))
            .map_err(|_| fail(format!("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT `{port}` is not a port")))?;
        url.query_pairs_mut().append_pair(name.0, name.1);
        if path.starts_with("systemsmanager") {
            url.query_pairs_mut().append_pair("withDecryption", "true");
        }
        let resp = http.get(url).header("X-Aws-Parameters-Secrets-Token", &token).send().await.map_err(|e| {
            fail(format!(
                "the Parameters and Secrets extension did not answer ({})",
                crate::backends::http_client::transport_failure(&e)
            ))
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(fail(format!("the extension answered HTTP {}", status.as_u16())));
        }
        let bytes = resp.bytes().await.map_err(|_| fail("the extension's answer was cut short".into()))?;
        let value = if path.starts_with("systemsmanager") {
            serde_json::from_slice::<ParameterAnswer>(&bytes).map(|a| a.parameter.value).ok()
        } else {
            serde_json::from_slice::<SecretAnswer>(&bytes).ok().and_then(|a| a.secret_string)
        };
        let value = value.ok_or_else(|| fail("the extension's answer holds no value".into()))?;
        env.insert(variable, value);
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::is_reference;

    #[test]
    fn only_prefixed_values_are_references() {
        assert!(is_reference("ssm:/aetherium/github-webhook-secret"));
        assert!(is_reference("secretsmanager:aetherium/slack"));
        assert!(!is_reference("whsec_abc"));
        assert!(!is_reference("https://ssm:8080"));
    }
}
