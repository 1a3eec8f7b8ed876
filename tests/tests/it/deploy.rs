//! A new user's first deploy: `sam deploy --guided` answered as docs/operations.md says reaches
//! AWS; the stack keeps its secrets in Secrets Manager, each role reads only its own, the
//! extension's layer comes from a mapping for every region, the VPC rules refuse what would
//! fail mid-stack, and checkov finds nothing that is not explained in the template.

use serde_yaml_ng::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    aetherium_tests::fixtures::root()
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml");
    serde_yaml_ng::from_str(&text).expect("template.yaml parses")
}

fn tag(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((t.tag.to_string().trim_start_matches('!').to_owned(), &t.value)),
        _ => None,
    }
}

fn functions(t: &Value) -> Vec<(String, &Value)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(k, r)| (k.as_str().expect("id").to_owned(), r))
        .collect()
}

fn sam_cli() -> String {
    std::env::var("SAM_CLI").expect("SAM_CLI names the venv's sam; run the suite with scripts/test")
}

/// The questions `sam deploy --guided` asks, as docs/operations.md lists them (the fenced
/// block after "What `sam deploy --guided` asks"), each with its documented answer.
fn documented_questions() -> Vec<(String, String)> {
    let docs = std::fs::read_to_string(root().join("docs/operations.md")).expect("docs/operations.md");
    let start = docs.find("What `sam deploy --guided` asks").expect("the docs list the guided questions");
    let block = &docs[start..];
    let block = &block[block.find("```text\n").expect("a text block") + 8..];
    let block = &block[..block.find("```").expect("its end")];
    block
        .lines()
        .map(|l| {
            let (q, a) = l.rsplit_once("→").unwrap_or_else(|| panic!("`question → answer`: {l}"));
            (q.trim().to_owned(), a.trim().to_owned())
        })
        .collect()
}

/// The guided deploy, typed as the docs say: Enter everywhere but `y` for the three public
/// function URLs. It must reach SAM's first AWS call (a loopback listener stands in for
/// every AWS endpoint and refuses the dummy credentials) without a question asked twice.
#[test]
fn the_guided_deploy_reaches_aws_answering_as_the_docs_say() {
    let out = Command::new("python3")
        .arg(root().join("tests/tools/guided-deploy.py"))
        .arg(sam_cli())
        .arg(root())
        .output()
        .expect("run tests/tools/guided-deploy.py");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the driver's JSON");
    let tail = run["tail"].as_str().unwrap_or_default();
    assert_eq!(run["asked_twice"], serde_json::json!([]), "a question came back on Enter:\n{tail}");
    let calls = run["aws_calls"].as_array().expect("calls");
    assert!(!calls.is_empty(), "SAM never reached AWS:\n{tail}");
    assert_eq!(calls[0]["target"], "DescribeStacks", "its first call looks for the managed stack: {calls:?}");
    assert_eq!(calls[0]["authorization"], "AWS4-HMAC-SHA256", "signed with the dummy credentials");
    assert!(tail.contains("Looking for resources needed for deployment"), "{tail}");

    let asked: Vec<String> =
        run["questions"].as_array().expect("questions").iter().map(|q| q.as_str().expect("text").to_owned()).collect();
    let documented = documented_questions();
    let documented_text: Vec<&str> = documented.iter().map(|(q, _)| q.as_str()).collect();
    assert_eq!(asked, documented_text, "docs/operations.md lists exactly the questions --guided asks, in order");
    for (q, a) in &documented {
        let want = if q.contains("has no authentication") { "y" } else { "Enter" };
        assert_eq!(a, want, "{q}");
    }
    // Every template parameter is asked, and none hides its input (NoEcho cannot be skipped).
    let t = template();
    for (name, _) in t["Parameters"].as_mapping().expect("Parameters") {
        let name = name.as_str().expect("name");
        assert!(asked.iter().any(|q| q.starts_with(&format!("Parameter {name} ["))), "{name} with its default");
    }
}

