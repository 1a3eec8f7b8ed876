//! The SQS queue (aws-sdk-sqs). The client is built at first use, so a function that never
//! touches the queue never pays for loading the AWS configuration.

use super::{QueueMessage, WorkQueue};
use crate::error::BackendError;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use std::time::Duration;
use tokio::sync::OnceCell;

const BACKEND: &str = "sqs";

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
