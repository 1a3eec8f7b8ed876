//! The SQS emulator (moto's server mode) that scripts/test starts; its endpoint comes in
//! `AETHERIUM_TEST_SQS_ENDPOINT`.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};

pub fn endpoint() -> String {
    std::env::var("AETHERIUM_TEST_SQS_ENDPOINT").unwrap_or_else(|_| {
        panic!("AETHERIUM_TEST_SQS_ENDPOINT is not set: run the suite with scripts/test, which starts the SQS emulator")
    })
}

pub fn client() -> Client {
    client_at(&endpoint())
}

/// A client for an SQS endpoint at `url` (a closed port stands for SQS being down).
pub fn client_at(url: &str) -> Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new("test", "test", None, None, "aetherium-tests"))
        .build();
    Client::from_conf(config)
}

/// A queue whose records move to a fresh dead-letter queue after `max_receives`, with the
/// given visibility timeout; returns (queue URL, dead-letter queue URL).
pub async fn create_queue_with_dlq(client: &Client, visibility_secs: u32, max_receives: u32) -> (String, String) {
    let dlq = create_queue(client, &[]).await;
    let arn = client
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .expect("arn");
    let redrive =
        serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receives.to_string()}).to_string();
    let url =
        create_queue(client, &[("VisibilityTimeout", &visibility_secs.to_string()), ("RedrivePolicy", &redrive)]).await;
    (url, dlq)
}

/// A fresh queue with a unique name; returns its URL.
pub async fn create_queue(client: &Client, attributes: &[(&str, &str)]) -> String {
    let name = format!("aetherium-test-{}", uuid::Uuid::new_v4());
    let mut req = client.create_queue().queue_name(&name);
    for (k, v) in attributes {
        req = req.attributes(aws_sdk_sqs::types::QueueAttributeName::from(*k), *v);
    }
    let out = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("cannot create a queue on the SQS emulator at {}: {e:?}", endpoint()));
    out.queue_url().expect("queue url").to_owned()
}
