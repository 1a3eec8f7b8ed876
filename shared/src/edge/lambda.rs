//! Lambda envelopes and their adapters: function URL requests to [`crate::edge::api`], SQS batches
//! to the dispatcher. The SQS batch, its answer and the function URL response are
//! `aws_lambda_events`' types, and the request reads `aws_lambda_events`' request context, so
//! whatever AWS or the ecosystem's emulators send (cargo lambda watch sends `rawQueryString:
//! null` and expects `cookies` back) is read as they read it. The body is ours to decode:
//! lambda_http's conversion panics on a body flagged base64 that is not, where we answer 400.

use crate::backends::queue::QueueMessage;
use crate::config::Config;
use crate::edge::api::{self, ApiError, Endpoint};
use crate::engine::app::{App, Needs};
use crate::engine::dispatch::Dispatcher;
use crate::engine::redeliver::Report;
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
    let span = tracing::info_span!("request", %request_id, route = %route.path());
    let _enter = span.enter();
    let resp = match to_http(req) {
        Ok(req) => api::handle(app, route, req).await,
        Err(e) => e.into_response(),
    };
    from_http(resp)
}

/// Process a batch; only the records that failed are reported back (ReportBatchItemFailures),
/// so SQS retries those alone and moves them to the dead-letter queue after maxReceiveCount.
pub async fn dispatch_batch(dispatcher: &Dispatcher, event: SqsEvent) -> SqsBatchResponse {
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
    // Lambda's event source mapping deletes successful records itself; only a requested
    // retry delay is ours to set.
    let outcomes = futures_util::future::join_all(messages.iter().map(|m| dispatcher.process_delivered(m))).await;
    let mut response = SqsBatchResponse::default();
    for (m, ok) in messages.iter().zip(outcomes) {
        if !ok {
            response.add_failure(m.id.clone());
        }
    }
    response
}

/// What a function does with its invocations.
#[derive(Debug, Clone, Copy)]
enum Serves {
    Http(Endpoint),
    Dispatcher,
    Redelivery,
    Bridge,
}

/// What a function builds, given the factories its binary links: only what its requests use.
/// The redelivery job builds its own GitHub client.
fn needs<'a>(app: &App, serves: Serves, factories: &'a [&'a dyn IntegrationFactory]) -> Needs<'a> {
    match serves {
        Serves::Dispatcher | Serves::Http(Endpoint::Health) => Needs::all(factories),
        Serves::Http(Endpoint::Webhook(source)) if app.ingest().reports_health(source) => Needs::all(factories),
        Serves::Http(Endpoint::GithubPr) => Needs::GITHUB,
        Serves::Http(_) | Serves::Redelivery | Serves::Bridge => Needs::NONE,
    }
}

/// Config, backends and integrations, built into what a function serves with (`T`) once per
/// instance. With no secret reference in the environment that happens at init, so that a bad
/// setting is an init failure naming the setting. With references it happens on the first
/// invocation, since the Parameters and Secrets extension answers only then; a failed first
/// build fails that invocation, is logged naming the variable, and is tried again on the next.
struct Instance<'a, T> {
    cell: tokio::sync::OnceCell<T>,
    serves: Serves,
    integrations: &'a [&'a dyn IntegrationFactory],
    wire: fn(App) -> Result<T, String>,
}

impl<'a, T> Instance<'a, T> {
    async fn start(
        serves: Serves,
        integrations: &'a [&'a dyn IntegrationFactory],
        wire: fn(App) -> Result<T, String>,
    ) -> Result<Self, lambda_runtime::Error> {
        let instance = Self { cell: tokio::sync::OnceCell::new(), serves, integrations, wire };
        let env: HashMap<String, String> = std::env::vars().collect();
        if !crate::backends::secrets_extension::has_references(env.values()) {
            let built = instance.build(env).await?;
            let _ = instance.cell.set(built);
        }
        Ok(instance)
    }

    async fn build(&self, env: HashMap<String, String>) -> Result<T, lambda_runtime::Error> {
        let built = async {
            let env = crate::backends::secrets_extension::resolve(env).await.map_err(|e| e.to_string())?;
            let config = Config::load(&|name| env.get(name).cloned()).map_err(|e| e.to_string())?;
            let app = App::from_config(config).map_err(|e| e.to_string())?;
            let needs = needs(&app, self.serves, self.integrations);
            let app = app.build(needs).await.map_err(|e| e.to_string())?;
            (self.wire)(app)
        }
        .await;
        built.map_err(|e| {
            tracing::error!(error = %e, "start-up failed");
            e.into()
        })
    }

    async fn get(&self) -> Result<&T, lambda_runtime::Error> {
        self.cell.get_or_try_init(|| self.build(std::env::vars().collect())).await
    }
}

/// The whole life of an HTTP function: JSON logs, config and backends built once, then one
/// route served for every invocation. `integrations` are the custom integrations the binary
/// links, for the endpoints that report every integration's health (the others pass none).
pub async fn run_http(route: Endpoint, integrations: &[&dyn IntegrationFactory]) -> Result<(), lambda_runtime::Error> {
    crate::observe::telemetry::init(true);
    let instance = Instance::start(Serves::Http(route), integrations, Ok).await?;
    let instance = &instance;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<UrlRequest>| async move {
        let app = instance.get().await?;
        Ok::<_, lambda_runtime::Error>(respond(app, route, event.payload).await)
    }))
    .await
}

