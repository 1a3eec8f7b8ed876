//! Every envelope in events/, through the real Lambda entry point: each function's binary
//! talking to a Lambda Runtime API (the emulator in the harness), as inside Lambda.

use aetherium_tests::fixtures::envelope;
use aetherium_tests::runtime_api::{Function, Outcome, RuntimeApi};
use aetherium_tests::samples::{self, EXAMPLE_ENV, expected_status, fresh};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

fn status_of(outcome: &Outcome) -> (u16, Value) {
    let Outcome::Response(body) = outcome else { panic!("the function failed: {outcome:?}") };
    let v: Value = serde_json::from_str(body).expect("response JSON");
    (
        v["statusCode"].as_u64().unwrap_or(0) as u16,
        serde_json::from_str(v["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_envelope_through_its_functions_binary() {
    let github = samples::github_stand_in().await;
    // The repository hook github-redeliver watches: one delivery that failed.
    let failed = aetherium_tests::github_fake::delivery(88, "guid-lost", chrono::Utc::now(), 502);
    Mock::given(method("GET"))
        .and(path("/repos/myorg/myrepo/hooks/1/deliveries"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([failed])))
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/myorg/myrepo/hooks/1/deliveries/88/attempts"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
        .expect(1)
        .mount(&github)
        .await;
    let gh_url = github.uri();
    let mut env = EXAMPLE_ENV.to_vec();
    env.extend([
        ("GITHUB_API_URL", gh_url.as_str()),
        ("GITHUB_TOKEN", "ghp_example"),
        ("GITHUB_REDELIVERY_HOOK", "myorg/myrepo#1"),
    ]);

    let files = samples::all();
    let functions: std::collections::BTreeSet<&str> = files.iter().filter_map(|f| f.split('/').next()).collect();
    let crates: std::collections::BTreeSet<String> =
        std::fs::read_dir(aetherium_tests::fixtures::root().join("functions"))
            .expect("functions/")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
    assert_eq!(
        functions.iter().map(|s| s.to_string()).collect::<std::collections::BTreeSet<_>>(),
        crates,
        "events/ covers every function"
    );

    for file in &files {
        let function = file.split('/').next().expect("function");
        if function == "bus-bridge" {
            // It listens on Redis: bus_bridge.rs runs its samples against one.
            continue;
        }
        let api = RuntimeApi::start().await;
        let _f = Function::spawn(function, &api, &env);
        let outcome = api.invoke(&fresh(file)).await;
        if function == "dispatcher" {
            let Outcome::Response(body) = &outcome else { panic!("{file}: {outcome:?}") };
            let v: Value = serde_json::from_str(body).expect("json");
            assert_eq!(
                v["batchItemFailures"].as_array().map(Vec::len),
                Some(1),
                "{file}: only the bad record fails: {v}"
            );
            continue;
        }
        if function == "github-redeliver" {
            let Outcome::Response(body) = &outcome else { panic!("{file}: {outcome:?}") };
            let report: Value = serde_json::from_str(body).expect("json");
            assert_eq!((&report["status"], &report["redelivered"]), (&json!("done"), &json!(1)), "{file}: {report}");
            continue;
        }
        let (status, body) = status_of(&outcome);
        let want = expected_status(file);
        assert_eq!(status, want, "{file}: {body}");
    }
    github.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_base64_envelope_gets_400_from_the_binary_not_a_crash() {
    let api = RuntimeApi::start().await;
    let _f = Function::spawn("github-webhook", &api, EXAMPLE_ENV);
    let mut doc: Value =
        serde_json::from_str(&envelope("github-webhook/pull_request-opened-base64.json")).expect("json");
    doc["body"] = "!!! not base64 !!!".into();
    let (status, body) = status_of(&api.invoke(&doc.to_string()).await);
    assert_eq!(status, 400, "{body}");
    // The same process keeps serving.
    let (status, _) = status_of(&api.invoke(&envelope("github-webhook/pull_request-opened.json")).await);
    assert_eq!(status, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_function_reports_an_init_error_naming_the_setting() {
    let api = RuntimeApi::start().await;
    let mut f = Function::spawn("dispatcher", &api, &[("GITHUB_APP_ID", "1"), ("GITHUB_APP_PRIVATE_KEY", "not a key")]);
    let (ok, logs) = f.wait_exit(std::time::Duration::from_secs(10));
    assert!(!ok, "the process fails its init");
    assert!(logs.contains("start-up failed") && logs.contains("GITHUB_APP_PRIVATE_KEY"), "{logs}");
    assert!(api.first_next().is_none(), "it never asked for work");
}

/// Secrets kept in SSM Parameter Store and Secrets Manager, read through a stand-in for the
/// AWS Parameters and Secrets Lambda Extension's local endpoint: on the first invocation (AWS
/// supports the extension only then), once per instance, with the function's session token;
/// and the signed samples verify with what it returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_the_parameters_and_secrets_extension_once_per_instance() {
    use wiremock::matchers::{header, query_param};
    let extension = aetherium_tests::stand_in::start().await;
    Mock::given(method("GET"))
        .and(path("/systemsmanager/parameters/get"))
        .and(query_param("name", "/aetherium/github-webhook-secret"))
        .and(query_param("withDecryption", "true"))
        .and(header("X-Aws-Parameters-Secrets-Token", "session-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Parameter": {
            "Name": "/aetherium/github-webhook-secret", "Type": "SecureString", "Value": "aetherium-example-secret"}})))
        // Two instances (two functions), each asking once whatever its invocations.
        .expect(2)
        .mount(&extension)
        .await;
    Mock::given(method("GET"))
        .and(path("/secretsmanager/get"))
        .and(query_param("secretId", "aetherium/api-token"))
        .and(header("X-Aws-Parameters-Secrets-Token", "session-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Name": "aetherium/api-token",
            "SecretString": "aetherium-example-token"})))
        .expect(2)
        .mount(&extension)
        .await;
    let port = extension.address().port().to_string();
    let env = [
        ("GITHUB_WEBHOOK_SECRET", "ssm:/aetherium/github-webhook-secret"),
        ("AETHERIUM_API_TOKEN", "secretsmanager:aetherium/api-token"),
        ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port.as_str()),
        ("AWS_SESSION_TOKEN", "session-token"),
    ];
    for (function, file) in
        [("github-webhook", "github-webhook/pull_request-opened.json"), ("events", "events/task-completed.json")]
    {
        let api = RuntimeApi::start().await;
        let _f = Function::spawn(function, &api, &env);
        for _ in 0..2 {
            let (status, body) = status_of(&api.invoke(&envelope(file)).await);
            assert!(matches!(status, 200 | 202), "{file}: {status} {body}");
        }
    }
    extension.verify().await;
}

