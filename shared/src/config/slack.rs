//! `integrations.slack`: the bot token, the signing secret, the API base URL and the
//! notification channel. The environment (`SLACK_*`) overrides the file.

use super::fields::{check_url, nonempty, secret};
use super::raw::RawSlack;
use super::{DEFAULT_NOTIFY_CHANNEL, DEFAULT_RESPONSE_URL_BASE, DEFAULT_SLACK_API_URL, Env, Problem};
use crate::model::secret::Secret;

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

impl SlackConfig {
    /// Resolve the section, pushing a problem for every bad key.
    pub(super) fn resolve(sl: RawSlack, env: Env<'_>, problems: &mut Vec<Problem>) -> Self {
        let e = |name: &str| nonempty(env(name));
        let slack = Self {
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
        let slack = Self { enabled: sl.enabled.unwrap_or(slack.bot_token.is_some()), ..slack };
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
        slack
    }
}
