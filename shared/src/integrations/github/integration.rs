//! The GitHub integration: PR comments on task events (exactly once), pull requests as
//! artifacts, comments as notifications, and a health check.

use super::client::{GithubClient, GithubError, Repo};
use super::target::{IssueRef, web_host};
use crate::backends::store::Store;
use crate::model::event::{Artifact, ArtifactRef, Event, Notification, topics};
use crate::model::integration::{Health, Integration, IntegrationConfig, IntegrationError};
use crate::model::markup::{self, Markup};
use crate::observe::activity::ActivityLog;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

const NAME: &str = "github";
/// Pages of comments searched for an earlier post's marker (100 comments a page).
const MARKER_PAGES: u32 = 10;

#[derive(Debug)]
pub struct GithubIntegration {
    client: Option<GithubClient>,
    activity: ActivityLog,
    hosts: Vec<String>,
}

fn permanent(reason: impl Into<String>) -> IntegrationError {
    IntegrationError::Permanent { integration: NAME.into(), reason: reason.into() }
}

fn field<'a>(content: &'a serde_json::Map<String, Value>, key: &str) -> Result<&'a str, IntegrationError> {
    content
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| permanent(format!("`{key}` is required and must be a non-empty string")))
}

impl GithubIntegration {
    /// `client` is `None` when GitHub is not configured: the integration then reports
    /// `disabled` and refuses work.
    pub fn new(client: Option<GithubClient>, store: Arc<dyn Store>) -> Self {
        let mut hosts = vec!["github.com".to_owned()];
        if let Some(c) = &client {
            let h = web_host(c.base_url());
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        Self { client, activity: ActivityLog::new(store), hosts }
    }

    fn client(&self) -> Result<&GithubClient, IntegrationError> {
        self.client.as_ref().ok_or_else(|| IntegrationError::NotConfigured {
            integration: NAME.into(),
            reason: "set GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY".into(),
        })
    }

    fn parse_target(&self, target: &str) -> Option<IssueRef> {
        let hosts: Vec<&str> = self.hosts.iter().map(String::as_str).collect();
        IssueRef::from_url(target, &hosts).or_else(|| IssueRef::from_short(target))
    }

    /// Post `text` on an issue or PR once per (event, action). The dispatcher's route lock
    /// keeps two dispatchers from posting together; a hidden marker in the body lets a retry
    /// after a crash (posted, not yet marked done) see that the comment is already there.
    pub async fn comment_once(
        &self,
        at: &IssueRef,
        event_id: &str,
        action: &str,
        text: &str,
    ) -> Result<(), IntegrationError> {
        let client = self.client()?;
        let marker = marker(client.marker_key(), event_id, action);
        let path = format!("/repos/{}/issues/{}/comments", at.repo, at.number);
        for page in 1..=MARKER_PAGES {
            let comments =
                client.get("list_comments", &format!("{path}?per_page=100&page={page}"), Some(&at.repo)).await?;
            let list = comments.as_array().map(Vec::as_slice).unwrap_or_default();
            if list.iter().any(|c| c["body"].as_str().is_some_and(|b| b.contains(&marker))) {
                tracing::info!(event_id, action, "comment already posted; not posting again");
                return Ok(());
            }
            if list.len() < 100 {
                break;
            }
        }
        client.post("comment", &path, &json!({ "body": format!("{text}\n\n{marker}") }), Some(&at.repo)).await?;
        Ok(())
    }
}

/// The hidden marker of a comment: an HTML comment that no id can close early (anything but
/// letters, digits and `-_.:` is percent-encoded), the same for a post and for its search,
/// ending in a MAC of the event id and action under `key`. Anyone can post a comment holding
/// a marker, to stop our comment for an event not yet posted; only we can sign one.
fn marker(key: &[u8; 32], event_id: &str, action: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut m = String::from("<!-- aetherium:");
    let what = format!("{event_id}:{action}");
    for b in what.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':') {
            m.push(char::from(b));
        } else {
            m.push_str(&format!("%{b:02X}"));
        }
    }
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(what.as_bytes());
    m.push(':');
    m.push_str(&hex::encode(&mac.finalize().into_bytes()[..12]));
    m.push_str(" -->");
    m
}