/// The stack's shape: one JSON secret holds the current and previous webhook secret, read as
/// `secretsmanager:<arn>#<key>` in one request; the empty `previous` leaves rotation off. The
/// extension is not listening at first, then answers "not ready" (as during INIT): the
/// function never fails its start, and serves its first invocation with the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_ready_extension_is_waited_for_and_a_json_secret_gives_each_key() {
    use wiremock::matchers::query_param;
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:GithubWebhookSecret-AbCdEf";
    // Reserve a port, start the function against it with nothing listening, then listen.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = probe.local_addr().expect("addr").port();
    drop(probe);
    let api = RuntimeApi::start().await;
    let current = format!("secretsmanager:{arn}#current");
    let previous = format!("secretsmanager:{arn}#previous");
    let port_text = port.to_string();
    let env = [
        ("GITHUB_WEBHOOK_SECRET", current.as_str()),
        ("GITHUB_WEBHOOK_SECRET_PREVIOUS", previous.as_str()),
        ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port_text.as_str()),
        ("AWS_SESSION_TOKEN", "session-token"),
    ];
    let f = Function::spawn_capturing("github-webhook", &api, &env);
    let invocation = {
        let envelope = envelope("github-webhook/pull_request-opened.json");
        let api = &api;
        async move { api.invoke(&envelope).await }
    };
    let extension = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the reserved port");
        let server = wiremock::MockServer::builder().listener(listener).start().await;
        Mock::given(method("GET"))
            .and(path("/secretsmanager/get"))
            .respond_with(ResponseTemplate::new(400).set_body_string("not ready to serve traffic, please wait"))
            .up_to_n_times(3)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/secretsmanager/get"))
            .and(query_param("secretId", arn))
            .and(wiremock::matchers::header("X-Aws-Parameters-Secrets-Token", "session-token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ARN": arn,
                "SecretString": "{\"current\": \"aetherium-example-secret\", \"previous\": \"\"}"})))
            .with_priority(2)
            .mount(&server)
            .await;
        server
    };
    let (outcome, server) = tokio::join!(invocation, extension);
    let (status, body) = status_of(&outcome);
    assert_eq!(status, 202, "{body}\n{}", f.logs());
    let asked = server.received_requests().await.expect("recorded");
    assert_eq!(asked.len(), 4, "three not-ready answers, then one read of the one secret for both keys");
    let (status, _) = status_of(&api.invoke(&envelope("github-webhook/pull_request-opened.json")).await);
    assert_eq!(status, 200, "the second invocation uses what the first read (a duplicate of the same delivery)");
    assert_eq!(server.received_requests().await.expect("recorded").len(), 4, "no second read");
    assert!(!f.logs().contains("aetherium-example-secret"), "the value is never logged");
}

