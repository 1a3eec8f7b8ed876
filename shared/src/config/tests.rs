use super::*;
use crate::model::repo::RepoName;
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).cloned()
}

const GUIDE: &str = r#"
integrations:
  github:
    enabled: true
    token: ${GITHUB_TOKEN}
    webhook_secret: ${GITHUB_WEBHOOK_SECRET}
    base_url: https://api.github.com

  slack:
    enabled: true
    bot_token: ${SLACK_BOT_TOKEN}
    signing_secret: ${SLACK_SIGNING_SECRET}
    base_url: https://slack.com/api

  # Custom integration
  myintegration:
    enabled: true
    api_key: ${MY_INTEGRATION_KEY}
    base_url: https://api.example.com

events:
  provider: redis
  redis:
    addr: localhost:6379
    db: 1
"#;

#[test]
fn the_guides_full_config_loads() {
    let env = env_of(&[
        ("GITHUB_TOKEN", "ghp_token"),
        ("GITHUB_WEBHOOK_SECRET", "whsec"),
        ("SLACK_BOT_TOKEN", "xoxb-1"),
        ("SLACK_SIGNING_SECRET", "signing"),
        ("MY_INTEGRATION_KEY", "k-123"),
    ]);
    let c = Config::from_yaml(GUIDE, "guide.yaml", &env).expect("valid");
    assert!(c.github.enabled && c.slack.enabled);
    assert_eq!(c.github.token.as_ref().map(Secret::expose), Some("ghp_token"));
    assert_eq!(c.github.webhook_secret.as_ref().map(Secret::expose), Some("whsec"));
    assert_eq!(c.slack.signing_secret.as_ref().map(Secret::expose), Some("signing"));
    assert_eq!(c.bus, BusProvider::Redis);
    assert_eq!(c.redis_url.as_ref().map(Secret::expose), Some("redis://localhost:6379/1"));
    let custom = &c.custom["myintegration"];
    assert!(custom.enabled);
    assert_eq!(custom.options["api_key"], "k-123");
    assert_eq!(custom.options["base_url"], "https://api.example.com");
    assert!(c.queue_url.is_none());
    assert_eq!(c.addr.to_string(), "127.0.0.1:8080");
}

#[test]
fn environment_overrides_the_file() {
    let env = env_of(&[
        ("GITHUB_API_URL", "https://ghe.example.com/api/v3"),
        ("REDIS_URL", "redis://127.0.0.1:7000/2"),
        ("AETHERIUM_QUEUE_URL", "http://127.0.0.1:5000/123456789012/q"),
        ("AETHERIUM_ADDR", "127.0.0.1:9999"),
        ("AETHERIUM_API_TOKEN", "api-token"),
    ]);
    let c = Config::from_yaml(GUIDE, "guide.yaml", &env).expect("valid");
    assert_eq!(c.github.base_url, "https://ghe.example.com/api/v3");
    assert_eq!(c.redis_url.as_ref().map(Secret::expose), Some("redis://127.0.0.1:7000/2"));
    assert_eq!(c.queue_url.as_deref(), Some("http://127.0.0.1:5000/123456789012/q"));
    assert_eq!(c.addr.port(), 9999);
    assert_eq!(c.api_token.as_ref().map(Secret::expose), Some("api-token"));
}

#[test]
fn no_file_and_no_env_is_the_embedded_default() {
    let c = Config::load(&env_of(&[])).expect("valid");
    assert_eq!(c.bus, BusProvider::Memory);
    assert!(c.redis_url.is_none() && c.queue_url.is_none());
    assert!(!c.github.enabled && !c.slack.enabled);
    assert_eq!(c.github.base_url, DEFAULT_GITHUB_API_URL);
    assert_eq!(c.slack.notify_channel, "#vms");
}