/// The guide's PR comment for a task event, or `None` for other events. The task id and
/// error come from the platform's data: escaped, so they mention no one and add no markup.
pub fn task_comment(event: &Event) -> Option<String> {
    let text = |s: &str| markup::github(s, false).into_owned();
    let task = text(event.data_str("task_id").unwrap_or("(unknown)"));
    match event.kind.as_str() {
        topics::TASK_COMPLETED => Some(format!("✅ Task {task} completed successfully!")),
        topics::TASK_FAILED => Some(match event.data_str("error").filter(|e| !e.is_empty()) {
            Some(error) => format!("❌ Task {task} failed: {}", text(error)),
            None => format!("❌ Task {task} failed"),
        }),
        _ => None,
    }
}

#[async_trait]
impl Integration for GithubIntegration {
    fn name(&self) -> &str {
        NAME
    }

    async fn initialize(&self, _config: &IntegrationConfig) -> Result<(), IntegrationError> {
        Ok(())
    }

    async fn handle_event(&self, event: &Event) -> Result<(), IntegrationError> {
        let (Some(text), Some(url)) = (task_comment(event), event.data_str("pull_request")) else {
            return Ok(());
        };
        let Some(pr) = self.parse_target(url) else {
            return Err(permanent(format!("`pull_request` is not a pull request URL on {}", self.hosts.join(" or "))));
        };
        let result = self.comment_once(&pr, &event.id, "task-comment", &text).await;
        let what = format!("comment on {}#{}", pr.repo, pr.number);
        self.activity.outcome(NAME, &what, result.as_ref().map(drop), Some(&event.id)).await;
        result
    }

    async fn send_notification(&self, notification: &Notification) -> Result<(), IntegrationError> {
        let client = self.client()?;
        let at = self
            .parse_target(&notification.target)
            .ok_or_else(|| permanent("the target must be a PR or issue URL, or owner/repo#number"))?;
        let path = format!("/repos/{}/issues/{}/comments", at.repo, at.number);
        let result = client
            .post("comment", &path, &json!({ "body": notification.message }), Some(&at.repo))
            .await
            .map(drop)
            .map_err(Into::into);
        let shown = format!("{}#{}", at.repo, at.number);
        self.activity.outcome(NAME, &format!("notify {shown}"), result.as_ref().map(drop), None).await;
        result
    }

    async fn create_artifact(&self, artifact: &Artifact) -> Result<ArtifactRef, IntegrationError> {
        if artifact.kind != "pull_request" {
            return Err(IntegrationError::unsupported(NAME, format!("artifacts of type `{}`", artifact.kind)));
        }
        let client = self.client()?;
        let c = &artifact.content;
        // Both go into the request path: a `repo` of `widgets/merges?` would reach another
        // endpoint. GitHub's own name rules keep them to one path segment each.
        let repo =
            Repo::new(field(c, "owner")?, field(c, "repo")?).map_err(|e| permanent(format!("`{}` {e}", e.part())))?;
        let body = json!({
            "title": field(c, "title")?,
            "head": field(c, "head")?,
            "base": field(c, "base")?,
            "body": c.get("body").and_then(Value::as_str).unwrap_or_default(),
        });
        let result: Result<Value, IntegrationError> =
            client.post("create_pr", &format!("/repos/{repo}/pulls"), &body, Some(&repo)).await.map_err(Into::into);
        self.activity.outcome(NAME, &format!("create pull request in {repo}"), result.as_ref().map(drop), None).await;
        let pr = result?;
        Ok(ArtifactRef { id: pr["number"].as_u64(), url: pr["html_url"].as_str().map(str::to_owned) })
    }

    fn markup(&self) -> Markup {
        Markup::GithubMarkdown
    }

    async fn health(&self) -> Health {
        let Some(client) = &self.client else { return Health::Disabled };
        let checked = client.probe().await;
        match checked {
            Ok(_) => Health::Healthy,
            Err(GithubError::Status { status: 401, .. }) => Health::Unhealthy("bad credentials (401)".into()),
            Err(GithubError::Status { status, .. }) => Health::Unhealthy(format!("GitHub answered {status}")),
            Err(GithubError::RateLimited { .. }) => Health::Unhealthy("rate limited".into()),
            Err(GithubError::Unavailable(_)) => Health::Unhealthy("unreachable".into()),
            Err(GithubError::Auth(_)) => Health::Unhealthy("App authentication failed".into()),
        }
    }
}
