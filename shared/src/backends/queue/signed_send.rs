//! `SendMessage` signed with SigV4 by us and sent on the HTTP client we already link: the
//! hot path of every ingest (a webhook, the events route); `SendMessageBatch`, the bus
//! bridge's, goes the same way. Everything else SQS is asked for goes through aws-sdk-sqs. The SDK's `SendMessage` costs several hundred µs of CPU per call
//! in its orchestrator, interceptors and serializers (docs/benchmarks.md); at 128 MB that is
//! milliseconds of billed time per delivery. Same wire format (SQS's JSON protocol), same
//! signature (the `aws-sigv4` crate the SDK signs with), same timeouts as the SDK path.

use super::sqs::{ATTEMPT_TIMEOUT, BACKEND, CONNECT_TIMEOUT, OPERATION_TIMEOUT};
use crate::backends::error::BackendError;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
const SEND: &str = "AmazonSQS.SendMessage";
const SEND_BATCH: &str = "AmazonSQS.SendMessageBatch";

/// Signs and sends `SendMessage` with the credentials and region the environment gives.
pub struct SignedSender {
    endpoint: String,
    region: String,
    identity: Identity,
    http: reqwest::Client,
}

impl std::fmt::Debug for SignedSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignedSender({}, {})", self.endpoint, self.region)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SendMessage<'a> {
    queue_url: &'a str,
    message_body: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SendMessageBatch<'a> {
    queue_url: &'a str,
    entries: Vec<BatchEntry<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BatchEntry<'a> {
    id: String,
    message_body: &'a str,
}

