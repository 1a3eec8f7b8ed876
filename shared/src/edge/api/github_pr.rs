//! `POST /api/v1/integrations/github/pr`: create a pull request, answer its number and URL.

use super::{ApiError, Request, Response, auth, json};
use crate::engine::app::App;
use crate::model::event::Artifact;
use crate::model::integration::IntegrationError;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrRequest {
    owner: Option<Value>,
    repo: Option<Value>,
    title: Option<Value>,
    body: Option<Value>,
    head: Option<Value>,
    base: Option<Value>,
}

fn required<'a>(name: &str, v: &'a Option<Value>, max: usize) -> Result<&'a str, ApiError> {
    let s = match v {
        None | Some(Value::Null) => return Err(ApiError::BadRequest(format!("`{name}` is required"))),
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Err(ApiError::BadRequest(format!("`{name}` must be a string"))),
    };
    if s.is_empty() || s.len() > max {
        return Err(ApiError::BadRequest(format!("`{name}` must be 1 to {max} characters")));
    }
    Ok(s)
}

fn name(field: &str, v: &Option<Value>) -> Result<String, ApiError> {
    let s = required(field, v, 100)?;
    if s == "." || s == ".." || !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(ApiError::BadRequest(format!("`{field}` may hold only letters, digits, -, _ and .")));
    }
    Ok(s.to_owned())
}

pub async fn handle(app: &App, req: Request) -> Result<Response, ApiError> {
    auth::internal(app.config.api_token.as_ref(), app.config.iam_url, &req)?;
    let r: PrRequest = serde_json::from_slice(req.body())
        .map_err(|e| ApiError::BadRequest(format!("the body is not a valid request: {e}")))?;
    let mut content = Map::new();
    content.insert("owner".into(), name("owner", &r.owner)?.into());
    content.insert("repo".into(), name("repo", &r.repo)?.into());
    content.insert("title".into(), required("title", &r.title, 256)?.into());
    content.insert("head".into(), required("head", &r.head, 255)?.into());
    content.insert("base".into(), required("base", &r.base, 255)?.into());
    let body = match &r.body {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(ApiError::BadRequest("`body` must be a string".into())),
    };
    content.insert("body".into(), body.into());

    let github = app.registry.get("github").ok_or(ApiError::NotConfigured("the GitHub integration is not enabled"))?;
    let created = github.create_artifact(&Artifact { kind: "pull_request".into(), content }).await;
    match created {
        Ok(pr) => Ok(json(StatusCode::CREATED, &serde_json::json!({ "number": pr.id, "url": pr.url }))),
        Err(IntegrationError::Rejected { status, message, .. }) => Err(ApiError::Upstream {
            status: match status {
                404 => StatusCode::NOT_FOUND,
                422 => StatusCode::UNPROCESSABLE_ENTITY,
                401 | 403 => StatusCode::BAD_GATEWAY,
                _ => StatusCode::BAD_REQUEST,
            },
            message: format!("GitHub: {message}"),
        }),
        Err(IntegrationError::NotConfigured { .. }) => {
            Err(ApiError::NotConfigured("the GitHub integration has no credentials"))
        }
        Err(e) => Err(ApiError::BadGateway(format!("GitHub could not be reached or failed: {e}"))),
    }
}
