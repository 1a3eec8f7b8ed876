//! The SAM template: valid for `sam validate --lint`, one function per function crate, its
//! alarms and dashboard; and the Slack and GitHub App manifests filled with the stack's URLs.

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

/// Every secret in the sample config comes from the environment with no default: a default
/// would be a key everyone who read the repository knows (the audit hook's once was the
/// Standard Webhooks example key).
#[test]
fn the_sample_config_carries_no_default_secret() {
    let text = std::fs::read_to_string(root().join("config/aetherium.yaml")).expect("config");
    let doc: Value = serde_yaml_ng::from_str(&text).expect("YAML");
    fn walk(v: &Value, path: &str, found: &mut Vec<String>) {
        match v {
            Value::Mapping(m) => {
                for (k, v) in m {
                    let key = k.as_str().unwrap_or_default();
                    let secretish = ["secret", "token", "private_key", "password"].iter().any(|s| key.contains(s));
                    if secretish && let Some(s) = v.as_str() {
                        let plain_env = s.starts_with("${") && s.ends_with('}') && !s.contains(":-");
                        if !plain_env {
                            found.push(format!("{path}.{key}"));
                        }
                    }
                    walk(v, &format!("{path}.{key}"), found);
                }
            }
            Value::Sequence(items) => items.iter().for_each(|i| walk(i, path, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(&doc, "", &mut found);
    assert!(found.is_empty(), "secrets with a value or a default in config/aetherium.yaml: {found:?}");
    assert!(!text.contains("whsec_"), "no Standard Webhooks key in the sample");
    // Switched on without its secret, the hook refuses to start rather than sign with a known key.
    let path = root().join("config/aetherium.yaml");
    let path = path.to_str().expect("utf8").to_owned();
    let env = move |k: &str| match k {
        "AETHERIUM_CONFIG" => Some(path.clone()),
        "AUDIT_WEBHOOK_ENABLED" => Some("true".into()),
        "AUDIT_WEBHOOK_URL" => Some("https://receiver.example/hook".into()),
        _ => None,
    };
    let config = aetherium::config::Config::load(&env).expect("loads");
    let hook = &config.custom["audit-hook"];
    let built = aetherium::model::integration::IntegrationFactory::build(
        &aetherium_webhook::WebhookFactory,
        "audit-hook",
        hook,
    );
    assert!(built.is_err_and(|e| e.contains("secret")), "no secret, no hook");
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
            "dispatcher" | "github-redeliver" | "bus-bridge" => None,
            other => panic!("unexpected function {other}"),
        };
        assert_eq!(auth, want, "{name}");
        // The function knows its URL's AuthType: it trusts an IAM caller only behind AWS_IAM.
        let told = f["Properties"]["Environment"]["Variables"]["AETHERIUM_FUNCTION_URL_AUTH"].as_str();
        assert_eq!(told, want.filter(|a| *a == "AWS_IAM"), "{name}: AETHERIUM_FUNCTION_URL_AUTH");
        // Every function logs to its own log group, which has a retention and outlives the stack.
        let group = f["Properties"]["LoggingConfig"]["LogGroup"].clone();
        let (_, group) = intrinsic(&group).unwrap_or_else(|| panic!("{name}: LoggingConfig.LogGroup is a !Ref"));
        let group = &res[group.as_str().expect("a log group's id")];
        assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"), "{name}");
        assert!(!group["Properties"]["RetentionInDays"].is_null(), "{name}: retention");
        assert_eq!(group["DeletionPolicy"].as_str(), Some("Retain"), "{name}: its logs outlive the stack");
    }
    let dispatcher = functions.iter().find(|(n, _)| *n == "DispatcherFunction").expect("dispatcher").1;
    let timeout = dispatcher["Properties"]["Timeout"].as_u64().expect("timeout");
    let queue = &res["WorkQueue"]["Properties"];
    assert!(queue["VisibilityTimeout"].as_u64().expect("visibility") >= 6 * timeout);
    assert!(
        res["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"].as_u64()
            > queue["MessageRetentionPeriod"].as_u64()
    );
    // A parked record outlives its message in either queue: the claim's TTL is sized from the
    // two retentions, which must be the template's.
    use aetherium::backends::queue::claim::{CLAIM_TTL, DEAD_LETTER_RETENTION, QUEUE_RETENTION};
    assert_eq!(queue["MessageRetentionPeriod"].as_u64(), Some(QUEUE_RETENTION.as_secs()));
    assert_eq!(
        res["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"].as_u64(),
        Some(DEAD_LETTER_RETENTION.as_secs())
    );
    assert!(CLAIM_TTL > DEAD_LETTER_RETENTION + QUEUE_RETENTION);
    // Sized with the dispatcher's retry schedule (engine::dispatch::RETRY_SCHEDULE).
    assert_eq!(
        queue["RedrivePolicy"]["maxReceiveCount"].as_u64(),
        Some(u64::from(aetherium::backends::queue::MAX_RECEIVES))
    );
    // The trigger is the stack's own mapping (SAM's SQS event would grant the role every queue
    // in the account), bounded by a parameter.
    let trigger = &res["DispatcherTrigger"];
    assert_eq!(trigger["Type"].as_str(), Some("AWS::Lambda::EventSourceMapping"));
    let work = &trigger["Properties"];
    assert!(is(&work["FunctionName"], "Ref", "DispatcherFunction"));
    assert!(is(&work["EventSourceArn"], "GetAtt", "WorkQueue.Arn"));
    assert_eq!(work["FunctionResponseTypes"][0].as_str(), Some("ReportBatchItemFailures"));
    assert!(is(&work["ScalingConfig"]["MaximumConcurrency"], "Ref", "DispatcherMaxConcurrency"));
    assert!(dispatcher["Properties"]["Events"]["Work"].is_null(), "no SAM SQS event");
    assert!(res["DeadLetterQueue"]["DeletionPolicy"].as_str() == Some("Retain"), "dead letters outlive the stack");
    assert!(
        is(&res["Cache"]["Properties"]["SnapshotRetentionLimit"], "Ref", "CacheSnapshotRetentionDays"),
        "snapshots"
    );

    // No secret is a parameter: SAM's guided flow asks a NoEcho parameter again and again on
    // Enter, whatever its Default. Every parameter has a default that deploys.
    for (name, p) in t["Parameters"].as_mapping().expect("Parameters") {
        let name = name.as_str().expect("name");
        assert!(p["NoEcho"].is_null(), "{name} is NoEcho: the guided deploy could not be finished");
        assert!(!p["Default"].is_null(), "{name} has no default: Enter would be asked again");
    }
    // The public functions can reserve concurrency (a flood then takes at most that much of
    // the account), from a parameter that defaults to no reservation: a new account's quota
    // keeps 100 unreserved, and any reservation would roll the first stack back.
    for (name, f) in &functions {
        let bin = f["Metadata"]["BuildProperties"]["Binary"].as_str().expect("binary");
        if !matches!(bin, "github-webhook" | "slack-webhook" | "health") {
            continue;
        }
        let reserved = serde_yaml_ng::to_string(&f["Properties"]["ReservedConcurrentExecutions"]).expect("yaml");
        let param = t["Parameters"]
            .as_mapping()
            .expect("Parameters")
            .iter()
            .find(|(k, _)| reserved.contains(&format!("!Ref {}", k.as_str().unwrap_or("?"))))
            .unwrap_or_else(|| panic!("{name}: ReservedConcurrentExecutions from a parameter: {reserved}"));
        assert_eq!(param.1["Default"].as_str(), Some(""), "{name}: no reservation by default");
        assert!(reserved.contains("!If") && reserved.contains("AWS::NoValue"), "{name}: can be turned off: {reserved}");
    }
    // The cache's size and throughput (and so its cost) are capped.
    let limits = &res["Cache"]["Properties"]["CacheUsageLimits"];
    for (limit, param) in [("DataStorage", "CacheMaxDataStorageGB"), ("ECPUPerSecond", "CacheMaxEcpuPerSecond")] {
        assert!(is(&limits[limit]["Maximum"], "Ref", param), "Cache {limit}: {:?}", limits[limit]);
        assert!(t["Parameters"][param]["Default"].as_u64().is_some(), "{param} has a default");
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

#[test]
fn github_redeliver_runs_on_a_schedule_that_a_parameter_turns_off() {
    let t = template();
    let f = &t["Resources"]["GithubRedeliverFunction"];
    assert_eq!(f["Type"].as_str(), Some("AWS::Serverless::Function"));
    assert_eq!(f["Metadata"]["BuildProperties"]["Binary"].as_str(), Some("github-redeliver"));
    assert!(f["Properties"]["FunctionUrlConfig"].is_null(), "no URL: only the schedule invokes it");
    assert!(f["Properties"]["Timeout"].as_u64().is_some_and(|t| t >= 60), "time for 100 redeliveries at 5 a second");

    // The schedule: every RedeliverySchedule, enabled while RedeliveryEnabled is true.
    let events = f["Properties"]["Events"].as_mapping().expect("Events");
    assert_eq!(events.len(), 1);
    let schedule = events.values().next().expect("one event");
    assert_eq!(schedule["Type"].as_str(), Some("Schedule"));
    assert!(is(&schedule["Properties"]["Schedule"], "Ref", "RedeliverySchedule"));
    let state: Value = serde_yaml_ng::from_str("!If [RedeliveryOn, ENABLED, DISABLED]").expect("yaml");
    assert_eq!(schedule["Properties"]["State"], state);
    let condition: Value = serde_yaml_ng::from_str(r#"!Equals [!Ref RedeliveryEnabled, "true"]"#).expect("yaml");
    assert_eq!(t["Conditions"]["RedeliveryOn"], condition);

    let p = &t["Parameters"];
    assert_eq!(p["RedeliverySchedule"]["Default"].as_str(), Some("rate(5 minutes)"));
    assert_eq!(p["RedeliveryEnabled"]["Default"].as_str(), Some("true"));
    let allowed: Vec<&str> = p["RedeliveryEnabled"]["AllowedValues"]
        .as_sequence()
        .expect("values")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(allowed, ["true", "false"]);
    assert_eq!(p["GithubRedeliveryHook"]["Default"].as_str(), Some(""));

    // The settings reach the function as the variables the config reads.
    let env = &f["Properties"]["Environment"]["Variables"];
    for (variable, reference) in [
        ("GITHUB_TOKEN", "secretsmanager:${GithubCredentialsSecret}#token"),
        ("GITHUB_APP_PRIVATE_KEY", "secretsmanager:${GithubCredentialsSecret}#app_private_key"),
    ] {
        assert!(is(&env[variable], "Sub", reference), "{variable} = !Sub {reference}");
    }
    for (variable, parameter) in [
        ("GITHUB_APP_ID", "GithubAppId"),
        ("GITHUB_APP_INSTALLATION_ID", "GithubAppInstallationId"),
        ("GITHUB_REDELIVERY_ENABLED", "RedeliveryEnabled"),
        ("GITHUB_REDELIVERY_HOOK", "GithubRedeliveryHook"),
    ] {
        assert!(is(&env[variable], "Ref", parameter), "{variable} = !Ref {parameter}");
    }
    let sample = |hook: &str| {
        let env = [("GITHUB_TOKEN", "t"), ("GITHUB_REDELIVERY_HOOK", hook)];
        let map: std::collections::HashMap<&str, &str> = env.into_iter().collect();
        aetherium::config::Config::load(&|k| map.get(k).map(|v| (*v).to_owned())).is_ok()
    };
    assert!(sample("octo/hello-world#123") && sample("org:octo#9") && !sample("octo#9"));
}

#[test]
fn bus_bridge_listens_every_minute_behind_a_parameter_and_may_only_queue() {
    let t = template();
    let res = &t["Resources"];
    let f = &res["BusBridgeFunction"];
    assert_eq!(f["Type"].as_str(), Some("AWS::Serverless::Function"));
    assert_eq!(f["Metadata"]["BuildProperties"]["Binary"].as_str(), Some("bus-bridge"));
    let props = &f["Properties"];
    assert!(props["FunctionUrlConfig"].is_null(), "no URL: only the schedule invokes it");

    // BusBridgeEnabled (true by default) turns it off; without a shared Redis it has no bus.
    let p = &t["Parameters"]["BusBridgeEnabled"];
    assert_eq!(p["Default"].as_str(), Some("true"));
    let allowed: Vec<&str> =
        p["AllowedValues"].as_sequence().expect("values").iter().filter_map(Value::as_str).collect();
    assert_eq!(allowed, ["true", "false"]);
    let condition: Value =
        serde_yaml_ng::from_str(r#"!And [!Equals [!Ref BusBridgeEnabled, "true"], !Condition SharedRedis]"#)
            .expect("yaml");
    assert_eq!(t["Conditions"]["BusBridgeOn"], condition);
    for id in ["BusBridgeFunction", "BusBridgeRole", "BusBridgeLogGroup", "BusBridgeErrorsAlarm"] {
        assert_eq!(res[id]["Condition"].as_str(), Some("BusBridgeOn"), "{id} exists only with the bridge");
    }
    // Health expects the bridge's heartbeat only where one runs.
    let told: Value = serde_yaml_ng::from_str(r#"!If [BusBridgeOn, "true", "false"]"#).expect("yaml");
    assert_eq!(t["Globals"]["Function"]["Environment"]["Variables"]["AETHERIUM_BUS_BRIDGE"], told);

    // Every minute, not retried (the next minute's run comes anyway), with the input its sample holds.
    let events = props["Events"].as_mapping().expect("Events");
    assert_eq!(events.len(), 1);
    let schedule = events.values().next().expect("one event");
    assert_eq!(schedule["Type"].as_str(), Some("ScheduleV2"), "EventBridge Scheduler");
    assert_eq!(schedule["Properties"]["ScheduleExpression"].as_str(), Some("rate(1 minute)"));
    assert_eq!(schedule["Properties"]["FlexibleTimeWindow"]["Mode"].as_str(), Some("OFF"), "on the minute");
    assert_eq!(schedule["Properties"]["RetryPolicy"]["MaximumRetryAttempts"].as_u64(), Some(0));
    assert_eq!(props["EventInvokeConfig"]["MaximumRetryAttempts"].as_u64(), Some(0));
    let input: serde_json::Value =
        serde_json::from_str(schedule["Properties"]["Input"].as_str().expect("Input")).expect("JSON");
    assert_eq!(input, serde_json::json!({"aetherium": "bus-bridge"}));
    let sample = std::fs::read_to_string(root().join("events/bus-bridge/scheduled.json")).expect("its sample");
    let sample: serde_json::Value = serde_json::from_str(&sample).expect("JSON");
    assert_eq!(sample, input, "events/bus-bridge/ holds what the schedule sends");

    // Each run listens past the minute, so that consecutive runs overlap, and ends before its timeout.
    let timeout = props["Timeout"].as_u64().expect("Timeout");
    let listen: u64 = props["Environment"]["Variables"]["AETHERIUM_BRIDGE_LISTEN_SECONDS"]
        .as_str()
        .expect("AETHERIUM_BRIDGE_LISTEN_SECONDS")
        .parse()
        .expect("seconds");
    assert!(listen > 60, "listening {listen} s leaves a gap between two runs");
    assert!(timeout > listen, "Timeout {timeout} s ends a run that listens {listen} s");
    assert!(timeout < 120, "at most two runs at once");
    assert_eq!(props["MemorySize"].as_u64(), Some(128));

    // Its own role: its log group, the Redis credentials, and sending to the work queue. No
    // GitHub or Slack secret, no other queue, no other SQS action.
    assert!(is(&props["Role"], "GetAtt", "BusBridgeRole.Arn"));
    let policies = res["BusBridgeRole"]["Properties"]["Policies"].as_sequence().expect("policies");
    assert_eq!(policies.len(), 1);
    let mut sqs = Vec::new();
    let mut secrets = 0;
    for statement in policies[0]["PolicyDocument"]["Statement"].as_sequence().expect("statements") {
        let actions: Vec<String> = match &statement["Action"] {
            Value::Sequence(list) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            one => vec![one.as_str().expect("an action").to_owned()],
        };
        let resource = serde_yaml_ng::to_string(&statement["Resource"]).expect("yaml");
        for action in &actions {
            if action.starts_with("sqs:") {
                sqs.push(action.clone());
                assert!(is(&statement["Resource"], "GetAtt", "WorkQueue.Arn"), "{action} on {resource}");
            }
            if action.starts_with("secretsmanager:") {
                secrets += 1;
                assert_eq!(action.as_str(), "secretsmanager:GetSecretValue");
                assert!(resource.contains("RedisAuthSecret") && resource.contains("RedisUrlSecretArn"), "{resource}");
            }
        }
        for secret in ["GithubWebhookSecret", "GithubCredentialsSecret", "SlackSigningSecret", "SlackBotTokenSecret"] {
            assert!(!resource.contains(secret), "bus-bridge may read {secret}: {resource}");
        }
        assert!(!resource.contains("DeadLetterQueue"), "{resource}");
    }
    assert_eq!(sqs, ["sqs:SendMessage"], "it only queues (SendMessageBatch is authorised by SendMessage)");
    assert_eq!(secrets, 1, "the Redis credentials, nothing else");
    // The shared policies its role gets grant neither a secret nor the queue; they name it only
    // where it exists.
    let attached: Value =
        serde_yaml_ng::from_str("!If [BusBridgeOn, !Ref BusBridgeRole, !Ref AWS::NoValue]").expect("yaml");
    for (id, policy) in resources_of_type(&t, "AWS::IAM::ManagedPolicy") {
        let roles = policy["Properties"]["Roles"].as_sequence().expect("roles");
        let grants = serde_yaml_ng::to_string(&policy["Properties"]["PolicyDocument"]).expect("yaml");
        let names_it = serde_yaml_ng::to_string(roles).expect("yaml").contains("BusBridgeRole");
        if names_it {
            assert!(roles.contains(&attached), "{id}: the bridge's role behind BusBridgeOn");
            assert!(!grants.contains("secretsmanager:") && !grants.contains("sqs:"), "{id}: {grants}");
        }
    }
    for id in ["FunctionsCommonPolicy", "VpcNetworkInterfacesPolicy"] {
        let roles = res[id]["Properties"]["Roles"].as_sequence().expect("roles");
        assert!(roles.contains(&attached), "{id} reaches the bridge's role");
    }
}

#[test]
fn the_platform_reaches_the_bus_through_the_outputs_and_a_group_the_cache_admits() {
    let t = template();
    let res = &t["Resources"];
    let outputs = &t["Outputs"];
    for out in ["CacheEndpoint", "CacheEndpointAddress", "CacheEndpointPort", "BusClientSecurityGroupId"] {
        assert_eq!(outputs[out]["Condition"].as_str(), Some("CreateCache"), "output {out}, with the stack's cache");
    }
    assert!(is(&outputs["CacheEndpoint"]["Value"], "Sub", "${Cache.Endpoint.Address}:${Cache.Endpoint.Port}"));
    assert!(is(&outputs["CacheEndpointAddress"]["Value"], "GetAtt", "Cache.Endpoint.Address"));
    assert!(is(&outputs["CacheEndpointPort"]["Value"], "GetAtt", "Cache.Endpoint.Port"));
    assert!(is(&outputs["BusClientSecurityGroupId"]["Value"], "GetAtt", "BusClientSecurityGroup.GroupId"));

    // The client group, in the cache's VPC (the stack's, or VpcId with Network=existing).
    let client = &res["BusClientSecurityGroup"];
    assert_eq!(client["Type"].as_str(), Some("AWS::EC2::SecurityGroup"));
    assert_eq!(client["Condition"].as_str(), Some("CreateCache"));
    let vpc: Value = serde_yaml_ng::from_str("!If [CreateNetwork, !Ref Vpc, !Ref VpcId]").expect("yaml");
    assert_eq!(client["Properties"]["VpcId"], vpc);
    assert_eq!(res["CacheSecurityGroup"]["Properties"]["VpcId"], vpc);

    // The cache admits it on the ports it admits the functions on.
    let port = |rule: &Value| (rule["FromPort"].as_u64(), rule["ToPort"].as_u64());
    let ingress = res["CacheSecurityGroup"]["Properties"]["SecurityGroupIngress"].as_sequence().expect("ingress");
    let from = |group: &str| {
        ingress
            .iter()
            .find(|r| is(&r["SourceSecurityGroupId"], "Ref", group))
            .unwrap_or_else(|| panic!("the cache admits {group}"))
    };
    let platform = from("BusClientSecurityGroup");
    assert_eq!(platform["IpProtocol"].as_str(), Some("tcp"));
    assert_eq!(port(platform), port(from("FunctionSecurityGroup")));
    assert_eq!(port(platform), (Some(6379), Some(6380)));

    // It reaches the cache and nothing else (a task's own groups give it the rest).
    let egress = serde_yaml_ng::to_string(&client["Properties"]["SecurityGroupEgress"]).expect("yaml");
    assert!(egress.contains("127.0.0.1/32") && !egress.contains("0.0.0.0/0"), "{egress}");
    let to_cache = &res["BusClientToCache"];
    assert_eq!(to_cache["Type"].as_str(), Some("AWS::EC2::SecurityGroupEgress"));
    assert_eq!(to_cache["Condition"].as_str(), Some("CreateCache"));
    assert!(is(&to_cache["Properties"]["GroupId"], "Ref", "BusClientSecurityGroup"));
    assert!(is(&to_cache["Properties"]["DestinationSecurityGroupId"], "Ref", "CacheSecurityGroup"));
    assert_eq!(port(&to_cache["Properties"]), port(&res["FunctionToCache"]["Properties"]));
}

/// `!Ref X`, `!GetAtt X.Y`, `!Sub ...` (CloudFormation's short forms): the function's name and
/// its argument.
fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((t.tag.to_string().trim_start_matches('!').to_owned(), &t.value)),
        _ => None,
    }
}

fn is(v: &Value, function: &str, arg: &str) -> bool {
    intrinsic(v).is_some_and(|(f, a)| f == function && a.as_str() == Some(arg))
}

fn resources_of_type<'a>(t: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(k, r)| (k.as_str().expect("name"), r))
        .collect()
}

#[test]
fn the_alarms_watch_dead_letters_queue_age_errors_and_throttles() {
    let t = template();
    let res = &t["Resources"];

    // AlarmEmail is optional: with it, an SNS topic with an email subscription; without it, no topic.
    assert_eq!(t["Parameters"]["AlarmEmail"]["Default"].as_str(), Some(""));
    let condition = serde_yaml_ng::to_string(&t["Conditions"]["HasAlarmEmail"]).expect("yaml");
    assert!(condition.contains("!Not") && condition.contains("!Equals") && condition.contains("!Ref AlarmEmail"));
    let topic = &res["AlarmTopic"];
    assert_eq!(topic["Type"].as_str(), Some("AWS::SNS::Topic"));
    // Encrypted, under the stack's key, whose policy lets CloudWatch publish (it cannot use
    // the AWS-managed aws/sns key).
    assert!(is(&topic["Properties"]["KmsMasterKeyId"], "Ref", "StackKey"), "the alarm topic is encrypted");
    let key_policy = serde_yaml_ng::to_string(&res["StackKey"]["Properties"]["KeyPolicy"]).expect("yaml");
    assert!(
        key_policy.contains("cloudwatch.amazonaws.com") && key_policy.contains("kms:GenerateDataKey*"),
        "{key_policy}"
    );
    assert_eq!(topic["Condition"].as_str(), Some("HasAlarmEmail"));
    assert_eq!(topic["Properties"]["Subscription"][0]["Protocol"].as_str(), Some("email"));
    assert!(is(&topic["Properties"]["Subscription"][0]["Endpoint"], "Ref", "AlarmEmail"));

    // Every alarm notifies the topic when it exists, and has no action otherwise.
    let action: Value =
        serde_yaml_ng::from_str("!If [HasAlarmEmail, [!Ref AlarmTopic], !Ref AWS::NoValue]").expect("yaml");
    let alarms = resources_of_type(&t, "AWS::CloudWatch::Alarm");
    for (name, alarm) in &alarms {
        let p = &alarm["Properties"];
        assert_eq!(p["AlarmActions"], action, "{name}");
        assert_eq!(p["ComparisonOperator"].as_str(), Some("GreaterThanThreshold"), "{name}");
        assert_eq!(p["TreatMissingData"].as_str(), Some("notBreaching"), "{name}");
        assert!(p["AlarmDescription"].as_str().is_some_and(|d| !d.is_empty()), "{name} says what to do");
    }

    // One metric each: (alarm, namespace, metric, dimension, its value, threshold).
    let queue_age = t["Parameters"]["QueueAgeAlarmSeconds"]["Default"].as_u64();
    assert_eq!(queue_age, Some(300));
    let single = [
        (
            "DeadLetterAlarm",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "QueueName",
            ("GetAtt", "DeadLetterQueue.QueueName"),
        ),
        ("QueueAgeAlarm", "AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", ("GetAtt", "WorkQueue.QueueName")),
        ("DispatcherErrorsAlarm", "AWS/Lambda", "Errors", "FunctionName", ("Ref", "DispatcherFunction")),
        ("GithubWebhookErrorsAlarm", "AWS/Lambda", "Errors", "FunctionName", ("Ref", "GithubWebhookFunction")),
        ("SlackWebhookErrorsAlarm", "AWS/Lambda", "Errors", "FunctionName", ("Ref", "SlackWebhookFunction")),
        ("EventsErrorsAlarm", "AWS/Lambda", "Errors", "FunctionName", ("Ref", "EventsFunction")),
        ("GithubPrErrorsAlarm", "AWS/Lambda", "Errors", "FunctionName", ("Ref", "GithubPrFunction")),
        ("GithubRedeliverErrorsAlarm", "AWS/Lambda", "Errors", "FunctionName", ("Ref", "GithubRedeliverFunction")),
        ("BusBridgeErrorsAlarm", "AWS/Lambda", "Errors", "FunctionName", ("Ref", "BusBridgeFunction")),
    ];
    for (name, namespace, metric, dimension, (function, arg)) in single {
        let p = &res[name]["Properties"];
        assert_eq!(res[name]["Type"].as_str(), Some("AWS::CloudWatch::Alarm"), "{name}");
        assert_eq!(p["Namespace"].as_str(), Some(namespace), "{name}");
        assert_eq!(p["MetricName"].as_str(), Some(metric), "{name}");
        assert_eq!(p["Dimensions"][0]["Name"].as_str(), Some(dimension), "{name}");
        assert!(is(&p["Dimensions"][0]["Value"], function, arg), "{name} watches {arg}");
        if name == "QueueAgeAlarm" {
            assert!(is(&p["Threshold"], "Ref", "QueueAgeAlarmSeconds"), "{name}");
        } else {
            assert_eq!(p["Threshold"].as_f64(), Some(0.0), "{name}: any is too many");
        }
    }

    // The product's own counters that reveal a misconfiguration, in the namespace and with
    // the dimensions the functions write in their EMF lines: rejected signatures per source
    // (a wrong secret after a deploy is all 401s, no Lambda error) and redeliveries given up.
    {
        use aetherium::observe::metrics::{REDELIVERIES, SIGNATURES_REJECTED, emf_line};
        let counted = [
            ("GithubSignaturesRejectedAlarm", SIGNATURES_REJECTED, ("source", "github"), 10.0),
            ("SlackSignaturesRejectedAlarm", SIGNATURES_REJECTED, ("source", "slack"), 10.0),
            ("RedeliveriesGaveUpAlarm", REDELIVERIES, ("outcome", "gave_up"), 0.0),
        ];
        for (name, metric, label, threshold) in counted {
            let emf: serde_json::Value = serde_json::from_str(&emf_line(metric, &[label], 0)).expect("emf");
            let declared = &emf["_aws"]["CloudWatchMetrics"][0];
            let p = &res[name]["Properties"];
            assert_eq!(p["Namespace"].as_str(), declared["Namespace"].as_str(), "{name}");
            assert_eq!(p["MetricName"].as_str(), declared["Metrics"][0]["Name"].as_str(), "{name}");
            assert_eq!(
                declared["Dimensions"][0],
                serde_json::json!([label.0]),
                "{name}: the EMF line's only dimension"
            );
            assert_eq!(p["Dimensions"].as_sequence().map(Vec::len), Some(1), "{name}");
            assert_eq!(p["Dimensions"][0]["Name"].as_str(), Some(label.0), "{name}");
            assert_eq!(p["Dimensions"][0]["Value"].as_str(), Some(label.1), "{name}");
            assert_eq!(emf[label.0].as_str(), Some(label.1), "{name}: the value the line carries");
            assert_eq!((p["Statistic"].as_str(), p["Period"].as_u64()), (Some("Sum"), Some(300)), "{name}");
            assert_eq!(p["Threshold"].as_f64(), Some(threshold), "{name}");
        }
    }

    // Throttles of the functions only signed callers or a schedule reach: one alarm summing
    // them. The public ones are left out, so that nobody outside can page the operator with a
    // few GETs. The bus bridge's are in the sum where the bridge exists.
    let public = ["GithubWebhookFunction", "SlackWebhookFunction", "HealthFunction"];
    let internal: BTreeSet<String> = resources_of_type(&t, "AWS::Serverless::Function")
        .into_iter()
        .map(|(name, _)| name.to_owned())
        .filter(|name| !public.contains(&name.as_str()))
        .collect();
    assert_eq!(internal.len(), 7);
    for bridge in [true, false] {
        let functions: BTreeSet<String> =
            internal.iter().filter(|f| bridge || f.as_str() != "BusBridgeFunction").cloned().collect();
        let p = resolve(&res["ThrottlesAlarm"]["Properties"], bridge).expect("properties");
        let metrics = p["Metrics"].as_sequence().expect("metric math");
        let sum = metrics.iter().find(|m| m["ReturnData"].as_bool() == Some(true)).expect("the returned expression");
        let expression = sum["Expression"].as_str().expect("expression");
        assert!(expression.starts_with("SUM(["), "{expression}");
        let mut watched = BTreeSet::new();
        for m in metrics.iter().filter(|m| m["ReturnData"].as_bool() == Some(false)) {
            let stat = &m["MetricStat"];
            assert_eq!(stat["Metric"]["Namespace"].as_str(), Some("AWS/Lambda"));
            assert_eq!(stat["Metric"]["MetricName"].as_str(), Some("Throttles"));
            assert_eq!(stat["Stat"].as_str(), Some("Sum"));
            let id = m["Id"].as_str().expect("id");
            assert!(expression.contains(id), "{id} is in {expression}");
            let (f, arg) = intrinsic(&stat["Metric"]["Dimensions"][0]["Value"]).expect("!Ref");
            assert_eq!(f, "Ref");
            watched.insert(arg.as_str().expect("function").to_owned());
        }
        assert_eq!(watched, functions, "bridge {bridge}: every internal function's throttles, no public one's");
        assert_eq!(p["Threshold"].as_f64(), Some(0.0));
    }

    let mut names: Vec<&str> = alarms.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "BusBridgeErrorsAlarm",
            "DeadLetterAlarm",
            "DispatcherErrorsAlarm",
            "EventsErrorsAlarm",
            "GithubPrErrorsAlarm",
            "GithubRedeliverErrorsAlarm",
            "GithubSignaturesRejectedAlarm",
            "GithubWebhookErrorsAlarm",
            "QueueAgeAlarm",
            "RedeliveriesGaveUpAlarm",
            "SlackSignaturesRejectedAlarm",
            "SlackWebhookErrorsAlarm",
            "ThrottlesAlarm"
        ]
    );
}

/// The dashboard body, a `!Sub` of JSON, as the stack has it with the bus bridge on (`bridge`)
/// or off: each `${X}` replaced by its `!Sub` variable (an `!If [BusBridgeOn, ..]` by the branch
/// `bridge` picks), or else by `X` (a Number parameter by its default, so the JSON parses).
/// Every other `${X}` must name a parameter, a resource (or its attribute) or a pseudo parameter.
fn dashboard(t: &Value, bridge: bool) -> serde_json::Value {
    let (function, arg) = intrinsic(&t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]).expect("a !Sub");
    assert_eq!(function, "Sub");
    let none = Value::Null;
    // `!Sub body` or `!Sub [body, {variable: value}]`.
    let (body, variables) = match arg.as_sequence() {
        Some(pair) => (&pair[0], &pair[1]),
        None => (arg, &none),
    };
    let json = substitute(t, body.as_str().expect("a string"), variables, bridge);
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("the dashboard body is not JSON: {e}\n{json}"))
}