#[test]
fn credentials_in_the_environment_enable_an_integration() {
    let c = Config::load(&env_of(&[("SLACK_BOT_TOKEN", "xoxb-1")])).expect("valid");
    assert!(c.slack.enabled);
    assert!(!c.github.enabled);
    let off =
        Config::from_yaml("integrations:\n  slack:\n    enabled: false\n", "t", &env_of(&[("SLACK_BOT_TOKEN", "x")]))
            .expect("valid");
    assert!(!off.slack.enabled);
}

#[test]
fn every_problem_is_named_with_its_key_and_fix() {
    let yaml = r#"
integrations:
  github:
    base_url: ftp://example.com
    app_id: twelve
  slack:
    base_url: "${SLACK_HOST"
events:
  provider: kafka
server:
  addr: localhost
webhooks:
  max_body_bytes: 10
"#;
    let err = Config::from_yaml(yaml, "bad.yaml", &env_of(&[])).expect_err("invalid");
    let ConfigError::Invalid(problems) = &err else { panic!("{err}") };
    let text = err.to_string();
    for key in [
        "integrations.github.base_url",
        "integrations.github.app_id",
        "integrations.slack.base_url",
        "events.provider",
        "server.addr",
        "webhooks.max_body_bytes",
    ] {
        assert!(problems.iter().any(|p| p.key.starts_with(key)), "{key} not named in:\n{text}");
    }
    assert!(text.contains("use redis or memory"), "{text}");
}

#[test]
fn a_github_app_needs_both_id_and_key() {
    let err = Config::load(&env_of(&[("GITHUB_APP_ID", "12345")])).expect_err("key missing");
    let text = err.to_string();
    assert!(text.contains("GITHUB_APP_PRIVATE_KEY"), "{text}");
    let ok =
        Config::load(&env_of(&[("GITHUB_APP_ID", "12345"), ("GITHUB_APP_PRIVATE_KEY", "-----BEGIN")])).expect("valid");
    assert_eq!(ok.github.app_id, Some(12345));
    assert!(ok.github.enabled);
}

#[test]
fn a_typo_in_a_known_section_is_named() {
    let err = Config::from_yaml("integrations:\n  github:\n    tokn: x\n", "t", &env_of(&[])).expect_err("unknown key");
    let text = err.to_string();
    assert!(text.contains("integrations.github") && text.contains("tokn"), "{text}");
}

#[test]
fn an_unknown_top_level_key_is_named() {
    let err = Config::from_yaml("integration:\n  github: {}\n", "t", &env_of(&[])).expect_err("unknown key");
    let text = err.to_string();
    assert!(text.contains("integration") && text.contains("unknown field"), "{text}");
}

#[test]
fn redis_url_in_the_environment_beats_a_memory_provider_in_the_file() {
    let env = env_of(&[("REDIS_URL", "redis://127.0.0.1:7000/0")]);
    let c = Config::from_yaml("events:\n  provider: memory\n", "t", &env).expect("valid");
    assert_eq!(c.bus, BusProvider::Redis);
    let c = Config::from_yaml("events:\n  provider: memory\n", "t", &env_of(&[])).expect("valid");
    assert_eq!(c.bus, BusProvider::Memory);
}

#[test]
fn redis_provider_without_an_address_says_what_to_set() {
    let err = Config::from_yaml("events:\n  provider: redis\n", "t", &env_of(&[])).expect_err("no addr");
    assert!(err.to_string().contains("REDIS_URL"), "{err}");
}

#[test]
fn a_missing_file_is_named() {
    let err = Config::load(&env_of(&[("AETHERIUM_CONFIG", "/nonexistent/aetherium.yaml")])).expect_err("missing");
    assert!(err.to_string().contains("/nonexistent/aetherium.yaml"), "{err}");
}

#[test]
fn secrets_never_show_in_debug_output() {
    let env = env_of(&[
        ("GITHUB_TOKEN", "canary-gh-token"),
        ("GITHUB_WEBHOOK_SECRET", "canary-wh"),
        ("SLACK_SIGNING_SECRET", "canary-slack"),
        ("REDIS_URL", "redis://:canary-pass@127.0.0.1:6379/0"),
        ("AETHERIUM_API_TOKEN", "canary-api"),
    ]);
    let c = Config::load(&env).expect("valid");
    let shown = format!("{c:?}");
    assert!(!shown.contains("canary"), "{shown}");
}

