//! The SAM template: valid for `sam validate --lint`, and one function per function crate.

use serde_yaml_ng::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml");
    serde_yaml_ng::from_str(&text).expect("template.yaml parses")
}

#[test]
fn sam_validate_lint_is_clean() {
    let sam = std::env::var("SAM_CLI")
        .unwrap_or_else(|_| panic!("SAM_CLI is not set: run the suite with scripts/test, which installs aws-sam-cli"));
    let out = Command::new(&sam)
        .args(["validate", "--lint", "--template-file"])
        .arg(root().join("template.yaml"))
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {sam}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "sam validate --lint failed:\n{text}");
    assert!(text.contains("is a valid SAM Template"), "{text}");
}

#[test]
fn template_functions_and_function_crates_match_one_to_one() {
    let t = template();
    let resources = t["Resources"].as_mapping().expect("Resources");
    let mut binaries = BTreeSet::new();
    for (name, res) in resources {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        assert_eq!(res["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{name:?}");
        let bin =
            res["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap_or_else(|| panic!("{name:?} names no Binary"));
        assert!(binaries.insert(bin.to_owned()), "{bin} appears twice");
    }
    let crates: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .expect("functions/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!crates.is_empty());
    assert_eq!(binaries, crates, "template.yaml functions vs functions/*");

    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
}

#[test]
fn the_sample_config_in_the_repo_loads() {
    let path = root().join("config/aetherium.yaml");
    let path = path.to_str().expect("utf8").to_owned();
    let env = move |k: &str| match k {
        "AETHERIUM_CONFIG" => Some(path.clone()),
        "GITHUB_TOKEN" => Some("ghp_sample".into()),
        _ => None,
    };
    let config = aetherium::config::Config::load(&env).expect("the sample config is valid");
    assert!(config.github.enabled && config.slack.enabled);
    assert_eq!(config.github.token.as_ref().map(aetherium::Secret::expose), Some("ghp_sample"));
    assert_eq!(config.bus, aetherium::config::BusProvider::Memory);
}

#[test]
fn the_template_keeps_its_deploy_promises() {
    let t = template();
    let res = &t["Resources"];
    let functions: Vec<(&str, &Value)> = res
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(k, r)| (k.as_str().expect("name"), r))
        .collect();
    for (name, f) in &functions {
        let bin = f["Metadata"]["BuildProperties"]["Binary"].as_str().expect("binary");
        let auth = f["Properties"]["FunctionUrlConfig"]["AuthType"].as_str();
        let want = match bin {
            "github-webhook" | "slack-webhook" | "health" => Some("NONE"),
            "events" | "github-pr" | "logs-query" | "metrics" => Some("AWS_IAM"),
            "dispatcher" => None,
            other => panic!("unexpected function {other}"),
        };
        assert_eq!(auth, want, "{name}");
        // Every function has a log group with a retention.
        let logs = res.as_mapping().expect("map").values().any(|r| {
            r["Type"].as_str() == Some("AWS::Logs::LogGroup")
                && serde_yaml_ng::to_string(&r["Properties"]["LogGroupName"]).is_ok_and(|s| s.contains(name))
                && !r["Properties"]["RetentionInDays"].is_null()
        });
        assert!(logs, "{name} has a log group with a retention");
    }
    let dispatcher = functions.iter().find(|(n, _)| *n == "DispatcherFunction").expect("dispatcher").1;
    let timeout = dispatcher["Properties"]["Timeout"].as_u64().expect("timeout");
    let queue = &res["WorkQueue"]["Properties"];
    assert!(queue["VisibilityTimeout"].as_u64().expect("visibility") >= 6 * timeout);
    assert!(
        res["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"].as_u64()
            > queue["MessageRetentionPeriod"].as_u64()
    );
    assert!(queue["RedrivePolicy"]["maxReceiveCount"].as_u64().is_some());
    let work = &dispatcher["Properties"]["Events"]["Work"]["Properties"];
    assert_eq!(work["FunctionResponseTypes"][0].as_str(), Some("ReportBatchItemFailures"));

    // Secrets are NoEcho parameters, never defaults with a value.
    for (name, p) in t["Parameters"].as_mapping().expect("Parameters") {
        let name = name.as_str().expect("name");
        if ["Secret", "Token", "PrivateKey", "RedisUrl"].iter().any(|s| name.contains(s)) {
            assert_eq!(p["NoEcho"].as_bool(), Some(true), "{name} must be NoEcho");
            assert!(p["Default"].as_str().is_none_or(str::is_empty), "{name} has no secret default");
        }
    }
    for out in ["GithubWebhookUrl", "SlackRequestUrl", "EventsUrl", "GithubPrUrl", "HealthUrl", "DeadLetterQueueUrl"] {
        assert!(!t["Outputs"][out].is_null(), "output {out}");
    }
}

#[test]
fn the_slack_manifest_is_filled_with_the_deployed_url() {
    let url = "https://abcdefghij.lambda-url.us-east-1.on.aws/";
    let out = Command::new(root().join("scripts/slack-manifest"))
        .args(["--url", url])
        .output()
        .expect("run scripts/slack-manifest");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m: Value = serde_yaml_ng::from_slice(&out.stdout).expect("YAML manifest");
    let commands: Vec<&str> = m["features"]["slash_commands"]
        .as_sequence()
        .expect("commands")
        .iter()
        .filter_map(|c| c["command"].as_str())
        .collect();
    assert_eq!(commands, vec!["/aetherium-status", "/aetherium-vm-list", "/aetherium-task"]);
    for c in m["features"]["slash_commands"].as_sequence().expect("commands") {
        assert_eq!(c["url"].as_str(), Some(url));
    }
    assert_eq!(m["settings"]["event_subscriptions"]["request_url"].as_str(), Some(url));
    assert_eq!(m["settings"]["interactivity"]["request_url"].as_str(), Some(url));
    let events: Vec<&str> = m["settings"]["event_subscriptions"]["bot_events"]
        .as_sequence()
        .expect("events")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(events, vec!["app_mention", "message.channels"]);
    let scopes: Vec<&str> =
        m["oauth_config"]["scopes"]["bot"].as_sequence().expect("scopes").iter().filter_map(Value::as_str).collect();
    for s in ["chat:write", "commands", "im:write"] {
        assert!(scopes.contains(&s), "{s}");
    }
    let refused =
        Command::new(root().join("scripts/slack-manifest")).args(["--url", "http://insecure"]).output().expect("run");
    assert!(!refused.status.success());
}