/// Every name the environment gives a secret: its value is a `secretsmanager:` reference to
/// one of the stack's secrets (or the one RedisUrlSecretArn names), or empty.
fn secret_references(value: &Value, found: &mut BTreeSet<String>) -> Result<(), String> {
    match tag(value) {
        Some((f, arg)) if f == "Sub" => {
            let text = arg.as_str().ok_or("a !Sub of a string")?;
            let id = text
                .strip_prefix("secretsmanager:${")
                .and_then(|r| r.split_once('}'))
                .map(|(id, _)| id.to_owned())
                .ok_or_else(|| format!("not a secretsmanager: reference: {text}"))?;
            found.insert(id);
            Ok(())
        }
        Some((f, arg)) if f == "If" => {
            let branches = arg.as_sequence().ok_or("an !If list")?;
            for b in &branches[1..] {
                secret_references(b, found)?;
            }
            Ok(())
        }
        Some((f, arg)) if f == "Ref" && arg.as_str() == Some("AWS::NoValue") => Ok(()),
        Some((f, arg)) => Err(format!("!{f} {arg:?}")),
        None => match value.as_str() {
            Some("") => Ok(()),
            other => Err(format!("a plain value: {other:?}")),
        },
    }
}

/// Every `secretsmanager:${X}` anywhere in a value, whatever the branch.
fn referenced(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Tagged(t) => referenced(&t.value, found),
        Value::Sequence(items) => items.iter().for_each(|i| referenced(i, found)),
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("secretsmanager:${").and_then(|r| r.split_once('}')).map(|(id, _)| id) {
                found.insert(id.to_owned());
            }
        }
        _ => {}
    }
}

fn is_secret_name(variable: &str) -> bool {
    ["SECRET", "TOKEN", "PRIVATE_KEY", "PASSWORD"].iter().any(|s| variable.contains(s))
}

/// Each function's environment, the globals' merged under its own (as SAM merges them).
fn environment(t: &Value, f: &Value) -> BTreeMap<String, Value> {
    let mut env = BTreeMap::new();
    for source in [&t["Globals"]["Function"]["Environment"]["Variables"], &f["Properties"]["Environment"]["Variables"]]
    {
        for (k, v) in source.as_mapping().into_iter().flatten() {
            env.insert(k.as_str().expect("name").to_owned(), v.clone());
        }
    }
    env
}

#[test]
fn no_secret_reaches_a_function_environment_as_a_value() {
    let t = template();
    for (id, f) in functions(&t) {
        for (variable, value) in environment(&t, f) {
            if is_secret_name(&variable) {
                let mut found = BTreeSet::new();
                secret_references(&value, &mut found).unwrap_or_else(|e| panic!("{id} {variable}: {e}"));
            }
            // The cache's address carries no password; an external URL is a reference.
            if variable == "REDIS_URL" {
                let text = serde_yaml_ng::to_string(&value).expect("yaml");
                assert!(!text.contains('@'), "{id}: REDIS_URL holds credentials: {text}");
            }
        }
    }
    // The secrets are the stack's, under its key; the webhook secret is generated.
    let res = &t["Resources"];
    for secret in ["GithubWebhookSecret", "GithubCredentialsSecret", "SlackSigningSecret", "SlackBotTokenSecret"] {
        assert_eq!(res[secret]["Type"].as_str(), Some("AWS::SecretsManager::Secret"), "{secret}");
        assert!(
            matches!(tag(&res[secret]["Properties"]["KmsKeyId"]), Some((f, a)) if f == "Ref" && a.as_str() == Some("StackKey"))
        );
    }
    let generated = &res["GithubWebhookSecret"]["Properties"]["GenerateSecretString"];
    assert_eq!(generated["GenerateStringKey"].as_str(), Some("current"));
    assert!(generated["PasswordLength"].as_u64().is_some_and(|n| n >= 32), "a long generated key");
}

