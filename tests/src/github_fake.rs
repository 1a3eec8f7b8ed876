//! A stateful stand-in for one GitHub issue's comments: POST appends, GET lists, so retries
//! and racing dispatchers see what a real GitHub would show them.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use wiremock::{Request, Respond, ResponseTemplate};

#[derive(Debug, Clone, Default)]
pub struct Comments {
    inner: Arc<Mutex<Vec<String>>>,
}

impl Comments {
    pub fn bodies(&self) -> Vec<String> {
        self.inner.lock().expect("lock").clone()
    }

    pub fn seed(&self, body: &str) {
        self.inner.lock().expect("lock").push(body.to_owned());
    }
}

impl Respond for Comments {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut list = self.inner.lock().expect("lock");
        if req.method.as_str() == "POST" {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let text = body["body"].as_str().unwrap_or_default().to_owned();
            list.push(text.clone());
            let id = list.len();
            return ResponseTemplate::new(201).set_body_json(json!({ "id": id, "body": text }));
        }
        let page: Vec<Value> = list.iter().enumerate().map(|(i, b)| json!({ "id": i + 1, "body": b })).collect();
        ResponseTemplate::new(200).set_body_json(page)
    }
}

/// A delivery object as GitHub lists it: `status_code` 2xx is `OK`, 0 a timeout, anything
/// else an invalid response.
pub fn delivery(id: u64, guid: &str, delivered_at: chrono::DateTime<chrono::Utc>, status_code: u16) -> Value {
    let status = match status_code {
        200..=299 => "OK".to_owned(),
        0 => "timed out".to_owned(),
        code => format!("Invalid HTTP Response: {code}"),
    };
    json!({
        "id": id, "guid": guid, "delivered_at": delivered_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "redelivery": false, "duration": 0.1, "status": status, "status_code": status_code,
        "event": "push", "action": null, "installation_id": 77, "repository_id": 1296269,
    })
}

type OnAttempt = Arc<dyn Fn(&Value) + Send + Sync>;

#[derive(Default)]
struct DeliveriesState {
    /// Newest first, as GitHub lists them.
    list: Vec<Value>,
    /// The delivery ids whose redelivery was accepted, in order.
    attempts: Vec<u64>,
    /// The `cursor` of each list request (`None`: the first page).
    pages: Vec<Option<String>>,
    /// When set, each accepted redelivery is listed as a new attempt with this status code.
    attempt_status: Option<u16>,
    on_attempt: Option<OnAttempt>,
}

/// A stateful stand-in for a webhook's deliveries: `GET` lists them newest first, `per_page`
/// at a time with a `Link: <...cursor=...>; rel="next"` header as GitHub pages them; `POST
/// .../deliveries/{id}/attempts` records a redelivery and answers 202.
#[derive(Clone, Default)]
pub struct Deliveries {
    inner: Arc<Mutex<DeliveriesState>>,
}

impl std::fmt::Debug for Deliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.inner.lock().expect("lock");
        f.debug_struct("Deliveries").field("listed", &s.list.len()).field("attempts", &s.attempts).finish()
    }
}

impl Deliveries {
    /// List `delivery` as the newest so far.
    pub fn push(&self, delivery: Value) {
        self.inner.lock().expect("lock").list.insert(0, delivery);
    }

    /// The delivery ids GitHub was asked to redeliver.
    pub fn attempts(&self) -> Vec<u64> {
        self.inner.lock().expect("lock").attempts.clone()
    }

    /// The cursor of every list request so far (`None` for a first page).
    pub fn pages(&self) -> Vec<Option<String>> {
        self.inner.lock().expect("lock").pages.clone()
    }

    /// Each accepted redelivery becomes a listed attempt answered with `status_code`.
    pub fn attempts_answer(&self, status_code: u16) {
        self.inner.lock().expect("lock").attempt_status = Some(status_code);
    }

    /// Called with the redelivered delivery, as GitHub would send it again.
    pub fn on_attempt(&self, f: impl Fn(&Value) + Send + Sync + 'static) {
        self.inner.lock().expect("lock").on_attempt = Some(Arc::new(f));
    }
}

impl Respond for Deliveries {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut state = self.inner.lock().expect("lock");
        let query: std::collections::HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        if req.method.as_str() == "POST" {
            let segments: Vec<&str> = req.url.path().split('/').collect();
            let id: u64 = segments.iter().rev().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            let Some(original) = state.list.iter().find(|d| d["id"] == id).cloned() else {
                return ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}));
            };
            state.attempts.push(id);
            if let Some(code) = state.attempt_status {
                let next = state.list.iter().filter_map(|d| d["id"].as_u64()).max().unwrap_or(0) + 1;
                let mut attempt = delivery(next, original["guid"].as_str().unwrap_or(""), chrono::Utc::now(), code);
                attempt["redelivery"] = true.into();
                state.list.insert(0, attempt);
            }
            if let Some(f) = state.on_attempt.clone() {
                drop(state);
                f(&original);
            }
            return ResponseTemplate::new(202).set_body_json(json!({}));
        }
        let per_page: usize = query.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30).min(100);
        let cursor = query.get("cursor").cloned();
        state.pages.push(cursor.clone());
        let start: usize =
            cursor.as_deref().and_then(|c| c.strip_prefix("v1_")).and_then(|n| n.parse().ok()).unwrap_or(0);
        let page: Vec<Value> = state.list.iter().skip(start).take(per_page).cloned().collect();
        let mut resp = ResponseTemplate::new(200).set_body_json(page);
        if start + per_page < state.list.len() {
            let mut next = req.url.clone();
            next.set_query(Some(&format!("per_page={per_page}&cursor=v1_{}", start + per_page)));
            resp = resp.insert_header("link", format!("<{next}>; rel=\"next\"").as_str());
        }
        resp
    }
}

/// One loopback server standing in for api.github.com and slack.com: comments on o/r#1
/// (listed and posted through the returned [`Comments`]) and `chat.postMessage` answering ok.
pub async fn github_and_slack() -> (wiremock::MockServer, Comments) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let server = crate::stand_in::start().await;
    let comments = Comments::default();
    for verb in ["GET", "POST"] {
        Mock::given(method(verb))
            .and(path("/repos/o/r/issues/1/comments"))
            .respond_with(comments.clone())
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true, "ts": "1700000000.000100"})),
        )
        .mount(&server)
        .await;
    (server, comments)
}

/// The bodies of every `chat.postMessage` the [`github_and_slack`] stand-in received, in order.
pub async fn slack_posts(server: &wiremock::MockServer) -> Vec<Value> {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter(|r| r.url.path() == "/chat.postMessage")
        .map(|r| serde_json::from_slice(&r.body).expect("chat.postMessage JSON"))
        .collect()
}
