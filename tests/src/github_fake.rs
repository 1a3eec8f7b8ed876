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