/// The secrets one role may read: the `Resource` of its `secretsmanager:GetSecretValue`
/// statements, plus those of the shared managed policies attached to it.
fn readable_secrets(t: &Value, role: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut statements: Vec<&Value> = Vec::new();
    let res = &t["Resources"];
    for p in res[role]["Properties"]["Policies"].as_sequence().into_iter().flatten() {
        statements.extend(p["PolicyDocument"]["Statement"].as_sequence().into_iter().flatten());
    }
    for (_, r) in res.as_mapping().expect("resources") {
        if r["Type"].as_str() == Some("AWS::IAM::ManagedPolicy") {
            let roles = serde_yaml_ng::to_string(&r["Properties"]["Roles"]).expect("yaml");
            if roles.lines().any(|l| l.trim_start_matches("- ").trim() == format!("!Ref {role}")) {
                statements.extend(r["Properties"]["PolicyDocument"]["Statement"].as_sequence().into_iter().flatten());
            }
        }
    }
    for s in statements {
        let actions = serde_yaml_ng::to_string(&s["Action"]).expect("yaml");
        assert!(!actions.contains("secretsmanager:*") && !actions.contains("\"*\""), "{role}: {actions}");
        if !actions.contains("secretsmanager:GetSecretValue") {
            continue;
        }
        let resource = &s["Resource"];
        let mut refs: Vec<&Value> = vec![resource];
        if let Some((f, arg)) = tag(resource)
            && f == "If"
        {
            refs = arg.as_sequence().expect("if")[1..].iter().collect();
        }
        for r in refs {
            let (f, arg) = tag(r).unwrap_or_else(|| panic!("{role}: a secret named, not {r:?}"));
            assert_eq!(f, "Ref", "{role}");
            out.insert(arg.as_str().expect("id").to_owned());
        }
    }
    out
}

#[test]
fn each_function_reads_only_the_secrets_it_uses() {
    let t = template();
    for (id, f) in functions(&t) {
        let role = match tag(&f["Properties"]["Role"]) {
            Some((func, arg)) if func == "GetAtt" => arg.as_str().expect("x.Arn").trim_end_matches(".Arn").to_owned(),
            other => panic!("{id}: its own role, not SAM's generated one: {other:?}"),
        };
        let mut used = BTreeSet::new();
        for value in environment(&t, f).values() {
            referenced(value, &mut used);
        }
        // RedisUrlSecretArn is a parameter: the shared policy names it as `!Ref RedisUrlSecretArn`.
        assert_eq!(readable_secrets(&t, &role), used, "{id}: the secrets its role reads are the ones it references");
    }
    // The public functions hold no GitHub or Slack API credential.
    for public in ["GithubWebhookFunction", "SlackWebhookFunction", "HealthFunction"] {
        let env = environment(&t, &t["Resources"][public]);
        for held in ["GITHUB_TOKEN", "GITHUB_APP_PRIVATE_KEY", "SLACK_BOT_TOKEN"] {
            assert!(!env.contains_key(held), "{public} holds {held}");
        }
    }
}

#[test]
fn roles_are_least_privilege() {
    let t = template();
    let res = &t["Resources"];
    for (id, _) in functions(&t) {
        let role = format!("{}Role", id.trim_end_matches("Function"));
        assert_eq!(res[&role]["Type"].as_str(), Some("AWS::IAM::Role"), "{id}");
        assert!(res[&role]["Properties"]["ManagedPolicyArns"].is_null(), "{role}: no AWS managed policy on *");
        let text = serde_yaml_ng::to_string(&res[&role]["Properties"]["Policies"]).expect("yaml");
        assert!(!text.contains("Resource: '*'") && !text.contains("Resource: \"*\""), "{role}: {text}");
        for action in ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"] {
            assert_eq!(text.contains(action), id == "DispatcherFunction", "{role}: {action}");
        }
        if text.contains("sqs:") {
            assert!(text.contains("!GetAtt WorkQueue.Arn"), "{role}: the work queue only");
        }
    }
    // Network interfaces only in a VPC.
    let vpc = &res["VpcNetworkInterfacesPolicy"];
    assert_eq!(vpc["Condition"].as_str(), Some("InVpc"));
    // Egress to Redis only to the cache's group.
    let sg =
        serde_yaml_ng::to_string(&res["FunctionSecurityGroup"]["Properties"]["SecurityGroupEgress"]).expect("yaml");
    assert!(!sg.contains("6379"), "{sg}");
    let to_cache = &res["FunctionToCache"]["Properties"];
    assert!(
        matches!(tag(&to_cache["DestinationSecurityGroupId"]), Some((f, a)) if f == "Ref" && a.as_str() == Some("CacheSecurityGroup"))
    );
    // The cache authenticates: a user group with a password user, the password from the store.
    let cache = &res["Cache"]["Properties"];
    assert!(matches!(tag(&cache["UserGroupId"]), Some((f, a)) if f == "Ref" && a.as_str() == Some("CacheUserGroup")));
    let user = serde_yaml_ng::to_string(&res["CacheFunctionsUser"]["Properties"]).expect("yaml");
    assert!(user.contains("Type: password") && user.contains("{{resolve:secretsmanager:${RedisAuthSecret}"), "{user}");
    let default_user = serde_yaml_ng::to_string(&res["CacheDefaultUser"]["Properties"]).expect("yaml");
    assert!(default_user.contains("AccessString: off"), "the default user can do nothing: {default_user}");
}

