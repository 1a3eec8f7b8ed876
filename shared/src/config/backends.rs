//! `events` and `queue`: which event bus and store (memory or Redis) and which work queue
//! (memory or SQS). `REDIS_URL` and `AETHERIUM_QUEUE_URL` override the file.

use super::fields::{check_url, nonempty};
use super::raw::{RawEvents, RawQueue};
use super::{Env, Problem};
use crate::backends::queue::{RetrySchedule, SendPath};
use crate::model::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusProvider {
    Memory,
    Redis,
}

/// The backends section, resolved.
#[derive(Debug, Clone)]
pub struct Backends {
    pub bus: BusProvider,
    /// Set when the bus (and so the store) is Redis. Secret: the URL may hold a password.
    pub redis_url: Option<Secret>,
    /// Set for SQS; `None` is the in-memory queue.
    pub queue_url: Option<String>,
    /// How SQS `SendMessage` is sent: `signed` (the default) or `sdk`.
    pub sqs_send: SendPath,
    /// The delays of a failed record's retries (`queue.retry_seconds`).
    pub retry: RetrySchedule,
}

impl Backends {
    /// Resolve the section, pushing a problem for every bad key.
    pub(super) fn resolve(events: RawEvents, queue: RawQueue, env: Env<'_>, problems: &mut Vec<Problem>) -> Self {
        let e = |name: &str| nonempty(env(name));
        // Event bus and store: REDIS_URL wins; else the file's events.redis.
        // The environment wins over the file, a provider choice included: REDIS_URL means Redis
        // even where the file says `provider: memory` (the sample does, for a first run).
        let redis_from_env = e("REDIS_URL");
        let from_env = redis_from_env.is_some();
        let redis_url = redis_from_env.or(nonempty(events.redis.url)).or_else(|| {
            nonempty(events.redis.addr).map(|addr| format!("redis://{addr}/{}", events.redis.db.unwrap_or(0)))
        });
        let bus = match nonempty(events.provider).as_deref() {
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
        // The stack's cache: the address in REDIS_URL, the credentials from the secret store
        // apart (REDIS_USERNAME, REDIS_PASSWORD), so no password sits in the configuration.
        let redis_url = match (redis_url, e("REDIS_PASSWORD")) {
            (Some(url), Some(password)) => Some(with_credentials(&url, e("REDIS_USERNAME").as_deref(), &password)),
            (url, _) => url,
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

        let queue_url = e("AETHERIUM_QUEUE_URL").or(nonempty(queue.url));
        if let Some(url) = &queue_url {
            check_url(
                "queue.url (AETHERIUM_QUEUE_URL)",
                url,
                "use the queue URL that `aws sqs get-queue-url` prints",
                problems,
            );
        }
        let sqs_send = match e("AETHERIUM_SQS_SEND").or(nonempty(queue.send)).as_deref() {
            None | Some("signed") => SendPath::Signed,
            Some("sdk") => SendPath::Sdk,
            Some(other) => {
                problems.push(Problem {
                    key: "queue.send (AETHERIUM_SQS_SEND)".into(),
                    message: format!("`{other}` is not a send path; use signed or sdk"),
                });
                SendPath::Signed
            }
        };
        let retry = retry_schedule(e("AETHERIUM_QUEUE_RETRY_SECONDS"), queue.retry_seconds, problems);
        Self { bus, redis_url: redis_url.map(Secret::new), queue_url, sqs_send, retry }
    }
}

/// `queue.retry_seconds` (`AETHERIUM_QUEUE_RETRY_SECONDS`, comma-separated): the delays of a
/// failed record's retries by receive, in whole seconds, as SQS sets a visibility timeout.
fn retry_schedule(env: Option<String>, file: Option<Vec<u64>>, problems: &mut Vec<Problem>) -> RetrySchedule {
    const KEY: &str = "queue.retry_seconds (AETHERIUM_QUEUE_RETRY_SECONDS)";
    let steps: Vec<u64> = match (env, file) {
        (Some(env), _) => match env.split(',').map(|s| s.trim().parse::<u64>()).collect() {
            Ok(steps) => steps,
            Err(_) => {
                let message = format!("`{env}` is not a comma-separated list of whole seconds, for example 6,15,60");
                problems.push(Problem { key: KEY.into(), message });
                return RetrySchedule::default();
            }
        },
        (None, Some(file)) => file,
        (None, None) => return RetrySchedule::default(),
    };
    let durations: Vec<std::time::Duration> = steps.iter().map(|s| std::time::Duration::from_secs(*s)).collect();
    RetrySchedule::new(&durations).unwrap_or_else(|| {
        problems.push(Problem {
            key: KEY.into(),
            message:
                "must list at least one delay, each 1 to 43200 seconds (SQS's cap), none shorter than the one before"
                    .into(),
        });
        RetrySchedule::default()
    })
}

/// `scheme://user:password@rest` from `scheme://rest` (any userinfo it had is replaced), each
/// part percent-encoded. A URL without a scheme is returned as it is, for the check to refuse.
fn with_credentials(url: &str, user: Option<&str>, password: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{scheme}://{}:{}@{host}{path}", encode(user.unwrap_or("")), encode(password))
}

fn encode(part: &str) -> String {
    part.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::with_credentials;

    #[test]
    fn credentials_join_the_address_encoded() {
        assert_eq!(
            with_credentials("rediss://cache.example:6379/0", Some("aetherium"), "p@ss:w/rd"),
            "rediss://aetherium:p%40ss%3Aw%2Frd@cache.example:6379/0"
        );
        assert_eq!(with_credentials("redis://old:x@h:1/0", None, "pw"), "redis://:pw@h:1/0");
        assert_eq!(with_credentials("h:1", Some("u"), "pw"), "h:1");
    }
}
