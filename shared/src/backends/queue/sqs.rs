//! The SQS queue (aws-sdk-sqs; `SendMessage` goes through [`SignedSender`] when the
//! environment holds the keys, as in Lambda). The client is built at first use, so a function
//! that never touches the queue never pays for loading the AWS configuration.

use super::signed_send::SignedSender;
use super::{QueueMessage, WorkQueue};
use crate::backends::error::BackendError;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::StalledStreamProtectionConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry};
use std::time::Duration;
use tokio::sync::OnceCell;

pub(super) const BACKEND: &str = "sqs";

/// Connecting to SQS (an interface endpoint in a VPC, or the public one).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One attempt of a call; SQS answers in tens of milliseconds.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// All of a call, its retries included: with a Redis call before it, a Slack request is
/// still answered within its 5 s function timeout, a GitHub delivery well within 10 s.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);

/// The SDK has no operation timeout by default: an endpoint that accepts and never answers
/// would hold the caller until Lambda kills it. A long poll adds its wait to both limits.
fn timeouts(long_poll: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT + long_poll)
        .operation_timeout(OPERATION_TIMEOUT + long_poll)
        .build()
}

/// The client every call but a long poll uses as is, its settings fixed once per cold start
/// rather than by a `config_override` on each call (measured: no CPU difference either way,
/// docs/benchmarks.md; one place is simpler). Stalled-stream protection is off: the attempt
/// and operation timeouts already bound a stalled answer.
fn lean(builder: aws_sdk_sqs::config::Builder) -> Client {
    Client::from_conf(
        builder
            .timeout_config(timeouts(Duration::ZERO))
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .build(),
    )
}

/// How `SendMessage` is sent (`queue.send`, `AETHERIUM_SQS_SEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SendPath {
    /// Signed by us ([`SignedSender`]) when the environment holds the keys, as in Lambda;
    /// else the SDK.
    #[default]
    Signed,
    /// Always aws-sdk-sqs.
    Sdk,
}

#[derive(Debug)]
pub struct SqsQueue {
    url: String,
    client: OnceCell<Client>,
    signed: OnceCell<Option<SignedSender>>,
}

impl SqsQueue {
    /// A queue whose client is configured from the environment (region, credentials,
    /// `AWS_ENDPOINT_URL`) the first time it is used.
    pub fn from_env(url: impl Into<String>, send: SendPath) -> Self {
        let signed = match send {
            SendPath::Signed => OnceCell::new(),
            SendPath::Sdk => OnceCell::new_with(Some(None)),
        };
        Self { url: url.into(), client: OnceCell::new(), signed }
    }

    /// A queue on `client`'s endpoint and credentials, with this module's timeouts.
    pub fn with_client(client: Client, url: impl Into<String>) -> Self {
        let client = OnceCell::new_with(Some(lean(client.config().to_builder())));
        Self { url: url.into(), client, signed: OnceCell::new_with(Some(None)) }
    }

    /// [`Self::with_client`], sending with `signed`.
    pub fn with_signed_sender(client: Client, signed: SignedSender, url: impl Into<String>) -> Self {
        Self { signed: OnceCell::new_with(Some(Some(signed))), ..Self::with_client(client, url) }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn signed(&self) -> Option<&SignedSender> {
        self.signed.get_or_init(|| async { SignedSender::from_vars(&|name| std::env::var(name).ok()) }).await.as_ref()
    }

    /// One `SendMessageBatch` of at most [`super::BATCH_ENTRIES`] bodies.
    async fn send_one_batch(&self, bodies: &[&str]) -> Vec<Result<String, BackendError>> {
        let sent = match self.signed().await {
            Some(signed) => signed.send_batch(&self.url, bodies).await,
            None => self.sdk_batch(bodies).await,
        };
        match sent {
            Ok(each) => each,
            // The request failed as a whole: each entry failed with it.
            Err(e) => bodies.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    async fn sdk_batch(&self, bodies: &[&str]) -> Result<Vec<Result<String, BackendError>>, BackendError> {
        let entries = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(*b).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BackendError::rejected(BACKEND, e))?;
        let out = self
            .client()
            .await
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(classify)?;
        let ok = out.successful().iter().map(|e| (e.id(), e.message_id().to_owned()));
        let failed = out.failed().iter().map(|e| (e.id(), e.sender_fault(), e.code(), e.message().unwrap_or("")));
        Ok(entry_results(bodies.len(), ok, failed))
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
                lean(aws_sdk_sqs::config::Builder::from(&config))
            })
            .await
    }
}