#[test]
fn the_extension_layer_comes_from_a_mapping_of_every_region_aws_lists() {
    let listed: BTreeMap<String, String> =
        std::fs::read_to_string(root().join("deploy/parameters-secrets-extension-arm64.tsv"))
            .expect("the list")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (region, arn) = l.split_once('\t').expect("region<TAB>arn");
                (region.to_owned(), arn.trim().to_owned())
            })
            .collect();
    assert!(listed.len() >= 38, "{} regions", listed.len());
    let t = template();
    let mapping: BTreeMap<String, String> = t["Mappings"]["SecretsExtension"]
        .as_mapping()
        .expect("the mapping")
        .iter()
        .map(|(k, v)| (k.as_str().expect("region").to_owned(), v["Arn"].as_str().expect("Arn").to_owned()))
        .collect();
    assert_eq!(mapping, listed);
    for (region, arn) in &mapping {
        assert!(arn.contains(&format!(":lambda:{region}:")) && arn.contains("Extension-Arm64:"), "{arn}");
    }
    let layers = serde_yaml_ng::to_string(&t["Globals"]["Function"]["Layers"]).expect("yaml");
    assert!(
        layers.contains("!FindInMap") && layers.contains("SecretsExtension") && layers.contains("AWS::Region"),
        "{layers}"
    );
    assert!(t["Parameters"]["ParametersExtensionLayerArn"].is_null(), "no deployer looks it up");
}

/// CloudFormation's rule functions, over parameter values: enough of them to run the
/// template's `Rules`.
fn rule(v: &Value, params: &BTreeMap<&str, Vec<&str>>) -> RuleValue {
    let (f, arg) = match tag(v) {
        Some(x) => x,
        None => return RuleValue::Text(v.as_str().expect("a string").to_owned()),
    };
    let args = || arg.as_sequence().expect("a list");
    let b = |x: RuleValue| match x {
        RuleValue::Bool(b) => b,
        other => panic!("not a condition: {other:?}"),
    };
    match f.as_str() {
        "Ref" => {
            let values = &params[arg.as_str().expect("name")];
            if values.len() == 1 {
                RuleValue::Text(values[0].to_owned())
            } else {
                RuleValue::List(values.iter().map(|s| s.to_string()).collect())
            }
        }
        "Equals" => RuleValue::Bool(rule(&args()[0], params) == rule(&args()[1], params)),
        "Not" => RuleValue::Bool(!b(rule(&args()[0], params))),
        "And" => RuleValue::Bool(args().iter().all(|a| b(rule(a, params)))),
        "Or" => RuleValue::Bool(args().iter().any(|a| b(rule(a, params)))),
        "EachMemberEquals" => {
            let list = match rule(&args()[0], params) {
                RuleValue::List(l) => l,
                RuleValue::Text(t) => vec![t],
                other => panic!("{other:?}"),
            };
            let RuleValue::Text(want) = rule(&args()[1], params) else { panic!("a string") };
            RuleValue::Bool(list.iter().all(|m| *m == want))
        }
        other => panic!("a rule function this test does not know: {other}"),
    }
}

