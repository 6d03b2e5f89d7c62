//! Which refs are built and which repositories are served.

use globset::{GlobBuilder, GlobMatcher};

/// The pattern that stands for the repository's default branch, whatever it is called.
pub const DEFAULT_BRANCH: &str = "$default";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("{what} pattern {pattern:?} is not a valid glob: {reason}")]
    BadGlob {
        what: &'static str,
        pattern: String,
        reason: String,
    },
}

#[derive(Debug, Clone)]
enum Pattern {
    DefaultBranch,
    Glob(GlobMatcher),
}

impl Pattern {
    fn matches(&self, name: &str, default_branch: &str) -> bool {
        match self {
            Pattern::DefaultBranch => name == default_branch,
            Pattern::Glob(g) => g.is_match(name),
        }
    }
}

fn parse_list(
    what: &'static str,
    list: &str,
    case_insensitive: bool,
) -> Result<Vec<Pattern>, RuleError> {
    list.split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            if p == DEFAULT_BRANCH {
                return Ok(Pattern::DefaultBranch);
            }
            GlobBuilder::new(p)
                // `*` stays inside one `/`-separated segment; `**` crosses them.
                .literal_separator(true)
                .case_insensitive(case_insensitive)
                .build()
                .map(|g| Pattern::Glob(g.compile_matcher()))
                .map_err(|e| RuleError::BadGlob {
                    what,
                    pattern: p.to_string(),
                    reason: e.kind().to_string(),
                })
        })
        .collect()
}

/// The kind of ref a push was to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefKind {
    Branch,
    Tag,
}

/// Splits `refs/heads/x` and `refs/tags/x`; any other namespace is `None`.
pub fn split_ref(git_ref: &str) -> Option<(RefKind, &str)> {
    if let Some(b) = git_ref.strip_prefix("refs/heads/") {
        Some((RefKind::Branch, b))
    } else {
        git_ref
            .strip_prefix("refs/tags/")
            .map(|t| (RefKind::Tag, t))
    }
}

/// Which branches and tags are built: comma- or newline-separated globs; `$default` is the
/// repository's default branch. The defaults build the default branch and every tag.
#[derive(Debug, Clone)]
pub struct RefRules {
    branches: Vec<Pattern>,
    tags: Vec<Pattern>,
}

impl Default for RefRules {
    fn default() -> Self {
        Self {
            branches: vec![Pattern::DefaultBranch],
            tags: parse_list("tag", "*", false).expect("static glob"),
        }
    }
}

impl RefRules {
    pub fn parse(branches: &str, tags: &str) -> Result<Self, RuleError> {
        Ok(Self {
            branches: parse_list("branch", branches, false)?,
            tags: parse_list("tag", tags, false)?,
        })
    }

    /// Whether a push to `git_ref` is built.
    pub fn builds(&self, git_ref: &str, default_branch: &str) -> bool {
        match split_ref(git_ref) {
            Some((RefKind::Branch, name)) => self
                .branches
                .iter()
                .any(|p| p.matches(name, default_branch)),
            Some((RefKind::Tag, name)) => self.tags.iter().any(|p| p.matches(name, default_branch)),
            None => false,
        }
    }
}

/// Repositories that slipway serves: `owner/name` or globs such as `owner/*`, compared without
/// case (GitHub names are case-insensitive). `*` serves every repository whose hook is signed with
/// an active secret. An empty list serves none.
#[derive(Debug, Clone)]
pub struct RepoFilter {
    patterns: Vec<Pattern>,
}

impl RepoFilter {
    pub fn parse(list: &str) -> Result<Self, RuleError> {
        Ok(Self {
            // `*` alone means every repository; elsewhere `*` stays inside the owner or the name.
            patterns: parse_list("repository", list, true)?
                .into_iter()
                .chain(
                    list.split([',', '\n'])
                        .any(|p| p.trim() == "*")
                        .then(|| parse_list("repository", "*/*", true).expect("static glob"))
                        .into_iter()
                        .flatten(),
                )
                .collect(),
        })
    }

    pub fn any() -> Self {
        Self::parse("*").expect("static glob")
    }

    pub fn allows(&self, full_name: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(full_name, ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_build_default_branch_and_tags() {
        let r = RefRules::default();
        assert!(r.builds("refs/heads/main", "main"));
        assert!(!r.builds("refs/heads/feature", "main"));
        assert!(r.builds("refs/heads/trunk", "trunk"));
        assert!(r.builds("refs/tags/v1.0.0", "main"));
        assert!(!r.builds("refs/notes/commits", "main"));
    }

    #[test]
    fn globs_stay_inside_a_segment_unless_doubled() {
        let r = RefRules::parse("$default, release/*", "v*").unwrap();
        assert!(r.builds("refs/heads/release/1.x", "main"));
        assert!(!r.builds("refs/heads/release/1.x/hotfix", "main"));
        assert!(r.builds("refs/tags/v2", "main"));
        assert!(!r.builds("refs/tags/api/v2", "main"));
        let r = RefRules::parse("feature/**", "**").unwrap();
        assert!(r.builds("refs/heads/feature/a/b", "main"));
        assert!(r.builds("refs/tags/api/v2", "main"));
        assert!(!r.builds("refs/heads/Main", "main"));
    }

    #[test]
    fn bad_glob_is_named() {
        let e = RefRules::parse("release/[", "").unwrap_err();
        assert!(e.to_string().contains("release/["), "{e}");
    }

    #[test]
    fn repositories_without_case() {
        let f = RepoFilter::parse("octo-org/*, Codertocat/Hello-World").unwrap();
        assert!(f.allows("codertocat/hello-world"));
        assert!(f.allows("Octo-Org/api"));
        assert!(!f.allows("other/api"));
        assert!(!RepoFilter::parse("").unwrap().allows("a/b"));
        assert!(RepoFilter::any().allows("a/b"));
    }
}
