//! `POST /api/v1/integrations/github/pr`: create a pull request, answer its number and URL.

use super::{ApiError, Request, Response, json};
use crate::model::event::Artifact;
use crate::model::integration::{Integration, IntegrationError};
use crate::model::repo::{RepoName, RepoNameError};
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

/// The owner and repository, checked by GitHub's own rules: a bad one is the caller's 400,
/// named, before GitHub is asked.
fn repo(r: &PrRequest) -> Result<RepoName, ApiError> {
    let (owner, repo) = (required("owner", &r.owner, 100)?, required("repo", &r.repo, 100)?);
    RepoName::new(owner, repo)
        .map_err(|e: RepoNameError| ApiError::BadRequest(format!("`{}` may hold only {}", e.part(), e.rule())))
}

pub async fn handle(github: Option<&dyn Integration>, req: Request) -> Result<Response, ApiError> {
    let r: PrRequest = serde_json::from_slice(req.body())
        .map_err(|e| ApiError::BadRequest(format!("the body is not a valid request: {e}")))?;
    let repo = repo(&r)?;
    let mut content = Map::new();
    content.insert("owner".into(), repo.owner().into());
    content.insert("repo".into(), repo.name().into());
    content.insert("title".into(), required("title", &r.title, 256)?.into());
    content.insert("head".into(), required("head", &r.head, 255)?.into());
    content.insert("base".into(), required("base", &r.base, 255)?.into());
    let body = match &r.body {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(ApiError::BadRequest("`body` must be a string".into())),
    };
    content.insert("body".into(), body.into());

    let github = github.ok_or(ApiError::NotConfigured("the GitHub integration is not enabled"))?;
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