#[derive(Debug, PartialEq)]
enum RuleValue {
    Bool(bool),
    Text(String),
    List(Vec<String>),
}

/// The assertions that fail for these parameters (each rule whose condition holds).
fn refused(t: &Value, params: &BTreeMap<&str, Vec<&str>>) -> Vec<String> {
    let mut out = Vec::new();
    for (_, r) in t["Rules"].as_mapping().expect("Rules") {
        let applies = r.get("RuleCondition").is_none_or(|c| rule(c, params) == RuleValue::Bool(true));
        if !applies {
            continue;
        }
        for a in r["Assertions"].as_sequence().expect("assertions") {
            if rule(&a["Assert"], params) != RuleValue::Bool(true) {
                out.push(a["AssertDescription"].as_str().expect("a description").to_owned());
            }
        }
    }
    out
}

#[test]
fn the_rules_refuse_the_vpc_combinations_that_would_fail_mid_stack() {
    let t = template();
    let params = |network: &'static str, vpc: &'static str, subnets: Vec<&'static str>| {
        BTreeMap::from([("Network", vec![network]), ("VpcId", vec![vpc]), ("SubnetIds", subnets)])
    };
    // Accepted: the defaults, and an existing VPC with its subnets.
    assert_eq!(refused(&t, &params("create", "", vec![""])), Vec::<String>::new());
    assert_eq!(refused(&t, &params("none", "", vec![""])), Vec::<String>::new());
    assert_eq!(refused(&t, &params("existing", "vpc-0abc", vec!["subnet-1", "subnet-2"])), Vec::<String>::new());
    // Refused, each naming what is missing.
    let no_subnets = refused(&t, &params("existing", "vpc-0abc", vec![""]));
    assert!(no_subnets.len() == 1 && no_subnets[0].contains("SubnetIds"), "{no_subnets:?}");
    let no_vpc = refused(&t, &params("existing", "", vec!["subnet-1"]));
    assert!(no_vpc.len() == 1 && no_vpc[0].contains("VpcId"), "{no_vpc:?}");
    for stray in [params("create", "vpc-0abc", vec![""]), params("none", "", vec!["subnet-1"])] {
        assert_eq!(refused(&t, &stray).len(), 1, "VpcId or SubnetIds without Network=existing: {stray:?}");
    }
}

#[test]
fn vpc_mode_survives_real_vpcs() {
    let t = template();
    let res = &t["Resources"];
    // The SQS endpoint is optional: a VPC may have one already (private DNS would collide).
    assert_eq!(res["SqsInterfaceEndpoint"]["Condition"].as_str(), Some("CreateSqsEndpoint"));
    let condition = serde_yaml_ng::to_string(&t["Conditions"]["CreateSqsEndpoint"]).expect("yaml");
    assert!(condition.contains("SqsEndpoint"), "{condition}");
    // A cache name a replacement can take: unique per stack, new with CacheGeneration.
    let name = serde_yaml_ng::to_string(&res["Cache"]["Properties"]["ServerlessCacheName"]).expect("yaml");
    assert!(name.contains("AWS::StackId") && name.contains("CacheGeneration") && !name.contains("StackName"), "{name}");
    // Dashboards are global: the region is in the name.
    let dashboard = serde_yaml_ng::to_string(&res["Dashboard"]["Properties"]["DashboardName"]).expect("yaml");
    assert!(dashboard.contains("${AWS::Region}"), "{dashboard}");
    // The default creates the network and the cache, so the functions share one Redis.
    assert_eq!(t["Parameters"]["Network"]["Default"].as_str(), Some("create"));
    for id in ["Vpc", "NatGateway", "PrivateSubnetA", "PrivateSubnetB"] {
        assert_eq!(res[id]["Condition"].as_str(), Some("CreateNetwork"), "{id}");
    }
    let vpc = &res["Vpc"]["Properties"];
    assert_eq!((vpc["EnableDnsSupport"].as_bool(), vpc["EnableDnsHostnames"].as_bool()), (Some(true), Some(true)));
    // Per-instance memory says so in the outputs.
    let shared = serde_yaml_ng::to_string(&t["Outputs"]["SharedState"]["Value"]).expect("yaml");
    assert!(shared.contains("per-instance memory"), "{shared}");
}

