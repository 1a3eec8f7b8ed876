//! Slack: requests shaped as Slack sends them (fixtures from Slack's docs), signed as Slack
//! signs them; a real HTTP server standing in for slack.com and hooks.slack.com.

use aetherium::Event;
use aetherium::edge::api::Endpoint;
use aetherium::engine::clock::Clock;
use aetherium::observe::health::HealthCache;
use aetherium_tests::TestApp;
use aetherium_tests::app::{Builder, slack_request};
use aetherium_tests::fixtures::{SLACK_SECRET, slack, slack_headers};
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::matchers::{body_json, body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BOT: &str = "xoxb-test-bot-token";
const WEBHOOK: Endpoint = Endpoint::Webhook("slack");

/// An app with Slack pointed at `server` (its API and its response_url host), `extra` on top.
fn builder(server: &MockServer, extra: &[(&str, &str)]) -> Builder {
    let uri = server.uri();
    let mut env = vec![
        ("SLACK_SIGNING_SECRET", SLACK_SECRET),
        ("SLACK_BOT_TOKEN", BOT),
        ("SLACK_API_URL", uri.as_str()),
        ("SLACK_RESPONSE_URL_BASE", uri.as_str()),
    ];
    env.extend_from_slice(extra);
    TestApp::builder().env(&env).builtin()
}

async fn setup_with(server: &MockServer, extra: &[(&str, &str)]) -> TestApp {
    builder(server, extra).build().await
}

async fn setup(server: &MockServer) -> TestApp {
    setup_with(server, &[]).await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A POST as Slack sends one, with each of its two signature headers when given.
fn request(content_type: &str, ts: Option<&str>, sig: Option<&str>, extra: &[(&str, &str)]) -> http::request::Builder {
    let mut b = http::Request::builder().method("POST").header("content-type", content_type);
    if let Some(t) = ts {
        b = b.header("x-slack-request-timestamp", t);
    }
    if let Some(s) = sig {
        b = b.header("x-slack-signature", s);
    }
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b
}

async fn send(t: &TestApp, req: http::request::Builder, body: &[u8]) -> (u16, Value) {
    t.call(WEBHOOK, req, body).await.pair()
}

/// Signed now, as Slack signs it, with `extra` headers (a retry's).
async fn signed(t: &TestApp, content_type: &str, body: &[u8], extra: &[(&str, &str)]) -> (u16, Value) {
    if extra.is_empty() {
        return t.slack(content_type, body).await.pair();
    }
    let mut req = slack_request(content_type, body, now());
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    send(t, req, body).await
}

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// Slack's documented slash command body with `command` and `text` set.
fn command(cmd: &str, text: &str) -> Vec<u8> {
    aetherium_tests::fixtures::slash_command_body(cmd, text)
}

// ---- verification ----

#[tokio::test]
async fn slacks_documented_request_verifies_with_an_injected_clock_and_is_stale_otherwise() {
    let server = aetherium_tests::stand_in::start().await;
    let mut s = setup_with(&server, &[("SLACK_SIGNING_SECRET", "8f742231b10e8888abcd99yyyzzz85a5")]).await;
    let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    let (status, answer) = send(&s, request(FORM, Some("1531420618"), Some(sig), &[]), body).await;
    assert_eq!(status, 401, "real clock: outside the 5-minute window: {answer}");
    s.app = s.app.with_clock(Clock::fixed(1531420618 + 60));
    let (status, answer) = send(&s, request(FORM, Some("1531420618"), Some(sig), &[]), body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["response_type"], "ephemeral");
    assert!(answer["text"].as_str().is_some_and(|t| t.contains("Unknown command `/webhook-collect`")), "{answer}");
}

#[tokio::test]
async fn every_bad_request_is_refused_and_nothing_is_queued() {
    let server = aetherium_tests::stand_in::start().await;
    let s = setup(&server).await;
    let body = slack("event_callback-app_mention.json");
    let (ts, sig) = slack_headers(&body, now());
    let old = (now() - 301).to_string();
    let future = (now() + 301).to_string();
    let old_sig = aetherium::integrations::slack::signature::sign_slack(SLACK_SECRET, now() - 301, &body);
    let future_sig = aetherium::integrations::slack::signature::sign_slack(SLACK_SECRET, now() + 301, &body);
    let wrong = aetherium::integrations::slack::signature::sign_slack("wrong-secret", now(), &body);
    let changed = [&body[..body.len() - 2], b" }"].concat();
    let cases: Vec<(&str, http::request::Builder, &[u8], u16)> = vec![
        ("no signature", request(JSON, Some(&ts), None, &[]), &body, 401),
        ("no timestamp", request(JSON, None, Some(&sig), &[]), &body, 401),
        ("malformed timestamp", request(JSON, Some("yesterday"), Some(&sig), &[]), &body, 401),
        ("wrong secret", request(JSON, Some(&ts), Some(&wrong), &[]), &body, 401),
        ("v1 prefix", request(JSON, Some(&ts), Some(&sig.replacen("v0=", "v1=", 1)), &[]), &body, 401),
        ("timestamp swapped", request(JSON, Some(&(now() - 1).to_string()), Some(&sig), &[]), &body, 401),
        ("5 minutes old, correctly signed", request(JSON, Some(&old), Some(&old_sig), &[]), &body, 401),
        ("5 minutes ahead, correctly signed", request(JSON, Some(&future), Some(&future_sig), &[]), &body, 401),
        ("body changed", request(JSON, Some(&ts), Some(&sig), &[]), &changed, 401),
    ];
    for (name, req, body, want) in cases {
        let (status, answer) = send(&s, req, body).await;
        assert_eq!(status, want, "{name}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{name}: {answer}");
    }
    let garbage = b"neither json nor a command";
    let (status, answer) = signed(&s, FORM, garbage, &[]).await;
    assert_eq!(status, 400, "verified but unparseable: {answer}");
    assert!(s.queued().await.is_empty());
}

#[tokio::test]
async fn no_signing_secret_fails_closed() {
    let t = TestApp::with_env(&[]).await;
    let body = slack("url_verification.json");
    let (ts, sig) = slack_headers(&body, now());
    let (status, _) = send(&t, request(JSON, Some(&ts), Some(&sig), &[]), &body).await;
    assert_eq!(status, 500);
}

// ---- Events API ----

#[tokio::test]
async fn url_verification_is_answered_only_after_the_signature_check() {
    let server = aetherium_tests::stand_in::start().await;
    let s = setup(&server).await;
    let body = slack("url_verification.json");
    let challenge = serde_json::from_slice::<Value>(&body).expect("json")["challenge"].clone();
    let (status, answer) = signed(&s, JSON, &body, &[]).await;
    assert_eq!((status, &answer), (200, &json!({ "challenge": challenge })));
    let (status, answer) = send(&s, request(JSON, None, None, &[]), &body).await;
    assert_eq!(status, 401);
    assert!(answer.get("challenge").is_none());
}

#[tokio::test]
async fn app_mentions_and_channel_messages_are_queued_once_and_bots_ignored() {
    let server = aetherium_tests::stand_in::start().await;
    let s = setup(&server).await;
    let mention = slack("event_callback-app_mention.json");
    assert_eq!(signed(&s, JSON, &mention, &[]).await.0, 200);
    // Slack's retry of the same event.
    let (status, _) =
        signed(&s, JSON, &mention, &[("x-slack-retry-num", "1"), ("x-slack-retry-reason", "http_timeout")]).await;
    assert_eq!(status, 200);
    let events = s.queued().await;
    assert_eq!(events.len(), 1, "the retry is acknowledged, not queued again");
    let raw: Value = serde_json::from_slice(&mention).expect("json");
    assert_eq!(events[0].id, raw["event_id"].as_str().expect("event_id"));
    assert_eq!(events[0].kind, "slack.event.app_mention");
    assert_eq!(events[0].data["text"], raw["event"]["text"]);
    assert_eq!(events[0].data["payload"], raw);

    let s = setup(&server).await;
    assert_eq!(signed(&s, JSON, &slack("event_callback-message-channels.json"), &[]).await.0, 200);
    assert_eq!(s.queued().await[0].kind, "slack.event.message");

    let s = setup(&server).await;
    let (status, _) = signed(&s, JSON, &slack("event_callback-bot_message.json"), &[]).await;
    assert_eq!(status, 200);
    let mut ours: Value = serde_json::from_slice(&slack("event_callback-message-channels.json")).expect("json");
    ours["event"]["bot_id"] = "B0OURBOT".into();
    let (status, _) = signed(&s, JSON, ours.to_string().as_bytes(), &[]).await;
    assert_eq!(status, 200);
    assert!(s.queued().await.is_empty(), "bot messages, ours included, are not queued");
}

// ---- interactivity ----

fn block_actions(action_id: &str, value: &str, response_url: &str) -> Vec<u8> {
    let mut payload: Value = serde_json::from_slice(&slack("block_actions.json")).expect("json");
    payload["actions"][0]["action_id"] = action_id.into();
    payload["actions"][0]["value"] = value.into();
    payload["response_url"] = response_url.into();
    // A click of its own: Slack gives every interaction a fresh trigger_id.
    payload["trigger_id"] =
        format!("{}.{}", payload["trigger_id"].as_str().unwrap_or_default(), uuid::Uuid::new_v4()).into();
    form_urlencoded::Serializer::new(String::new()).append_pair("payload", &payload.to_string()).finish().into_bytes()
}

#[tokio::test]
async fn the_documented_block_actions_payload_becomes_an_action_event() {
    let server = aetherium_tests::stand_in::start().await;
    let s = setup(&server).await;
    let raw: Value = serde_json::from_slice(&slack("block_actions.json")).expect("json");
    let body = form_urlencoded::Serializer::new(String::new()).append_pair("payload", &raw.to_string()).finish();
    let (status, _) = signed(&s, FORM, body.as_bytes(), &[]).await;
    assert_eq!(status, 200);
    let events = s.queued().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "slack.action.waxa");
    assert_eq!(events[0].data["action_id"], raw["actions"][0]["action_id"]);
    assert_eq!(events[0].data["value"], raw["actions"][0]["value"]);
    assert_eq!(events[0].data["user_name"], raw["user"]["username"]);
    assert_eq!(events[0].data["response_url"], raw["response_url"]);
}

#[tokio::test]
async fn approve_and_reject_are_followed_up_through_response_url() {
    let server = aetherium_tests::stand_in::start().await;
    for (verdict, text) in [("approve", "✅ Approved by jtorrance"), ("reject", "❌ Rejected by jtorrance")] {
        Mock::given(method("POST"))
            .and(path(format!("/actions/T9TK3CUKW/{verdict}")))
            .and(body_json(json!({"replace_original": true, "text": text})))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .expect(1)
            .mount(&server)
            .await;
    }
    let s = setup(&server).await;
    let d = s.app.dispatcher();
    for verdict in ["approve", "reject"] {
        let body = block_actions(verdict, "3f1c2b7e-task", &format!("{}/actions/T9TK3CUKW/{verdict}", server.uri()));
        assert_eq!(signed(&s, FORM, &body, &[]).await.0, 200);
        let msg = s.queue.receive(1, Duration::from_millis(50)).await.expect("receive").remove(0);
        let event = Event::from_json(&msg.body).expect("event");
        assert_eq!(event.kind, format!("slack.action.{verdict}"));
        assert_eq!(event.data["value"], "3f1c2b7e-task");
        d.process(&msg.body).await.expect("followed up");
        d.process(&msg.body).await.expect("once");
    }
}

#[tokio::test]
async fn a_response_url_outside_the_allowed_host_is_never_requested() {
    let server = aetherium_tests::stand_in::start().await;
    Mock::given(wiremock::matchers::any()).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    // Only https://hooks.slack.com is allowed (the default); the stand-in is somewhere else.
    let uri = server.uri();
    let t = TestApp::builder()
        .env(&[("SLACK_SIGNING_SECRET", SLACK_SECRET), ("SLACK_BOT_TOKEN", BOT), ("SLACK_API_URL", &uri)])
        .builtin()
        .build()
        .await;
    for url in [
        format!("{uri}/actions/x"),
        "http://hooks.slack.com/actions/x".to_owned(),
        "https://hooks.slack.com.evil.example/actions/x".to_owned(),
        "https://evil.example/https://hooks.slack.com/x".to_owned(),
    ] {
        let body = block_actions("approve", "t", &url);
        assert_eq!(signed(&t, FORM, &body, &[]).await.0, 200);
        let msg = t.queue.receive(1, Duration::from_millis(50)).await.expect("receive").remove(0);
        t.app.dispatcher().process(&msg.body).await.expect("refused permanently, not retried");
        t.queue.delete(&msg.receipt).await.expect("delete");
    }
    let log = t.app.activity().recent(100).await.expect("log");
    let refused = log.iter().filter(|e| e.component == "slack" && e.message.contains("refused to call response_url"));
    assert_eq!(refused.count(), 4, "{log:?}");
}

// ---- slash commands ----

async fn slash(t: &TestApp, cmd: &str, text: &str) -> Value {
    let (status, answer) = signed(t, FORM, &command(cmd, text), &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["response_type"], "ephemeral", "{answer}");
    answer
}

#[tokio::test]
async fn status_lists_every_component_and_a_hung_one_cannot_stall_it() {
    let server = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .and(path("/auth.test"))
        .and(header("authorization", format!("Bearer {BOT}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "user_id": "U0BOT"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/auth.test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})).set_delay(Duration::from_secs(20)))
        .mount(&server)
        .await;
    // Checked every time: this is about the deadline on a hung check, not the cache.
    let s = builder(&server, &[]).health_cache(HealthCache::new(Duration::ZERO, Duration::ZERO)).build().await;
    let answer = slash(&s, "/aetherium-status", "").await;
    assert_eq!(
        answer["text"],
        "Aetherium is running! 🚀\n- GitHub: disabled\n- Slack: ✅ healthy\n- Event Bus: ✅ healthy\n- Queue: ✅ healthy\n- Bus Bridge: disabled"
    );
    let started = std::time::Instant::now();
    let answer = slash(&s, "/aetherium-status", "").await;
    assert!(
        answer["text"].as_str().is_some_and(|t| t.contains("- Slack: ❌ unhealthy: health check timed out")),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(20), "the answer did not wait for the hung check");
}

#[tokio::test]
async fn vm_list_shows_the_registry_the_dispatcher_keeps() {
    let server = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&server)
        .await;
    let s = setup(&server).await;
    let d = s.app.dispatcher();
    let vm = |id: &str, kind: &str, name: &str| {
        Event::new(kind, "platform", json!({"vm_id": id, "vm_name": name}).as_object().cloned().unwrap_or_default())
            .to_json()
    };
    for record in [
        vm("a1", "vm.created", "my-vm"),
        vm("b2", "vm.created", "test-vm"),
        vm("c3", "vm.created", "gone-vm"),
        vm("a1", "vm.started", "my-vm"),
        vm("c3", "vm.stopped", "gone-vm"),
    ] {
        d.process(&record).await.expect("dispatched");
    }
    let answer = slash(&s, "/aetherium-vm-list", "").await;
    assert_eq!(answer["text"], "Active VMs:\n• my-vm (a1) - running\n• test-vm (b2) - created\nTotal: 2 VMs");
}

#[tokio::test]
async fn task_create_queues_a_task_created_event() {
    let server = aetherium_tests::stand_in::start().await;
    let s = setup(&server).await;
    let answer = slash(&s, "/aetherium-task", "create vm name=quick-test vcpus=2").await;
    let text = answer["text"].as_str().expect("text");
    let (first, second) = text.split_once('\n').expect("two lines");
    assert_eq!(first, "Creating task: create vm name=quick-test vcpus=2");
    let task_id = second.strip_prefix("Task ID: ").expect("task id line");
    assert!(uuid::Uuid::parse_str(task_id).is_ok(), "{task_id}");
    let events = s.queued().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "task.created");
    assert_eq!(events[0].data["task_id"], task_id);
    assert_eq!(events[0].data["kind"], "create_vm");
    assert_eq!(events[0].data["parameters"], json!({"name": "quick-test", "vcpus": 2, "memory_mb": 2048}));
    assert_eq!(events[0].data["requested_by"]["user_name"], "Steve");
}

#[tokio::test]
async fn malformed_and_unknown_commands_get_help_and_queue_nothing() {
    let server = aetherium_tests::stand_in::start().await;
    let s = setup(&server).await;
    for (cmd, text, want) in [
        ("/aetherium-task", "create vm vcpus=2", "name= is required"),
        ("/aetherium-task", "create vm name=x vcpus=999", "vcpus must be 1 to 64"),
        ("/aetherium-task", "destroy everything", "`destroy` is not a subcommand"),
        ("/aetherium-task", "", "nothing to do"),
        ("/weather", "94070", "Unknown command `/weather`"),
    ] {
        let answer = slash(&s, cmd, text).await;
        let t = answer["text"].as_str().unwrap_or_default();
        assert!(t.contains(want), "{cmd} {text}: {t}");
        assert!(t.contains("/aetherium-task create vm"), "usage shown: {t}");
    }
    assert!(s.queued().await.is_empty());
}

// ---- the Slack client ----

#[tokio::test]
async fn notifications_post_messages_and_slack_errors_are_permanent_with_their_code() {
    let server = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .and(header("authorization", format!("Bearer {BOT}").as_str()))
        .and(header("content-type", "application/json; charset=utf-8"))
        .and(body_json(json!({"channel": "#deployments", "text": "🚀 New VM created: my-vm"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "ts": "1.2"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .and(body_partial_json(json!({"channel": "#nowhere"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": "channel_not_found"})))
        .expect(1)
        .mount(&server)
        .await;
    let s = setup(&server).await;
    let slack_int = s.app.integration("slack").expect("registered");
    slack_int
        .send_notification(&aetherium::Notification::message("#deployments", "🚀 New VM created: my-vm"))
        .await
        .expect("sent");
    let err =
        slack_int.send_notification(&aetherium::Notification::message("#nowhere", "x")).await.expect_err("refused");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("channel_not_found"), "{err}");
}

#[tokio::test]
async fn interactive_messages_carry_the_buttons_and_429_honours_retry_after() {
    let server = aetherium_tests::stand_in::start().await;
    let blocks = json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": "Task completed. What next?"}},
        {"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "action_id": "approve", "value": "task-uuid"},
            {"type": "button", "text": {"type": "plain_text", "text": "Reject"}, "action_id": "reject", "value": "task-uuid"}
        ]}
    ]);
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .and(body_json(json!({"channel": "#general", "text": "Task completed. What next?", "blocks": blocks})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .and(body_partial_json(json!({"channel": "#busy"})))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "17"))
        .expect(1)
        .mount(&server)
        .await;
    let b = builder(&server, &[]);
    let config = b.config().expect("config");
    let s = b.build().await;
    let client =
        aetherium::integrations::slack::SlackClient::from_config(&config.slack, s.store.clone()).expect("client");
    let integration = aetherium::integrations::slack::SlackIntegration::new(Some(client), s.store.clone());
    let buttons = [
        aetherium::integrations::slack::Button {
            text: "Approve".into(),
            action_id: "approve".into(),
            value: "task-uuid".into(),
        },
        aetherium::integrations::slack::Button {
            text: "Reject".into(),
            action_id: "reject".into(),
            value: "task-uuid".into(),
        },
    ];
    integration.send_interactive_message("#general", "Task completed. What next?", &buttons).await.expect("sent");
    let err = integration.send_interactive_message("#busy", "x", &buttons).await.expect_err("rate limited");
    assert!(
        matches!(err, aetherium::IntegrationError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(17)),
        "{err:?}"
    );
}

#[tokio::test]
async fn vm_created_posts_the_guides_message_once_per_event() {
    let server = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .and(body_json(json!({"channel": "#vms", "text": "🚀 New VM: `my-vm` (ID: `0b9a7c52`)"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .mount(&server)
        .await;
    let s = setup(&server).await;
    let record = Event::new(
        "vm.created",
        "platform",
        json!({"vm_id": "0b9a7c52", "vm_name": "my-vm"}).as_object().cloned().unwrap_or_default(),
    )
    .with_id("evt-vm-1")
    .to_json();
    let d = s.app.dispatcher();
    for _ in 0..3 {
        d.process(&record).await.expect("dispatched");
    }
}

#[tokio::test]
async fn health_is_auth_test() {
    let server = aetherium_tests::stand_in::start().await;
    Mock::given(method("POST"))
        .and(path("/auth.test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": "invalid_auth"})))
        .mount(&server)
        .await;
    let s = setup(&server).await;
    assert_eq!(s.app.integration("slack").expect("slack").health().await.to_string(), "unhealthy: invalid_auth");
}

/// A captured signed slash command replayed inside its 5-minute window is not run again: the
/// first copy asks for a 64-vCPU VM, the copies are told the command was already received, and one
/// task is queued. The same command invoked again (another timestamp) runs.
#[tokio::test]
async fn a_replayed_slash_command_runs_once() {
    let server = aetherium_tests::stand_in::start().await;
    let t = setup(&server).await;
    let body = command("/aetherium-task", "create vm name=replay-probe vcpus=64");
    let ts = now();
    let send_copy = || async {
        let req = slack_request(FORM, &body, ts);
        send(&t, req, &body).await
    };
    let (status, first) = send_copy().await;
    assert_eq!(status, 200, "{first}");
    for _ in 0..4 {
        let (status, copy) = send_copy().await;
        assert_eq!(status, 200, "{copy}");
        assert!(copy["text"].as_str().is_some_and(|s| s.contains("already received")), "{copy}");
    }
    let queued = t.queued().await;
    assert_eq!(queued.len(), 1, "one task for five copies: {queued:?}");
    let (status, again) = {
        let req = slack_request(FORM, &body, ts - 1);
        send(&t, req, &body).await
    };
    assert_eq!(status, 200);
    assert!(!again.to_string().contains("already received"), "a new invocation runs: {again}");
}