/// The extension refuses: the invocation fails naming the variable, never a value; the
/// function stays up and asks again on the next invocation (fail closed, and recover once the
/// secret or permission is fixed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_secret_fails_the_invocation_naming_the_variable() {
    let refusing = aetherium_tests::stand_in::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(400)).expect(2).mount(&refusing).await;
    let port = refusing.address().port().to_string();
    let api = RuntimeApi::start().await;
    let f = Function::spawn_capturing(
        "github-webhook",
        &api,
        &[("GITHUB_WEBHOOK_SECRET", "ssm:/aetherium/missing"), ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", &port)],
    );
    for _ in 0..2 {
        let outcome = api.invoke(&envelope("github-webhook/pull_request-opened.json")).await;
        assert!(matches!(&outcome, Outcome::Error(e) if e.contains("GITHUB_WEBHOOK_SECRET")), "{outcome:?}");
    }
    let logs = f.logs();
    assert!(logs.contains("GITHUB_WEBHOOK_SECRET") && logs.contains("HTTP 400"), "{logs}");
    refusing.verify().await;
}

/// The public health function holds no GitHub or Slack credential: it shows what the
/// dispatcher's scheduled probe (template.yaml's HealthProbe event) found, shared through a
/// real Redis that, as the stack's cache, refuses the default user and admits only the
/// functions' user with its password (REDIS_USERNAME and REDIS_PASSWORD beside REDIS_URL).
/// Before any probe health says so; on per-instance memory it is degraded, naming
/// `shared_state`. On standalone Redis and on the cluster mode ElastiCache Serverless speaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_shows_what_the_dispatchers_probe_shared_through_redis() {
    use aetherium_tests::redis_server::{RedisServer, Shape};
    for shape in [Shape::Standalone, Shape::OneNodeCluster] {
        health_through_an_authenticated_redis(RedisServer::start_shape(shape).await).await;
    }
}

