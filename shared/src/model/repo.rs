//! GitHub's names for an account and a repository. They are spliced into request paths, so
//! they are checked once, where they enter (config, an HTTP body, a route's rendered
//! content, a comment target), and carried as [`RepoName`] from there to the client.

use std::fmt;

/// `owner/name`, each part within GitHub's rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoName {
    owner: String,
    name: String,
}

const OWNER_RULE: &str = "letters, digits, - and _, not starting with - or _, up to 100";
const REPO_RULE: &str = "letters, digits, -, _ and ., up to 100, not . or ..";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoNameError {
    #[error("`{0}` is not a GitHub account name ({OWNER_RULE})")]
    Owner(String),
    #[error("`{0}` is not a GitHub repository name ({REPO_RULE})")]
    Repo(String),
    #[error("`{0}` is not owner/repo")]
    Shape(String),
}

impl RepoNameError {
    /// Which of the two parts is at fault: `owner` or `repo` (`repo` for a bad shape).
    pub fn part(&self) -> &'static str {
        match self {
            Self::Owner(_) => "owner",
            Self::Repo(_) | Self::Shape(_) => "repo",
        }
    }

    /// What the part at fault may hold.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Owner(_) => OWNER_RULE,
            Self::Repo(_) | Self::Shape(_) => REPO_RULE,
        }
    }
}

/// An account (user or organization) name as GitHub allows it: letters, digits and hyphens,
/// not starting with a hyphen; `_` too, which Enterprise Managed Users' names carry
/// (`octocat_acme`). Up to 100 characters. No `.`: `a.b` is not an account GitHub can have.
pub fn owner_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !s.starts_with(['-', '_'])
}

/// A repository name as GitHub allows it: letters, digits, `-`, `_` and `.`, up to 100, and
/// not `.` or `..` (which would climb out of the path it is spliced into).
pub fn repo_ok(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 100
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl RepoName {
    pub fn new(owner: &str, name: &str) -> Result<Self, RepoNameError> {
        if !owner_ok(owner) {
            return Err(RepoNameError::Owner(owner.to_owned()));
        }
        if !repo_ok(name) {
            return Err(RepoNameError::Repo(name.to_owned()));
        }
        Ok(Self { owner: owner.to_owned(), name: name.to_owned() })
    }

    /// `owner/name`.
    pub fn parse(full: &str) -> Result<Self, RepoNameError> {
        let (owner, name) = full.split_once('/').ok_or_else(|| RepoNameError::Shape(full.to_owned()))?;
        Self::new(owner, name)
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_part_has_githubs_rule() {
        let r = RepoName::parse("octo-org/hello.world_2").expect("valid");
        assert_eq!(
            (r.owner(), r.name(), r.to_string().as_str()),
            ("octo-org", "hello.world_2", "octo-org/hello.world_2")
        );
        assert!(RepoName::new("octocat_acme", "r").is_ok());
        for (owner, repo, part) in [
            ("a.b", "r", "owner"),
            ("-a", "r", "owner"),
            ("_a", "r", "owner"),
            ("", "r", "owner"),
            ("a/b", "r", "owner"),
            ("o", "..", "repo"),
            ("o", ".", "repo"),
            ("o", "r?x", "repo"),
            ("o", "", "repo"),
        ] {
            assert_eq!(RepoName::new(owner, repo).map_err(|e| e.part()), Err(part), "{owner}/{repo}");
        }
        assert_eq!(RepoName::new(&"a".repeat(101), "r").map_err(|e| e.part()), Err("owner"));
        assert_eq!(RepoName::new("o", &"r".repeat(101)).map_err(|e| e.part()), Err("repo"));
        assert!(matches!(RepoName::parse("no-slash"), Err(RepoNameError::Shape(_))));
        assert!(matches!(RepoName::parse("o/r/x"), Err(RepoNameError::Repo(_))));
    }
}
