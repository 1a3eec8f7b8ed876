//! Lambda envelopes and their adapters: function URL requests to [`crate::edge::api`], SQS batches
//! to the dispatcher. The SQS batch, its answer and the function URL response are
//! `aws_lambda_events`' types, and the request reads `aws_lambda_events`' request context, so
//! whatever AWS or the ecosystem's emulators send (cargo lambda watch sends `rawQueryString:
//! null` and expects `cookies` back) is read as they read it. The body is ours to decode:
//! lambda_http's conversion panics on a body flagged base64 that is not, where we answer 400.

use crate::backends::queue::{QueueMessage, WorkQueue};
use crate::config::Config;
use crate::edge::api::{self, ApiError, Endpoint};
use crate::engine::app::App;
use crate::engine::dispatch::{self, Dispatcher};
use crate::model::integration::IntegrationFactory;
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequestContext;
pub use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlResponse as UrlResponse;
pub use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use std::collections::HashMap;

/// A function URL request: `aws_lambda_events`' `LambdaFunctionUrlRequest` with the fields we
/// read, and its request context as is. It accepts everything that type accepts, and also
/// `headers` and `isBase64Encoded` null or absent, so that no envelope fails before our
/// handler can answer it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlRequest {
    #[serde(default)]
    pub raw_path: Option<String>,
    #[serde(default)]
    pub raw_query_string: Option<String>,
    #[serde(default)]
    pub headers: Option<HashMap<String, String>>,
    pub request_context: LambdaFunctionUrlRequestContext,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub is_base64_encoded: Option<bool>,
}

fn to_http(req: UrlRequest) -> Result<api::Request, ApiError> {
    let body = match (req.body, req.is_base64_encoded.unwrap_or(false)) {
        (None, _) => Bytes::new(),
        (Some(b), false) => Bytes::from(b),
        (Some(b), true) => {
            Bytes::from(base64::engine::general_purpose::STANDARD.decode(b.as_bytes()).map_err(|_| {
                ApiError::BadRequest("the request body is flagged base64 but is not valid base64".into())
            })?)
        }
    };
    let path = req.raw_path.unwrap_or_default();
    let uri = match req.raw_query_string.as_deref() {
        None | Some("") => path,
        Some(query) => format!("{path}?{query}"),
    };
    let context = req.request_context;
    let method = context.http.method.as_deref().unwrap_or("GET");
    let mut builder = http::Request::builder().method(method);
    if !uri.is_empty() {
        builder = builder.uri(uri);
    }
    for (k, v) in req.headers.iter().flatten() {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let mut request =
        builder.body(body).map_err(|_| ApiError::BadRequest("the request line or a header is malformed".into()))?;
    if let Some(arn) = context.authorizer.and_then(|a| a.iam).and_then(|iam| iam.user_arn) {
        request.extensions_mut().insert(api::auth::IamCaller(arn));
    }
    Ok(request)
}

fn from_http(resp: api::Response) -> UrlResponse {
    let (parts, body) = resp.into_parts();
    let mut out = UrlResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.headers = parts.headers;
    match String::from_utf8(body.to_vec()) {
        Ok(text) => out.body = Some(text),
        Err(raw) => {
            out.body = Some(base64::engine::general_purpose::STANDARD.encode(raw.into_bytes()));
            out.is_base64_encoded = true;
        }
    }
    out
}

/// Answer one function URL request on `route` (a function serves one route, whatever the
/// path of its URL).
pub async fn respond(app: &App, route: Endpoint, req: UrlRequest) -> UrlResponse {
    let request_id = req.request_context.request_id.clone().unwrap_or_default();
    let span = tracing::info_span!("request", %request_id, route = route.path());
    let _enter = span.enter();
    let resp = match to_http(req) {
        Ok(req) => api::handle(app, route, req).await,
        Err(e) => e.into_response(),
    };
    from_http(resp)
}

/// Process a batch; only the records that failed are reported back (ReportBatchItemFailures),
/// so SQS retries those alone and moves them to the dead-letter queue after maxReceiveCount.
pub async fn dispatch_batch(dispatcher: &Dispatcher, queue: &dyn WorkQueue, event: SqsEvent) -> SqsBatchResponse {
    let messages: Vec<QueueMessage> = event
        .records
        .into_iter()
        .map(|r| QueueMessage {
            receive_count: r.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1),
            id: r.message_id.unwrap_or_default(),
            receipt: r.receipt_handle.unwrap_or_default(),
            body: r.body.unwrap_or_default(),
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
    let mut response = SqsBatchResponse::default();
    for (m, ok) in messages.iter().zip(outcomes) {
        if !ok {
            response.add_failure(m.id.clone());
        }
    }
    response
}

/// Config, backends and integrations, once per cold start. A failure is logged naming the
/// setting and ends the process: Lambda reports it as an init failure.
async fn start(integrations: &[&dyn IntegrationFactory]) -> Result<App, lambda_runtime::Error> {
    let built = async {
        // Secrets referenced as `ssm:` / `secretsmanager:` come from the Parameters and Secrets
        // extension, once per cold start; with none, this does no I/O.
        let env =
            crate::backends::secrets_extension::resolve(std::env::vars().collect()).await.map_err(|e| e.to_string())?;
        let config = Config::load(&|name| env.get(name).cloned()).map_err(|e| e.to_string())?;
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
pub async fn run_http(route: Endpoint, integrations: &[&dyn IntegrationFactory]) -> Result<(), lambda_runtime::Error> {
    crate::observe::telemetry::init(true);
    let app = start(integrations).await?;
    let app = &app;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<UrlRequest>| async move {
        Ok::<_, lambda_runtime::Error>(respond(app, route, event.payload).await)
    }))
    .await
}

/// The dispatcher function: SQS batches in, partial batch failures out.
pub async fn run_dispatcher(integrations: &[&dyn IntegrationFactory]) -> Result<(), lambda_runtime::Error> {
    crate::observe::telemetry::init(true);
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
    use crate::integrations::github::redeliver::{Redeliverer, Report};
    crate::observe::telemetry::init(true);
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
