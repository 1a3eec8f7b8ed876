//! Lambda envelopes and their adapters: function URL requests to [`crate::api`], SQS batches
//! to the dispatcher. The envelope types are our own, parsing only what we use: lambda_http's
//! conversion panics on a body flagged base64 that is not, where we must answer 400.

use crate::api::{self, ApiError, Route};
use crate::app::App;
use crate::config::Config;
use crate::dispatch::{self, Dispatcher};
use crate::integration::IntegrationFactory;
use crate::queue::{QueueMessage, WorkQueue};
use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A function URL (API Gateway HTTP API payload 2.0) request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlRequest {
    #[serde(default)]
    pub raw_path: String,
    #[serde(default)]
    pub raw_query_string: String,
    #[serde(default)]
    pub headers: HashMap<String, String>,
    pub request_context: UrlContext,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub is_base64_encoded: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlContext {
    pub http: UrlHttp,
    #[serde(default)]
    pub request_id: Option<String>,
    /// Set by Lambda when the function URL's AuthType is AWS_IAM and the caller's SigV4
    /// signature checked out; never present on an AuthType NONE URL.
    #[serde(default)]
    pub authorizer: Option<UrlAuthorizer>,
}

#[derive(Debug, Deserialize)]
pub struct UrlAuthorizer {
    #[serde(default)]
    pub iam: Option<IamCaller>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IamCaller {
    #[serde(default)]
    pub user_arn: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UrlHttp {
    pub method: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UrlResponse {
    pub status_code: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub is_base64_encoded: bool,
}

fn to_http(req: UrlRequest) -> Result<api::Request, ApiError> {
    let body = match (req.body, req.is_base64_encoded) {
        (None, _) => Bytes::new(),
        (Some(b), false) => Bytes::from(b),
        (Some(b), true) => {
            Bytes::from(base64::engine::general_purpose::STANDARD.decode(b.as_bytes()).map_err(|_| {
                ApiError::BadRequest("the request body is flagged base64 but is not valid base64".into())
            })?)
        }
    };
    let uri = if req.raw_query_string.is_empty() {
        req.raw_path
    } else {
        format!("{}?{}", req.raw_path, req.raw_query_string)
    };
    let mut builder = http::Request::builder().method(req.request_context.http.method.as_str());
    if !uri.is_empty() {
        builder = builder.uri(uri);
    }
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let caller = req.request_context.authorizer.and_then(|a| a.iam).and_then(|iam| iam.user_arn);
    let mut request =
        builder.body(body).map_err(|_| ApiError::BadRequest("the request line or a header is malformed".into()))?;
    if let Some(arn) = caller {
        request.extensions_mut().insert(api::auth::IamCaller(arn));
    }
    Ok(request)
}

fn from_http(resp: api::Response) -> UrlResponse {
    let (parts, body) = resp.into_parts();
    let headers = parts
        .headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
        .collect();
    match String::from_utf8(body.to_vec()) {
        Ok(text) => UrlResponse { status_code: parts.status.as_u16(), headers, body: text, is_base64_encoded: false },
        Err(raw) => UrlResponse {
            status_code: parts.status.as_u16(),
            headers,
            body: base64::engine::general_purpose::STANDARD.encode(raw.into_bytes()),
            is_base64_encoded: true,
        },
    }
}

/// Answer one function URL request on `route` (a function serves one route, whatever the
/// path of its URL).
pub async fn respond(app: &App, route: Route, req: UrlRequest) -> UrlResponse {
    let request_id = req.request_context.request_id.clone().unwrap_or_default();
    let span = tracing::info_span!("request", %request_id, route = route.path());
    let _enter = span.enter();
    let resp = match to_http(req) {
        Ok(req) => api::handle(app, route, req).await,
        Err(e) => e.into_response(),
    };
    from_http(resp)
}

/// An SQS event (the dispatcher's trigger).
#[derive(Debug, Deserialize)]
pub struct SqsEvent {
    #[serde(rename = "Records")]
    pub records: Vec<SqsRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsRecord {
    pub message_id: String,
    pub receipt_handle: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub attributes: HashMap<String, String>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SqsBatchResponse {
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ItemFailure {
    pub item_identifier: String,
}

/// Process a batch; only the records that failed are reported back (ReportBatchItemFailures),
/// so SQS retries those alone and moves them to the dead-letter queue after maxReceiveCount.
pub async fn dispatch_batch(dispatcher: &Dispatcher, queue: &dyn WorkQueue, event: SqsEvent) -> SqsBatchResponse {
    let messages: Vec<QueueMessage> = event
        .records
        .into_iter()
        .map(|r| QueueMessage {
            receive_count: r.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1),
            id: r.message_id,
            receipt: r.receipt_handle,
            body: r.body,
        })
        .collect();
    let outcomes = futures_util::future::join_all(messages.iter().map(|m| async move {
        // Lambda's event source mapping deletes successful records itself; only a requested
        // retry delay is ours to set.
        match dispatcher.process_isolated(&m.id, &m.body).await {
            Ok(_) => true,
            Err(e) => {
                dispatch::delay_retry(queue, m, &e).await;
                false
            }
        }
    }))
    .await;
    SqsBatchResponse {
        batch_item_failures: messages
            .iter()
            .zip(outcomes)
            .filter(|(_, ok)| !ok)
            .map(|(m, _)| ItemFailure { item_identifier: m.id.clone() })
            .collect(),
    }
}

/// Config, backends and integrations, once per cold start. A failure is logged naming the
/// setting and ends the process: Lambda reports it as an init failure.
async fn start(integrations: &[&dyn IntegrationFactory]) -> Result<App, lambda_runtime::Error> {
    let built = async {
        let config = Config::from_env().map_err(|e| e.to_string())?;
        let app = App::from_config(config).map_err(|e| e.to_string())?;
        app.with_integrations(integrations).await.map_err(|e| e.to_string())
    }
    .await;
    built.map_err(|e| {
        tracing::error!(error = %e, "start-up failed");
        e.into()
    })
}

/// The whole life of an HTTP function: JSON logs, config and backends built once, then one
/// route served for every invocation.
pub async fn run_http(route: Route, integrations: &[&dyn IntegrationFactory]) -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init(true);
    let app = start(integrations).await?;
    let app = &app;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<UrlRequest>| async move {
        Ok::<_, lambda_runtime::Error>(respond(app, route, event.payload).await)
    }))
    .await
}

/// The dispatcher function: SQS batches in, partial batch failures out.
pub async fn run_dispatcher(integrations: &[&dyn IntegrationFactory]) -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init(true);
    let app = start(integrations).await?;
    let dispatcher = app.dispatcher();
    let (dispatcher, queue) = (&dispatcher, app.queue.as_ref());
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(dispatch_batch(dispatcher, queue, event.payload).await)
    }))
    .await
}

/// The scheduled GitHub redelivery function: each EventBridge invocation (its event is not
/// read) is one run, answered with the run's report. A run that fails (GitHub refusing the
/// listing, the store down) fails the invocation, so it shows in the function's errors.
pub async fn run_redeliver(integrations: &[&dyn IntegrationFactory]) -> Result<(), lambda_runtime::Error> {
    use crate::github::redeliver::{Redeliverer, Report};
    crate::telemetry::init(true);
    let app = start(integrations).await?;
    let job = Redeliverer::from_app(&app).map_err(|e| {
        tracing::error!(error = %e, "start-up failed");
        lambda_runtime::Error::from(e.to_string())
    })?;
    let off = Redeliverer::off_reason(&app.config).unwrap_or("no webhook to watch");
    let job = &job;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |_: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            let report = match job {
                Some(job) => job.run().await?,
                None => Report::off(off),
            };
            tracing::info!(?report, "GitHub redelivery run");
            Ok::<_, lambda_runtime::Error>(report)
        },
    ))
    .await
}
