//! `server`, `api` and `webhooks`: where the local runner listens, the token of the internal
//! routes, how a function URL authenticates, and the largest body a webhook may send.

use super::fields::{nonempty, secret};
use super::raw::{RawApi, RawServer, RawWebhooks};
use super::{DEFAULT_ADDR, DEFAULT_MAX_BODY_BYTES, Env, Problem};
use crate::model::secret::Secret;
use std::net::SocketAddr;

/// The edge section, resolved.
#[derive(Debug, Clone)]
pub struct Edge {
    pub api_token: Option<Secret>,
    pub iam_url: bool,
    pub addr: SocketAddr,
    pub max_body_bytes: usize,
    /// Integrations whose health this function reads from the store instead of checking: it
    /// holds no credentials for them (`AETHERIUM_HEALTH_REMOTE`, `github,slack`).
    pub health_remote: Vec<String>,
    /// Running as a Lambda function (`AWS_LAMBDA_FUNCTION_NAME`), where in-memory state is
    /// one instance's only.
    pub in_lambda: bool,
}

impl Edge {
    /// Resolve the section, pushing a problem for every bad key.
    pub(super) fn resolve(
        server: RawServer,
        api: RawApi,
        webhooks: RawWebhooks,
        env: Env<'_>,
        problems: &mut Vec<Problem>,
    ) -> Self {
        let e = |name: &str| nonempty(env(name));
        let addr_text = e("AETHERIUM_ADDR").or(nonempty(server.addr)).unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let addr = addr_text.parse().unwrap_or_else(|_| {
            problems.push(Problem {
                key: "server.addr (AETHERIUM_ADDR)".into(),
                message: format!("`{addr_text}` is not an ip:port address such as 127.0.0.1:8080"),
            });
            DEFAULT_ADDR.parse().expect("the default address parses")
        });

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

        let max_body_bytes = webhooks.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if !(1024..=6 * 1024 * 1024).contains(&max_body_bytes) {
            problems.push(Problem {
                key: "webhooks.max_body_bytes".into(),
                message: "must be between 1024 and 6291456 (Lambda's request limit)".into(),
            });
        }
        let mut health_remote = Vec::new();
        for name in e("AETHERIUM_HEALTH_REMOTE").iter().flat_map(|v| v.split(',')).map(str::trim) {
            match name {
                "github" | "slack" => health_remote.push(name.to_owned()),
                "" => {}
                other => problems.push(Problem {
                    key: "AETHERIUM_HEALTH_REMOTE".into(),
                    message: format!(
                        "`{other}` is not an integration whose health is shared; use github, slack or both"
                    ),
                }),
            }
        }
        let in_lambda = e("AWS_LAMBDA_FUNCTION_NAME").is_some();
        Self {
            api_token: secret(e("AETHERIUM_API_TOKEN").or(api.token)),
            iam_url,
            addr,
            max_body_bytes,
            health_remote,
            in_lambda,
        }
    }
}
