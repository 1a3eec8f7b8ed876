//! The configuration file's shape as serde reads it: every field optional, unknown keys
//! refused. The sections in `github.rs`, `slack.rs`, `backends.rs` and `edge.rs` turn these
//! into the typed settings, applying the environment and naming every problem.

use super::routes;
use serde::Deserialize;
use serde_yaml_ng::Value as Yaml;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) integrations: BTreeMap<String, Yaml>,
    pub(super) events: RawEvents,
    pub(super) queue: RawQueue,
    pub(super) api: RawApi,
    pub(super) server: RawServer,
    pub(super) webhooks: RawWebhooks,
    pub(super) routes: Vec<routes::RawRoute>,
    #[serde(deserialize_with = "lenient::bool")]
    pub(super) default_routes: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawGithub {
    #[serde(deserialize_with = "lenient::bool")]
    pub(super) enabled: Option<bool>,
    pub(super) token: Option<String>,
    pub(super) webhook_secret: Option<String>,
    pub(super) webhook_secret_previous: Option<String>,
    pub(super) base_url: Option<String>,
    pub(super) app_id: Option<Yaml>,
    pub(super) private_key: Option<String>,
    pub(super) installation_id: Option<Yaml>,
    #[serde(deserialize_with = "lenient::number")]
    pub(super) requests_per_second: Option<u32>,
    #[serde(deserialize_with = "lenient::number")]
    pub(super) timeout_ms: Option<u64>,
    pub(super) redelivery: RawRedelivery,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawRedelivery {
    #[serde(deserialize_with = "lenient::bool")]
    pub(super) enabled: Option<bool>,
    pub(super) hook: Option<String>,
    #[serde(deserialize_with = "lenient::number")]
    pub(super) max_per_run: Option<u32>,
    #[serde(deserialize_with = "lenient::number")]
    pub(super) max_attempts: Option<u32>,
    #[serde(deserialize_with = "lenient::number")]
    pub(super) interval_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawSlack {
    #[serde(deserialize_with = "lenient::bool")]
    pub(super) enabled: Option<bool>,
    pub(super) bot_token: Option<String>,
    pub(super) signing_secret: Option<String>,
    pub(super) base_url: Option<String>,
    pub(super) notify_channel: Option<String>,
    pub(super) response_url_base: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawEvents {
    pub(super) provider: Option<String>,
    pub(super) redis: RawRedis,
    pub(super) subscribe: Option<Vec<String>>,
    pub(super) inbox: RawInbox,
    pub(super) bridge: RawBridge,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawInbox {
    pub(super) stream: Option<String>,
    #[serde(deserialize_with = "lenient::number")]
    pub(super) max_len: Option<usize>,
    #[serde(deserialize_with = "lenient::number")]
    pub(super) claim_idle_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawBridge {
    #[serde(deserialize_with = "lenient::bool")]
    pub(super) enabled: Option<bool>,
    #[serde(deserialize_with = "lenient::number")]
    pub(super) listen_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawRedis {
    pub(super) addr: Option<String>,
    #[serde(deserialize_with = "lenient::number")]
    pub(super) db: Option<u32>,
    pub(super) url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawQueue {
    pub(super) url: Option<String>,
    pub(super) send: Option<String>,
    pub(super) retry_seconds: Option<Vec<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawApi {
    pub(super) token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) addr: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawWebhooks {
    #[serde(deserialize_with = "lenient::number")]
    pub(super) max_body_bytes: Option<usize>,
}

/// Settings written as `${VAR}` arrive as strings: typed fields accept `"true"` and `"5"`.
pub(super) mod lenient {
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