/// One result per entry of a `SendMessageBatch` of `n` (their ids are `0` to `n - 1`), from
/// SQS's answer: stored, or failed on its own. An entry SQS failed through no fault of ours
/// (`SenderFault: false`) is unavailable, worth sending again; one it refused is rejected; one
/// the answer does not name, unavailable.
pub(super) fn entry_results<'a>(
    n: usize,
    successful: impl Iterator<Item = (&'a str, String)>,
    failed: impl Iterator<Item = (&'a str, bool, &'a str, &'a str)>,
) -> Vec<Result<String, BackendError>> {
    let mut each: Vec<Result<String, BackendError>> = (0..n)
        .map(|_| Err(BackendError::unavailable(BACKEND, "SendMessageBatch answer does not name this entry")))
        .collect();
    let slot = |id: &str| id.parse::<usize>().ok().filter(|i| *i < n);
    for (id, message_id) in successful {
        if let Some(i) = slot(id) {
            each[i] = Ok(message_id);
        }
    }
    for (id, sender_fault, code, message) in failed {
        if let Some(i) = slot(id) {
            let detail = format!("SendMessageBatch entry: {code}: {message}");
            each[i] = Err(if sender_fault {
                BackendError::rejected(BACKEND, detail)
            } else {
                BackendError::unavailable(BACKEND, detail)
            });
        }
    }
    each
}

fn classify<E, R>(err: SdkError<E, R>) -> BackendError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::TimeoutError(_) => BackendError::Timeout { backend: BACKEND },
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) | SdkError::ConstructionFailure(_) => {
            BackendError::unavailable(BACKEND, DisplayErrorContext(&err))
        }
        _ => BackendError::rejected(BACKEND, DisplayErrorContext(&err)),
    }
}

#[async_trait]
impl WorkQueue for SqsQueue {
    async fn send(&self, body: &str) -> Result<String, BackendError> {
        if let Some(signed) = self.signed().await {
            return signed.send(&self.url, body).await;
        }
        let out = self
            .client()
            .await
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }

    /// `SendMessageBatch` requests of up to ten entries, sent at once; a run of one is a
    /// `SendMessage` (the same one request, and a smaller answer).
    async fn send_batch(&self, bodies: &[&str]) -> Vec<Result<String, BackendError>> {
        let runs = super::batches(bodies, self.max_message_bytes());
        let sent = futures_util::future::join_all(runs.into_iter().map(|run| async move {
            match &bodies[run] {
                [one] => vec![self.send(one).await],
                many => self.send_one_batch(many).await,
            }
        }))
        .await;
        sent.into_iter().flatten().collect()
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<QueueMessage>, BackendError> {
        let out = self
            .client()
            .await
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .customize()
            .config_override(
                aws_sdk_sqs::config::Builder::new()
                    .timeout_config(timeouts(Duration::from_secs(wait.as_secs().min(20)))),
            )
            .send()
            .await
            .map_err(classify)?;
        Ok(out
            .messages()
            .iter()
            .map(|m| QueueMessage {
                id: m.message_id().unwrap_or_default().to_owned(),
                receipt: m.receipt_handle().unwrap_or_default().to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<(), BackendError> {
        self.client()
            .await
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), BackendError> {
        // SQS caps a visibility timeout at 12 hours.
        let secs = delay.as_secs().min(43_200) as i32;
        self.client()
            .await
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(secs)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn health(&self) -> Result<(), BackendError> {
        self.client()
            .await
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "sqs"
    }
}