/// checkov over the template: every finding is either fixed or skipped in the template with
/// its reason (a `checkov: skip` entry with a comment).
#[test]
fn checkov_finds_nothing_unexplained() {
    let checkov = std::env::var("CHECKOV").expect("CHECKOV names checkov; run the suite with scripts/test");
    let out = Command::new(&checkov)
        .args(["--framework", "cloudformation", "--output", "json", "--quiet", "--compact", "-f"])
        .arg(root().join("template.yaml"))
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false")
        .output()
        .expect("run checkov");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("checkov's JSON: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    let summary = &report["summary"];
    assert!(summary["passed"].as_u64().is_some_and(|n| n > 100), "{summary}");
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {}", c["check_id"], c["resource"]))
        .collect();
    assert!(failed.is_empty(), "checkov findings with no reason in the template: {failed:?}");
    for skipped in report["results"]["skipped_checks"].as_array().into_iter().flatten() {
        let why = skipped["check_result"]["suppress_comment"].as_str().unwrap_or_default();
        assert!(why.len() > 20, "{} on {} is skipped without a reason", skipped["check_id"], skipped["resource"]);
    }
}

/// `scripts/set-secrets`, typed at in a pseudo-terminal as a user would, against moto's Secrets
/// Manager and CloudFormation with the real AWS CLI (tests/tools/set-secrets-session.py): a
/// too-short token is refused and asked again, nothing typed is echoed, Enter keeps what is
/// stored, the PEM file's content is stored; then the two-step webhook rotation.
#[test]
fn set_secrets_stores_what_is_typed_and_rotates_the_webhook_secret() {
    let bin = std::env::var("AWS_CLI_BIN").expect("AWS_CLI_BIN: run the suite with scripts/test");
    let moto = std::env::var("AETHERIUM_TEST_SQS_ENDPOINT").expect("moto's endpoint: run the suite with scripts/test");
    let out = Command::new("python3")
        .arg(root().join("tests/tools/set-secrets-session.py"))
        .args([&bin, &moto])
        .arg(root())
        .output()
        .expect("run the session");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let first = &r["first"];
    let said = first["transcript"].as_str().expect("transcript");
    assert_eq!((&first["status"], &first["unanswered"]), (&serde_json::json!(0), &serde_json::json!(0)), "{said}");
    assert!(said.contains("refused: a GitHub token is 20 or more characters"), "{said}");
    for typed in [&r["token"], &r["signing"]] {
        assert!(!said.contains(typed.as_str().expect("value")), "a typed secret was echoed: {said}");
    }
    let after = &r["after_first"];
    assert_eq!(after["GithubCredentialsSecretArn"]["token"], r["token"]);
    assert_eq!(after["GithubCredentialsSecretArn"]["app_private_key"], r["pem"]);
    assert_eq!(after["SlackSigningSecretArn"]["signing_secret"], r["signing"]);
    assert_eq!(after["SlackBotTokenSecretArn"]["bot_token"], "", "Enter keeps what is stored");
    let generated = &after["GithubWebhookSecretArn"]["current"];
    assert_eq!(after["GithubWebhookSecretArn"]["previous"], "");

    let rotated = &r["after_rotate"]["GithubWebhookSecretArn"];
    assert_eq!(&rotated["previous"], generated, "the old secret stays accepted during the rotation");
    let new = rotated["current"].as_str().expect("current");
    assert!(new.len() == 40 && new.chars().all(|c| c.is_ascii_alphanumeric()) && new != generated, "{new}");
    assert!(
        r["rotate"]["transcript"].as_str().is_some_and(|t| t.contains(new)),
        "the new secret is printed to set in GitHub"
    );
    let finished = &r["after_finish"]["GithubWebhookSecretArn"];
    assert_eq!((finished["current"].as_str(), &finished["previous"]), (Some(new), &serde_json::json!("")));
}
