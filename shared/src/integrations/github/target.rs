//! Where a comment goes: a pull request or issue URL (github.com or the Enterprise host),
//! or `owner/repo#number`.

use super::client::Repo;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRef {
    pub repo: Repo,
    pub number: u64,
}

/// The web host that goes with an API base URL: `api.github.com` → `github.com`; an
/// Enterprise `https://ghe.example.com/api/v3` → `ghe.example.com`.
pub fn web_host(api_base: &str) -> String {
    let host = api_base.split("://").nth(1).unwrap_or(api_base).split('/').next().unwrap_or_default();
    if host == "api.github.com" { "github.com".to_owned() } else { host.to_owned() }
}

impl IssueRef {
    /// Parse `https://<host>/<owner>/<repo>/(pull|issues)/<n>[...]` for an allowed host.
    pub fn from_url(url: &str, allowed_hosts: &[&str]) -> Option<Self> {
        let rest = url.strip_prefix("https://")?;
        let mut parts = rest.split(['/', '#', '?']);
        let host = parts.next()?;
        if !allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return None;
        }
        let (owner, name, kind, number) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if !(kind == "pull" || kind == "issues") {
            return None;
        }
        let number = number.parse().ok().filter(|n| *n > 0)?;
        Some(Self { repo: Repo::new(owner, name).ok()?, number })
    }

    /// Parse `owner/repo#123`.
    pub fn from_short(target: &str) -> Option<Self> {
        let (path, number) = target.split_once('#')?;
        let number = number.parse().ok().filter(|n| *n > 0)?;
        Some(Self { repo: Repo::parse(path).ok()?, number })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_request_urls_on_allowed_hosts_only() {
        let hosts = ["github.com", "ghe.example.com"];
        let r = IssueRef::from_url("https://github.com/octo/hello-world/pull/123", &hosts).expect("github.com");
        assert_eq!((r.repo.owner(), r.repo.name(), r.number), ("octo", "hello-world", 123));
        assert!(IssueRef::from_url("https://ghe.example.com/a/b/pull/7/files", &hosts).is_some());
        assert!(IssueRef::from_url("https://github.com/a/b/issues/9#issuecomment-1", &hosts).is_some());
        for bad in [
            "http://github.com/a/b/pull/1",
            "https://evil.example.com/a/b/pull/1",
            "https://github.com.evil.com/a/b/pull/1",
            "https://github.com/a/b/commits/1",
            "https://github.com/a/b/pull/0",
            "https://github.com/a/b/pull/x",
            "https://github.com/a/../pull/1",
        ] {
            assert!(IssueRef::from_url(bad, &hosts).is_none(), "{bad}");
        }
    }

    #[test]
    fn short_targets_and_web_hosts() {
        let r = IssueRef::from_short("octo/repo#42").expect("short");
        assert_eq!(r.number, 42);
        assert!(IssueRef::from_short("octo/repo").is_none());
        assert!(IssueRef::from_short("octo#1").is_none());
        assert_eq!(web_host("https://api.github.com"), "github.com");
        assert_eq!(web_host("https://ghe.example.com/api/v3"), "ghe.example.com");
        assert_eq!(web_host("http://127.0.0.1:5555"), "127.0.0.1:5555");
    }
}