/// What the dispatcher function is invoked with: an SQS batch, or the scheduled health probe
/// (`{"aetherium": "health-probe"}`, template.yaml's HealthProbe).
#[derive(Debug, Deserialize)]
pub struct DispatcherEvent {
    #[serde(rename = "Records", default)]
    records: Option<Vec<aws_lambda_events::event::sqs::SqsMessage>>,
    #[serde(default)]
    aetherium: Option<String>,
}

/// The dispatcher's answer: the batch's failures, or the probe's findings.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum DispatcherAnswer {
    Batch(SqsBatchResponse),
    Probe(crate::observe::health::HealthReport),
}

/// The dispatcher function: SQS batches in, partial batch failures out; and every few minutes
/// the health of the integrations it holds credentials for, shared with the functions that
/// hold none (health, slack-webhook).
pub async fn run_dispatcher(integrations: &[&dyn IntegrationFactory]) -> Result<(), lambda_runtime::Error> {
    crate::observe::telemetry::init(true);
    let instance =
        Instance::start(Serves::Dispatcher, integrations, |app| Ok((app.health(), app.dispatcher()))).await?;
    let instance = &instance;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<DispatcherEvent>| async move {
            let (health, dispatcher) = instance.get().await?;
            let answer = match event.payload {
                DispatcherEvent { records: Some(records), .. } => {
                    let mut batch = SqsEvent::default();
                    batch.records = records;
                    DispatcherAnswer::Batch(dispatch_batch(dispatcher, batch).await)
                }
                DispatcherEvent { aetherium: Some(what), .. } if what == "health-probe" => {
                    DispatcherAnswer::Probe(health.probe_and_share().await)
                }
                _ => return Err(lambda_runtime::Error::from("neither an SQS batch nor the health probe")),
            };
            Ok::<_, lambda_runtime::Error>(answer)
        },
    ))
    .await
}

/// The scheduled GitHub redelivery function: each EventBridge invocation (its event is not
/// read) is one run, answered with the run's report. A run that fails (GitHub refusing the
/// listing, the store down) fails the invocation, so it shows in the function's errors.
pub async fn run_redeliver() -> Result<(), lambda_runtime::Error> {
    crate::observe::telemetry::init(true);
    let instance = Instance::start(Serves::Redelivery, &[], |app| {
        let job = app.redeliverer().map_err(|e| e.to_string())?;
        Ok((job, app.redelivery_off().unwrap_or("no webhook to watch")))
    })
    .await?;
    let instance = &instance;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |_: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            let (job, off) = instance.get().await?;
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

/// The scheduled bus bridge: each invocation (EventBridge Scheduler, every minute; its event
/// is not read) listens on the bus and the inbox for `events.bridge.listen_seconds`, which
/// outlasts the minute so that consecutive invocations overlap, and answers with its report.
pub async fn run_bridge() -> Result<(), lambda_runtime::Error> {
    crate::observe::telemetry::init(true);
    let instance = Instance::start(Serves::Bridge, &[], |app| match app.describe().bus {
        "redis" => Ok(app.bridge()),
        _ => Err("the bus bridge listens on Redis and there is none: set REDIS_URL (the stack does)".into()),
    })
    .await?;
    let instance = &instance;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |_: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            let bridge = instance.get().await?;
            Ok::<_, lambda_runtime::Error>(bridge.run_for_configured().await)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the function serving `serves` registers, with GitHub and Slack both configured.
    async fn built(serves: Serves) -> Vec<String> {
        let env = |k: &str| match k {
            "GITHUB_TOKEN" => Some("ghp_x".to_owned()),
            "SLACK_BOT_TOKEN" => Some("xoxb-x".to_owned()),
            _ => None,
        };
        let app = App::from_config(Config::load(&env).expect("config")).expect("app");
        let needs = needs(&app, serves, &[]);
        app.build(needs).await.expect("built").describe().integrations
    }

    #[tokio::test]
    async fn each_function_builds_only_the_integrations_its_requests_use() {
        let none: Vec<String> = Vec::new();
        let github = vec!["github".to_owned()];
        let both = vec!["github".to_owned(), "slack".to_owned()];
        assert_eq!(built(Serves::Http(Endpoint::Webhook("github"))).await, none, "github-webhook");
        assert_eq!(built(Serves::Http(Endpoint::Events)).await, none, "events");
        assert_eq!(built(Serves::Http(Endpoint::LogsQuery)).await, none, "logs-query");
        assert_eq!(built(Serves::Http(Endpoint::Metrics)).await, none, "metrics");
        assert_eq!(built(Serves::Redelivery).await, none, "github-redeliver builds its own client");
        assert_eq!(built(Serves::Bridge).await, none, "bus-bridge only queues");
        assert_eq!(built(Serves::Http(Endpoint::GithubPr)).await, github, "github-pr");
        assert_eq!(built(Serves::Http(Endpoint::Webhook("slack"))).await, both, "slack-webhook: /aetherium-status");
        assert_eq!(built(Serves::Http(Endpoint::Health)).await, both, "health");
        assert_eq!(built(Serves::Dispatcher).await, both, "the dispatcher runs every route");
    }
}
