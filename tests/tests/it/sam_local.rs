//! The deployed shape without AWS: each function binary started with exactly the environment
//! `sam local invoke` gives it (aws-sam-cli's own resolver over template.yaml, with the env
//! file samconfig.toml names; scripts/sam-local-env), against the Lambda Runtime API emulator.

use aetherium_tests::runtime_api::{Function, Outcome, RuntimeApi};
use aetherium_tests::samples::{self, expected_status, fresh};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// Logical id → the environment SAM resolves for it.
fn sam_environment() -> BTreeMap<String, BTreeMap<String, String>> {
    let sam = std::env::var("SAM_CLI").expect("SAM_CLI names the venv's sam; run the suite with scripts/test");
    let python = std::path::Path::new(&sam).with_file_name("python");
    let root = aetherium_tests::fixtures::root();
    // A clean environment: SAM lets shell variables beat the template's values.
    let out = std::process::Command::new(python)
        .arg(root.join("scripts/sam-local-env"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", std::env::temp_dir())
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .expect("run scripts/sam-local-env");
    assert!(out.status.success(), "scripts/sam-local-env: {}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["env_file"], "deploy/sam-local-env.json", "samconfig.toml names the env file for sam local");
    serde_json::from_value(doc["functions"].clone()).expect("functions")
}

/// Logical id → binary, from the template's build metadata.
fn binaries() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(aetherium_tests::fixtures::root().join("template.yaml")).expect("template");
    let t: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("yaml");
    let resources = t["Resources"].as_mapping().expect("resources");
    resources
        .iter()
        .filter_map(|(id, r)| {
            let binary = r["Metadata"]["BuildProperties"]["Binary"].as_str()?;
            Some((id.as_str()?.to_owned(), binary.to_owned()))
        })
        .collect()
}

fn pairs(env: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn answer(outcome: &Outcome) -> (u16, Value) {
    let v = answer_json(outcome);
    (v["statusCode"].as_u64().unwrap_or(0) as u16, v)
}

fn answer_json(outcome: &Outcome) -> Value {
    let Outcome::Response(body) = outcome else { panic!("the function failed: {outcome:?}") };
    serde_json::from_str(body).expect("response JSON")
}

/// Every sample of every function, as `sam local invoke <Function> -e events/<function>/<sample>`
/// runs it on a machine with Docker: the answer a deployed function gives, never a 5xx, never a
/// start-up failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_answers_every_sample_under_sams_resolved_environment() {
    let environments = sam_environment();
    let binaries = binaries();
    assert_eq!(environments.keys().collect::<Vec<_>>(), binaries.keys().collect::<Vec<_>>());
    let github = samples::github_stand_in().await;
    let uri = github.uri();
    for (logical_id, binary) in &binaries {
        let mut env = environments[logical_id].clone();
        assert_eq!(env["AETHERIUM_CONFIG"], "embedded", "{logical_id}: the deployed config");
        if binary == "github-pr" {
            // Its sample opens a real pull request: with Docker it would use your token and
            // api.github.com; here a stand-in answers as GitHub does.
            env.insert("GITHUB_API_URL".into(), uri.clone());
            env.insert("GITHUB_TOKEN".into(), "ghp_example".into());
        }
        // The bridge listens on a Redis, which SAM's env file leaves to you (docs/operations.md);
        // and a 70 s run is shortened.
        let redis = if binary == "bus-bridge" { Some(aetherium_tests::RedisServer::start().await) } else { None };
        if let Some(redis) = &redis {
            assert_eq!(env["REDIS_URL"], "", "{logical_id}: SAM's env file names no Redis");
            env.insert("REDIS_URL".into(), redis.url());
            env.insert("AETHERIUM_BRIDGE_LISTEN_SECONDS".into(), "2".into());
        }
        let files: Vec<String> = samples::all().into_iter().filter(|f| samples::function(f) == binary).collect();
        assert!(!files.is_empty(), "{binary} has samples in events/");
        for file in files {
            let api = RuntimeApi::start().await;
            let _f = Function::spawn(binary, &api, &pairs(&env));
            if let Some(redis) = &redis {
                samples::check_bridge_run(&file, redis, async { answer_json(&api.invoke(&fresh(&file)).await) }).await;
                continue;
            }
            let outcome = api.invoke(&fresh(&file)).await;
            let (status, v) = answer(&outcome);
            if !samples::is_url_function(binary) {
                samples::check_event_answer(&file, &v);
                continue;
            }
            assert_eq!(status, expected_status(&file), "{logical_id} {file}: {v}");
        }
    }
}

/// The packaged dispatcher runs the YAML compiled into it: a route only the YAML declares
/// fires, and the custom webhook integration it configures receives its signed delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployed_dispatcher_runs_the_routes_and_integrations_of_the_yaml() {
    const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let stand_in = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "ts": "1.2"})))
        .mount(&stand_in)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks/audit"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&stand_in)
        .await;
    let uri = stand_in.uri();
    let mut env = sam_environment().remove("DispatcherFunction").expect("the dispatcher");
    // What a deployer sets: Slack's token (the stand-in plays slack.com) and the audit hook's
    // variables, which the YAML reads with ${...}.
    for (k, v) in [
        ("SLACK_BOT_TOKEN", "xoxb-deployed"),
        ("SLACK_API_URL", uri.as_str()),
        ("AUDIT_WEBHOOK_ENABLED", "true"),
        ("AUDIT_WEBHOOK_URL", &format!("{uri}/hooks/audit")),
        ("AUDIT_WEBHOOK_SECRET", HOOK_SECRET),
    ] {
        env.insert(k.into(), v.into());
    }
    let record = |id: &str, kind: &str, data: Value| {
        json!({"messageId": id, "receiptHandle": id, "body": json!({"id": id, "type": kind,
            "timestamp": "2026-11-28T09:00:00Z", "source": "platform", "data": data}).to_string(),
            "attributes": {"ApproximateReceiveCount": "1"}, "eventSource": "aws:sqs"})
    };
    let batch = json!({"Records": [
        record("m-deployed", "custom.deployed", json!({"service": "api", "version": "1.4.2"})),
        record("m-task", "task.started", json!({"task_id": "T-1"})),
    ]});
    let api = RuntimeApi::start().await;
    let _f = Function::spawn("dispatcher", &api, &pairs(&env));
    let (_, v) = answer(&api.invoke(&batch.to_string()).await);
    assert_eq!(v["batchItemFailures"], json!([]), "{v}");

    let requests = stand_in.received_requests().await.unwrap_or_default();
    let posted: Vec<Value> = requests
        .iter()
        .filter(|r| r.url.path() == "/chat.postMessage")
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect();
    assert!(
        posted.iter().any(|p| p["channel"] == "#deployments" && p["text"] == "🚀 Deployed api 1.4.2"),
        "the YAML's `deployments` route: {posted:?}"
    );
    let hook: Vec<_> = requests.iter().filter(|r| r.url.path() == "/hooks/audit").collect();
    assert_eq!(hook.len(), 1, "the audit hook gets the task event once");
    let h = |n: &str| hook[0].headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let ts: i64 = h("webhook-timestamp").parse().expect("timestamp");
    assert!(
        aetherium_webhook::verify(HOOK_SECRET, &h("webhook-id"), ts, &hook[0].body, &h("webhook-signature")),
        "signed with the configured secret"
    );
    let body: Value = serde_json::from_slice(&hook[0].body).expect("json");
    assert_eq!(body["type"], "task.started");
}
