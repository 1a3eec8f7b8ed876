//! The SQS queue (aws-sdk-sqs). The client is built at first use, so a function that never
//! touches the queue never pays for loading the AWS configuration.

use super::{QueueMessage, WorkQueue};
use crate::backends::error::BackendError;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use std::time::Duration;
use tokio::sync::OnceCell;

const BACKEND: &str = "sqs";

/// Connecting to SQS (an interface endpoint in a VPC, or the public one).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One attempt of a call; SQS answers in tens of milliseconds.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// All of a call, its retries included: with a Redis call before it, a Slack request is
/// still answered within its 5 s function timeout, a GitHub delivery well within 10 s.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);

/// The SDK has no operation timeout by default: an endpoint that accepts and never answers
/// would hold the caller until Lambda kills it. A long poll adds its wait to both limits.
fn timeouts(long_poll: Duration) -> aws_sdk_sqs::config::Builder {
    let timeouts = aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT + long_poll)
        .operation_timeout(OPERATION_TIMEOUT + long_poll)
        .build();
    aws_sdk_sqs::config::Builder::new().timeout_config(timeouts)
}

#[derive(Debug)]
pub struct SqsQueue {
    url: String,
    client: OnceCell<Client>,
}

impl SqsQueue {
    /// A queue whose client is configured from the environment (region, credentials,
    /// `AWS_ENDPOINT_URL`) the first time it is used.
    pub fn from_env(url: impl Into<String>) -> Self {
        Self { url: url.into(), client: OnceCell::new() }
    }

    pub fn with_client(client: Client, url: impl Into<String>) -> Self {
        Self { url: url.into(), client: OnceCell::new_with(Some(client)) }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
                Client::new(&config)
            })
            .await
    }
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
        let out = self
            .client()
            .await
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .customize()
            .config_override(timeouts(Duration::ZERO))
            .send()
            .await
            .map_err(classify)?;
        Ok(out.message_id().unwrap_or_default().to_owned())
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
            .config_override(timeouts(Duration::from_secs(wait.as_secs().min(20))))
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
            .customize()
            .config_override(timeouts(Duration::ZERO))
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
            .customize()
            .config_override(timeouts(Duration::ZERO))
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
            .customize()
            .config_override(timeouts(Duration::ZERO))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "sqs"
    }
}