#[test]
fn settings_from_variables_are_typed() {
    let yaml = "integrations:\n  github:\n    enabled: ${GH_ON}\n    requests_per_second: ${RPS:-7}\n  hook:\n    enabled: ${HOOK_ON:-false}\n";
    let c = Config::from_yaml(yaml, "t", &env_of(&[("GH_ON", "true")])).expect("valid");
    assert!(c.github.enabled);
    assert_eq!(c.github.requests_per_second, 7);
    assert!(!c.custom["hook"].enabled);
    let err = Config::from_yaml(yaml, "t", &env_of(&[("GH_ON", "yes")])).expect_err("not a bool");
    assert!(err.to_string().contains("`yes` is not true or false"), "{err}");
}

#[test]
fn the_embedded_config_is_the_sample_and_loads_as_deployed() {
    let sample = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/aetherium.yaml"))
        .expect("config/aetherium.yaml");
    assert_eq!(super::EMBEDDED, sample, "AETHERIUM_EMBED_CONFIG (.cargo/config.toml) compiles the sample in");
    let env = env_of(&[("AETHERIUM_CONFIG", "embedded"), ("REDIS_URL", "rediss://cache.example:6379/0")]);
    let c = Config::load(&env).expect("the embedded config loads with no secret set");
    assert!(c.routes.iter().any(|r| r.name == "pr-test-vm"), "{:?}", c.routes);
    assert_eq!(c.bus, BusProvider::Redis, "the stack's REDIS_URL beats the sample's memory provider");
    assert!(c.is_disabled("audit-hook"), "its route is inactive until AUDIT_WEBHOOK_ENABLED is set");
}

#[test]
fn redelivery_defaults_and_overrides() {
    let c = Config::load(&env_of(&[("GITHUB_TOKEN", "t")])).expect("valid");
    assert_eq!(c.github.redelivery, RedeliveryConfig::default());
    assert_eq!((c.github.redelivery.max_per_run, c.github.redelivery.max_attempts), (100, 3));
    assert_eq!(c.github.redelivery.interval_secs, 300);

    let yaml = "integrations:\n  github:\n    redelivery:\n      hook: octo/hello-world#123\n      max_per_run: 10\n      max_attempts: 5\n      interval_secs: 60\n";
    let c = Config::from_yaml(yaml, "t", &env_of(&[])).expect("valid");
    let r = &c.github.redelivery;
    assert_eq!(r.hook, Some(HookRef::Repo { repo: RepoName::parse("octo/hello-world").expect("name"), id: 123 }));
    assert_eq!((r.max_per_run, r.max_attempts, r.interval_secs), (10, 5, 60));
    assert_eq!(
        r.hook.as_ref().map(HookRef::deliveries_path).as_deref(),
        Some("/repos/octo/hello-world/hooks/123/deliveries")
    );

    let env = env_of(&[
        ("GITHUB_REDELIVERY_HOOK", "org:my-org#9"),
        ("GITHUB_REDELIVERY_ENABLED", "false"),
        ("GITHUB_REDELIVERY_MAX_PER_RUN", "7"),
        ("GITHUB_REDELIVERY_INTERVAL_SECS", "2"),
    ]);
    let c = Config::from_yaml(yaml, "t", &env).expect("valid");
    let r = &c.github.redelivery;
    assert_eq!(r.hook, Some(HookRef::Org { org: "my-org".into(), id: 9 }));
    assert_eq!(r.hook.as_ref().map(HookRef::deliveries_path).as_deref(), Some("/orgs/my-org/hooks/9/deliveries"));
    assert!(!r.enabled);
    assert_eq!((r.max_per_run, r.max_attempts, r.interval_secs), (7, 5, 2));
}