async fn health_through_an_authenticated_redis(redis: aetherium_tests::redis_server::RedisServer) {
    // As the stack's user group: the default user off, one password user for the functions.
    for node in redis.node_urls() {
        let mut c = redis::Client::open(node).expect("url").get_multiplexed_async_connection().await.expect("connect");
        let _: () = redis::cmd("ACL")
            .arg(&["SETUSER", "aetherium", "on", ">fn-password-123", "~*", "&*", "+@all"])
            .query_async(&mut c)
            .await
            .expect("ACL SETUSER aetherium");
        let _: () =
            redis::cmd("ACL").arg(&["SETUSER", "default", "off"]).query_async(&mut c).await.expect("default off");
    }
    let github = samples::github_stand_in().await;
    let slack = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .and(path("/auth.test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "user_id": "U1"})))
        .expect(1)
        .mount(&slack)
        .await;
    let url = redis.url();
    let (github_url, slack_url) = (github.uri(), slack.uri());
    let login = [("REDIS_URL", url.as_str()), ("REDIS_USERNAME", "aetherium"), ("REDIS_PASSWORD", "fn-password-123")];
    let shared: Vec<(&str, &str)> =
        // No bus bridge runs here (BusBridgeEnabled=false): health expects no heartbeat.
        login.iter().copied().chain([("AETHERIUM_HEALTH_REMOTE", "github,slack"), ("AETHERIUM_BUS_BRIDGE", "false")]).collect();
    let component = |body: &Value, name: &str| body["components"][name].as_str().unwrap_or_default().to_owned();

    // Without the password the cache refuses the functions.
    let refused_api = RuntimeApi::start().await;
    let _refused = Function::spawn("health", &refused_api, &[("REDIS_URL", url.as_str())]);
    let (status, body) = status_of(&refused_api.invoke(&envelope("health/get.json")).await);
    assert_eq!(status, 503, "{body}");
    assert_ne!(component(&body, "event_bus"), "healthy", "the default user is off: {body}");

    let health_api = RuntimeApi::start().await;
    let _health = Function::spawn("health", &health_api, &shared);
    let (status, body) = status_of(&health_api.invoke(&envelope("health/get.json")).await);
    assert_eq!(status, 503, "{body}");
    assert_eq!(component(&body, "event_bus"), "healthy", "logged in as the functions' user: {body}");
    assert!(component(&body, "github").contains("not checked yet"), "{body}");
    assert!(body["components"]["shared_state"].is_null(), "Redis is shared: {body}");

    let dispatcher_api = RuntimeApi::start().await;
    let mut dispatcher_env = login.to_vec();
    dispatcher_env.extend([
        ("GITHUB_TOKEN", "ghp_probe"),
        ("GITHUB_API_URL", github_url.as_str()),
        ("SLACK_BOT_TOKEN", "xoxb-probe"),
        ("SLACK_API_URL", slack_url.as_str()),
    ]);
    let _dispatcher = Function::spawn("dispatcher", &dispatcher_api, &dispatcher_env);
    let Outcome::Response(probe) = dispatcher_api.invoke(r#"{"aetherium": "health-probe"}"#).await else {
        panic!("the probe failed")
    };
    let probe: Value = serde_json::from_str(&probe).expect("json");
    assert_eq!((&probe["components"]["github"], &probe["components"]["slack"]), (&json!("healthy"), &json!("healthy")));
    slack.verify().await;

    // A new health instance (the first one keeps its reading for 5 s): both shown healthy.
    let health_api = RuntimeApi::start().await;
    let _health = Function::spawn("health", &health_api, &shared);
    let (status, body) = status_of(&health_api.invoke(&envelope("health/get.json")).await);
    assert_eq!((status, &body["status"]), (200, &json!("ok")), "{body}");
    assert_eq!(component(&body, "github"), "healthy", "{body}");

    // Without Redis, in Lambda: degraded, and the component says why.
    let memory_api = RuntimeApi::start().await;
    let _memory = Function::spawn("health", &memory_api, &[]);
    let (status, body) = status_of(&memory_api.invoke(&envelope("health/get.json")).await);
    assert_eq!(status, 503, "{body}");
    assert!(component(&body, "shared_state").contains("per-instance memory"), "{body}");

    // Neither a batch nor the probe: an error, not a silent success.
    let outcome = dispatcher_api.invoke(r#"{"something": "else"}"#).await;
    assert!(matches!(outcome, Outcome::Error(_)), "{outcome:?}");
}

/// A wrong secret after a deploy, as the deployed functions see it: every request is a 401,
/// which is no Lambda error, and each one writes an EMF count of the metric, namespace and
/// dimension that GithubSignaturesRejectedAlarm and SlackSignaturesRejectedAlarm watch. Twelve
/// refusals pass the alarms' threshold of 10 in 5 minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_signatures_moves_the_metric_the_alarm_watches() {
    use aetherium::observe::metrics::SIGNATURES_REJECTED;
    for (function, file, source, env) in [
        (
            "github-webhook",
            "github-webhook/pull_request-opened.json",
            "github",
            ("GITHUB_WEBHOOK_SECRET", "rotated-in-github-only"),
        ),
        ("slack-webhook", "slack-webhook/app-mention.json", "slack", ("SLACK_SIGNING_SECRET", "not-the-apps-secret")),
    ] {
        let api = RuntimeApi::start().await;
        let f = Function::spawn_capturing(function, &api, &[env, ("AETHERIUM_API_TOKEN", "t")]);
        for _ in 0..12 {
            let (status, body) = status_of(&api.invoke(&fresh(file)).await);
            assert_eq!(status, 401, "{function}: {body}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let counted: i64 = f
            .logs()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|doc| doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Aetherium")
            .filter(|doc| doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == SIGNATURES_REJECTED)
            .inspect(|doc| assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["source"]])))
            .filter(|doc| doc["source"] == source)
            .map(|doc| doc[SIGNATURES_REJECTED].as_i64().unwrap_or(0))
            .sum();
        assert_eq!(counted, 12, "{function}: one count per refusal, source={source}");
    }
}