#[derive(Deserialize)]
struct Sent {
    #[serde(rename = "MessageId")]
    message_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchSent {
    #[serde(default)]
    successful: Vec<BatchOk>,
    #[serde(default)]
    failed: Vec<BatchFailed>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchOk {
    id: String,
    message_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchFailed {
    id: String,
    #[serde(default)]
    sender_fault: bool,
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Refusal {
    #[serde(rename = "__type")]
    kind: String,
    #[serde(alias = "Message")]
    message: String,
}

/// One attempt's failure: worth another attempt, or final.
enum Failure {
    Retry(BackendError),
    Final(BackendError),
}

impl SignedSender {
    /// From the variables Lambda sets (`AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) and the SDK's endpoint overrides
    /// (`AWS_ENDPOINT_URL_SQS`, then `AWS_ENDPOINT_URL`, unless
    /// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`). `None` when the keys or the region are
    /// not in the environment (a profile, SSO, an instance role), or a FIPS or dual-stack
    /// endpoint is asked for: the SDK, which knows every credential source and endpoint,
    /// sends instead.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Option<Self> {
        let var = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        // FIPS and dual-stack endpoints are the SDK's to resolve.
        if ["AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"].iter().any(|v| var(v).as_deref() == Some("true")) {
            return None;
        }
        let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"))?;
        let identity = Credentials::new(
            var("AWS_ACCESS_KEY_ID")?,
            var("AWS_SECRET_ACCESS_KEY")?,
            var("AWS_SESSION_TOKEN"),
            None,
            "env",
        )
        .into();
        let configured = if var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").as_deref() == Some("true") {
            None
        } else {
            var("AWS_ENDPOINT_URL_SQS").or_else(|| var("AWS_ENDPOINT_URL"))
        };
        // The regional endpoint the SDK resolves (the queue URL's host may be a legacy one).
        let domain = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
        let endpoint = configured.unwrap_or_else(|| format!("https://sqs.{region}.{domain}"));
        let http = crate::backends::http_client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .ok()?;
        Some(Self { endpoint: endpoint.trim_end_matches('/').to_owned() + "/", region, identity, http })
    }

    /// Send `body` to `queue_url`; the message id. Up to three attempts within
    /// [`OPERATION_TIMEOUT`] for what the SDK would retry too: a connection failure, a
    /// timeout, a 5xx, throttling.
    pub async fn send(&self, queue_url: &str, body: &str) -> Result<String, BackendError> {
        let answer = self.call(SEND, &SendMessage { queue_url, message_body: body }).await?;
        let sent: Sent = serde_json::from_slice(&answer)
            .map_err(|e| BackendError::unavailable(BACKEND, format!("SendMessage answer unreadable: {e}")))?;
        Ok(sent.message_id)
    }

    /// Send up to ten `bodies` in one `SendMessageBatch` (the caller keeps to SQS's limits of
    /// ten entries and one message's size in all): one result per body, in order. SQS stores
    /// or fails each entry on its own; an entry it failed through no fault of ours
    /// (`SenderFault: false`) is unavailable, worth sending again, and one it refused is not.
    /// Retried as [`Self::send`] is when the request as a whole fails.
    pub async fn send_batch(
        &self,
        queue_url: &str,
        bodies: &[&str],
    ) -> Result<Vec<Result<String, BackendError>>, BackendError> {
        let entries = bodies.iter().enumerate().map(|(i, b)| BatchEntry { id: i.to_string(), message_body: b });
        let answer = self.call(SEND_BATCH, &SendMessageBatch { queue_url, entries: entries.collect() }).await?;
        let sent: BatchSent = serde_json::from_slice(&answer)
            .map_err(|e| BackendError::unavailable(BACKEND, format!("SendMessageBatch answer unreadable: {e}")))?;
        let ok = sent.successful.iter().map(|e| (e.id.as_str(), e.message_id.clone()));
        let failed = sent.failed.iter().map(|e| (e.id.as_str(), e.sender_fault, e.code.as_str(), e.message.as_str()));
        Ok(super::sqs::entry_results(bodies.len(), ok, failed))
    }

    /// One SQS JSON-protocol call to `target`, retried as [`Self::send`] says; the answer's
    /// body on success.
    async fn call(&self, target: &'static str, request: &impl Serialize) -> Result<Bytes, BackendError> {
        let payload = serde_json::to_vec(request).map(Bytes::from).map_err(|e| BackendError::rejected(BACKEND, e))?;
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        let mut last = BackendError::Timeout { backend: BACKEND };
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(crate::backends::backoff::delay(
                    attempt - 1,
                    Duration::from_millis(50),
                    Duration::from_millis(400),
                ))
                .await;
            }
            match tokio::time::timeout_at(deadline, self.attempt(target, payload.clone())).await {
                Err(_) => return Err(BackendError::Timeout { backend: BACKEND }),
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(Failure::Final(e))) => return Err(e),
                Ok(Err(Failure::Retry(e))) => last = e,
            }
        }
        Err(last)
    }

    async fn attempt(&self, target: &'static str, payload: Bytes) -> Result<Bytes, Failure> {
        let headers = [("content-type", CONTENT_TYPE), ("x-amz-target", target)];
        let settings = SigningSettings::default();
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("sqs")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| Failure::Final(BackendError::rejected(BACKEND, e)))?
            .into();
        let signable =
            SignableRequest::new("POST", &self.endpoint, headers.iter().copied(), SignableBody::Bytes(&payload))
                .map_err(|e| Failure::Final(BackendError::rejected(BACKEND, e)))?;
        let (instructions, _) =
            sign(signable, &params).map_err(|e| Failure::Final(BackendError::rejected(BACKEND, e)))?.into_parts();
        let mut request = self.http.post(&self.endpoint);
        for (name, value) in headers.into_iter().chain(instructions.headers()) {
            request = request.header(name, value);
        }
        let response = request.body(payload).send().await.map_err(|e| {
            Failure::Retry(if e.is_timeout() {
                BackendError::Timeout { backend: BACKEND }
            } else {
                BackendError::unavailable(BACKEND, crate::backends::http_client::transport_failure(&e))
            })
        })?;
        let status = response.status();
        let text = response.bytes().await.map_err(|e| Failure::Retry(BackendError::unavailable(BACKEND, e)))?;
        if status.is_success() {
            return Ok(text);
        }
        let refusal: Refusal = serde_json::from_slice(&text).unwrap_or_default();
        // `com.amazonaws.sqs#QueueDoesNotExist` → `QueueDoesNotExist`.
        let kind = refusal.kind.rsplit('#').next().unwrap_or_default();
        let operation = target.trim_start_matches("AmazonSQS.");
        let detail = format!("{operation}: HTTP {} {kind}: {}", status.as_u16(), refusal.message);
        // `ThrottlingException`, `RequestThrottled`.
        let throttled = status.as_u16() == 429 || kind.contains("Throttl");
        if status.is_server_error() || throttled {
            Err(Failure::Retry(BackendError::unavailable(BACKEND, detail)))
        } else {
            Err(Failure::Final(BackendError::rejected(BACKEND, detail)))
        }
    }
}
