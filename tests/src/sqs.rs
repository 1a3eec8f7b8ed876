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
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(Credentials::new("test", "test", None, None, "aetherium-tests"))
        .build();
    Client::from_conf(config)
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