/// `text` with each `${X}` replaced, as [`dashboard`] says.
fn substitute(t: &Value, text: &str, variables: &Value, bridge: bool) -> String {
    let mut rest = text;
    let mut json = String::new();
    while let Some(start) = rest.find("${") {
        json.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing }") + start;
        let name = &rest[start + 2..end];
        let root = name.split('.').next().unwrap_or(name);
        let param = &t["Parameters"][root];
        if !variables[name].is_null() {
            json.push_str(&variable(t, &variables[name], bridge));
        } else if param["Type"].as_str() == Some("Number") {
            json.push_str(&param["Default"].as_u64().expect("a default").to_string());
        } else {
            assert!(
                !param.is_null() || !t["Resources"][root].is_null() || root.starts_with("AWS::"),
                "${{{name}}} names nothing in the template"
            );
            json.push_str(name);
        }
        rest = &rest[end + 1..];
    }
    json.push_str(rest);
    json
}

/// A `!Sub` variable's text: an `!If [BusBridgeOn, a, b]` by its branch, a `!Sub` substituted
/// in turn, `!Ref X` as `X`, a string as it is.
fn variable(t: &Value, v: &Value, bridge: bool) -> String {
    match intrinsic(v) {
        Some((f, arg)) if f == "If" => {
            assert_eq!(arg[0].as_str(), Some("BusBridgeOn"), "{arg:?}");
            variable(t, &arg[if bridge { 1 } else { 2 }], bridge)
        }
        Some((f, arg)) if f == "Sub" => substitute(t, arg.as_str().expect("a string"), &Value::Null, bridge),
        Some((f, arg)) if f == "Ref" => arg.as_str().expect("a name").to_owned(),
        Some((f, _)) => panic!("!{f} in a dashboard variable"),
        None => v.as_str().expect("a string").to_owned(),
    }
}