#[test]
fn a_bad_redelivery_setting_is_named() {
    for (var, value, key) in [
        ("GITHUB_REDELIVERY_HOOK", "octo/hello#abc", "integrations.github.redelivery.hook"),
        ("GITHUB_REDELIVERY_HOOK", "../etc#1", "integrations.github.redelivery.hook"),
        ("GITHUB_REDELIVERY_HOOK", "org:#1", "integrations.github.redelivery.hook"),
        ("GITHUB_REDELIVERY_ENABLED", "yes", "integrations.github.redelivery.enabled"),
        ("GITHUB_REDELIVERY_MAX_PER_RUN", "0", "integrations.github.redelivery.max_per_run"),
        ("GITHUB_REDELIVERY_MAX_ATTEMPTS", "1", "integrations.github.redelivery.max_attempts"),
        ("GITHUB_REDELIVERY_INTERVAL_SECS", "soon", "integrations.github.redelivery.interval_secs"),
    ] {
        let err = Config::load(&env_of(&[(var, value)])).expect_err(value);
        let ConfigError::Invalid(problems) = &err else { panic!("{err}") };
        assert!(problems.iter().any(|p| p.key.starts_with(key) && p.key.contains(var)), "{var}={value}: {err}");
    }
    let err = Config::from_yaml("integrations:\n  github:\n    redelivery:\n      hok: a/b#1\n", "t", &env_of(&[]))
        .expect_err("unknown key");
    assert!(err.to_string().contains("hok"), "{err}");
}

#[test]
fn the_sqs_send_path_is_signed_unless_set_to_sdk() {
    use crate::backends::queue::SendPath;
    assert_eq!(Config::load(&env_of(&[])).expect("valid").sqs_send, SendPath::Signed);
    let file = Config::from_yaml("queue:\n  send: sdk\n", "t", &env_of(&[])).expect("valid");
    assert_eq!(file.sqs_send, SendPath::Sdk);
    let env = Config::from_yaml("queue:\n  send: sdk\n", "t", &env_of(&[("AETHERIUM_SQS_SEND", "signed")]));
    assert_eq!(env.expect("valid").sqs_send, SendPath::Signed, "the environment wins");
    let err = Config::load(&env_of(&[("AETHERIUM_SQS_SEND", "fast")])).expect_err("unknown path");
    assert!(err.to_string().contains("queue.send (AETHERIUM_SQS_SEND)"), "{err}");
}

#[test]
fn the_retry_schedule_is_the_default_unless_set_and_a_bad_one_is_named() {
    use crate::backends::queue::RetrySchedule;
    use std::time::Duration;
    let secs = |s: &[u64]| RetrySchedule::new(&s.iter().map(|s| Duration::from_secs(*s)).collect::<Vec<_>>());
    assert_eq!(Config::load(&env_of(&[])).expect("valid").queue_retry, RetrySchedule::default());
    let file = Config::from_yaml("queue:\n  retry_seconds: [1, 2, 4]\n", "t", &env_of(&[])).expect("valid");
    assert_eq!(Some(file.queue_retry), secs(&[1, 2, 4]));
    let env = Config::from_yaml(
        "queue:\n  retry_seconds: [1, 2, 4]\n",
        "t",
        &env_of(&[("AETHERIUM_QUEUE_RETRY_SECONDS", "3, 9")]),
    );
    assert_eq!(Some(env.expect("valid").queue_retry), secs(&[3, 9]), "the environment wins");
    for bad in ["soon", "5,1", "0", "50000", ""] {
        let loaded = Config::load(&env_of(&[("AETHERIUM_QUEUE_RETRY_SECONDS", bad)]));
        if bad.is_empty() {
            assert!(loaded.is_ok(), "an empty variable is unset");
            continue;
        }
        let err = loaded.expect_err(bad);
        assert!(err.to_string().contains("queue.retry_seconds (AETHERIUM_QUEUE_RETRY_SECONDS)"), "{bad}: {err}");
    }
}