/// `v` as CloudFormation reads it with BusBridgeOn `bridge`: each `!If [BusBridgeOn, a, b]`
/// replaced by its branch, and a branch of `!Ref AWS::NoValue` left out (`None`).
fn resolve(v: &Value, bridge: bool) -> Option<Value> {
    if let Some((f, arg)) = intrinsic(v) {
        if f == "If" && arg[0].as_str() == Some("BusBridgeOn") {
            return resolve(&arg[if bridge { 1 } else { 2 }], bridge);
        }
        if f == "Ref" && arg.as_str() == Some("AWS::NoValue") {
            return None;
        }
        return Some(v.clone());
    }
    match v {
        Value::Sequence(items) => Some(Value::Sequence(items.iter().filter_map(|i| resolve(i, bridge)).collect())),
        Value::Mapping(m) => {
            Some(Value::Mapping(m.iter().filter_map(|(k, v)| resolve(v, bridge).map(|v| (k.clone(), v))).collect()))
        }
        other => Some(other.clone()),
    }
}

#[test]
fn the_dashboard_shows_the_counters_the_queues_and_the_functions() {
    use aetherium::observe::metrics::{
        BRIDGE_ENQUEUED, BRIDGE_HEARD, BRIDGE_REFUSED, CONSUMED, PUBLISHED, REDELIVERIES, REQUESTS,
        SIGNATURES_REJECTED, emf_line,
    };
    let t = template();
    assert_eq!(t["Resources"]["Dashboard"]["Type"].as_str(), Some("AWS::CloudWatch::Dashboard"));
    // Without the bus bridge the body is JSON too, and names nothing of it.
    let off = dashboard(&t, false).to_string();
    assert!(!off.contains("BusBridge") && !off.contains("aetherium_bridge"), "{off}");
    let body = dashboard(&t, true);
    let widgets = body["widgets"].as_array().expect("widgets");
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut searches: Vec<String> = Vec::new();
    for w in widgets.iter().filter(|w| w["type"] == "metric") {
        assert!(w["properties"]["title"].as_str().is_some_and(|s| !s.is_empty()), "{w}");
        assert_eq!(w["properties"]["region"], "AWS::Region");
        for row in w["properties"]["metrics"].as_array().expect("metrics") {
            let row = row.as_array().expect("a row");
            match row[0]["expression"].as_str() {
                Some(e) => searches.push(e.to_owned()),
                None => rows.push(row.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()),
            }
        }
    }
    let has = |want: &[&str]| rows.iter().any(|r| r.iter().map(String::as_str).eq(want.iter().copied()));

    // The guide's three counters, the redeliveries and the bus bridge's, from the namespace and
    // with the dimensions the functions write in their EMF lines.
    for (name, labels) in [
        (PUBLISHED, &[("topic", "t")][..]),
        (CONSUMED, &[("topic", "t"), ("integration", "i")][..]),
        (REQUESTS, &[("integration", "i"), ("method", "m"), ("outcome", "o")][..]),
        (REDELIVERIES, &[("outcome", "o")][..]),
        (BRIDGE_HEARD, &[("topic", "t")][..]),
        (BRIDGE_ENQUEUED, &[("topic", "t")][..]),
        (BRIDGE_REFUSED, &[("topic", "t"), ("reason", "r")][..]),
        (SIGNATURES_REJECTED, &[("source", "s")][..]),
    ] {
        let emf: serde_json::Value = serde_json::from_str(&emf_line(name, labels, 0)).expect("emf");
        let declared = &emf["_aws"]["CloudWatchMetrics"][0];
        let namespace = declared["Namespace"].as_str().expect("namespace");
        let dims: Vec<&str> =
            declared["Dimensions"][0].as_array().expect("dims").iter().filter_map(|d| d.as_str()).collect();
        let want = format!("SEARCH('{{{namespace},{}}} MetricName=\"{name}\"'", dims.join(","));
        assert!(searches.iter().any(|s| s.starts_with(&want)), "{want} in {searches:?}");
    }
    // Queue depth and age, and the dead letters.
    assert!(has(&["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "WorkQueue.QueueName"]));
    assert!(has(&["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", "WorkQueue.QueueName"]));
    assert!(has(&["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "DeadLetterQueue.QueueName"]));
    // Every function's errors, duration and throttles (the public ones' are shown, not alarmed on).
    for (function, _) in resources_of_type(&t, "AWS::Serverless::Function") {
        for metric in ["Errors", "Duration", "Throttles"] {
            assert!(has(&["AWS/Lambda", metric, "FunctionName", function]), "{metric} of {function}");
        }
    }
    // And every alarm's state.
    let shown: BTreeSet<String> = widgets
        .iter()
        .filter(|w| w["type"] == "alarm")
        .flat_map(|w| w["properties"]["alarms"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().and_then(|a| a.strip_suffix(".Arn")).map(str::to_owned))
        .collect();
    let alarms: BTreeSet<String> =
        resources_of_type(&t, "AWS::CloudWatch::Alarm").into_iter().map(|(n, _)| n.to_owned()).collect();
    assert_eq!(shown, alarms);
}

#[test]
fn the_github_app_manifest_is_filled_with_the_deployed_url() {
    let raw = std::fs::read_to_string(root().join("deploy/github-app-manifest.json")).expect("manifest");
    let _: serde_json::Value = serde_json::from_str(&raw).expect("the manifest in deploy/ is JSON");
    let url = "https://abcdefghij.lambda-url.us-east-1.on.aws/";
    let out = Command::new(root().join("scripts/github-app-manifest"))
        .args(["--url", url])
        .output()
        .expect("run scripts/github-app-manifest");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON manifest");
    assert_eq!(m["hook_attributes"]["url"], url);
    assert_eq!(m["hook_attributes"]["active"], true);
    assert!(m["url"].as_str().is_some_and(|u| u.starts_with("https://")), "a homepage: {m}");
    assert!(m["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert_eq!(m["public"], false);
    let mut events: Vec<&str> =
        m["default_events"].as_array().expect("events").iter().filter_map(|e| e.as_str()).collect();
    events.sort_unstable();
    assert_eq!(events, ["issue_comment", "pull_request", "push", "repository_dispatch"]);
    assert_eq!(
        m["default_permissions"],
        serde_json::json!({"contents": "write", "issues": "write", "metadata": "read", "pull_requests": "write"})
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("__"), "every placeholder is filled");
    let refused = Command::new(root().join("scripts/github-app-manifest"))
        .args(["--url", "http://insecure"])
        .output()
        .expect("run");
    assert!(!refused.status.success());
}

#[test]
fn every_function_sets_the_memory_size_docs_operations_md_derives() {
    let t = template();
    assert!(t["Globals"]["Function"]["MemorySize"].is_null(), "each function chooses its own, not a global");
    let docs = std::fs::read_to_string(root().join("docs/operations.md")).expect("docs/operations.md");
    let functions = resources_of_type(&t, "AWS::Serverless::Function");
    assert!(functions.len() >= 9, "{} functions", functions.len());
    for (name, f) in functions {
        let mb = f["Properties"]["MemorySize"].as_u64().unwrap_or_else(|| panic!("{name} sets no MemorySize"));
        assert!((128..=10_240).contains(&mb), "{name}: {mb} MB");
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap_or_else(|| panic!("{name}: binary"));
        let row = docs
            .lines()
            .find(|l| l.starts_with(&format!("| {binary} |")))
            .unwrap_or_else(|| panic!("docs/operations.md has no memory-size row for {binary}"));
        assert!(
            row.trim_end().ends_with(&format!("| {mb} |")),
            "{binary}: the template's {mb} MB is not the documented choice: {row}"
        );
    }
}
