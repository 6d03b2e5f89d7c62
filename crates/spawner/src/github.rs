//! The production planner: `slipway_core::plan::plan_job` over the GitHub REST adapter.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use slipway_core::Job;
use slipway_core::names::check_repository;
use slipway_core::plan::{Plan, PlanError, PlanSettings, RepoSource, SourceError, plan_job};
use slipway_github::GitHubRepo;

use crate::Planner;

/// Plans with the repository read through the GitHub API.
pub struct GitHubPlanner {
    api_url: String,
    settings: PlanSettings,
    token: Option<SecretString>,
    http: reqwest::Client,
}

impl GitHubPlanner {
    pub fn new(
        api_url: &str,
        namespace: &str,
        token: Option<SecretString>,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            api_url: api_url.trim_end_matches('/').to_string(),
            settings: PlanSettings::new(namespace),
            token,
            http,
        })
    }

    fn repo(&self, repository: &str) -> Result<GitHubRepo, PlanError> {
        GitHubRepo::new(&self.api_url, repository, self.token.clone())
            .map_err(|e| PlanError::InvalidInput(e.to_string()))
    }

    /// `GET /repos/{owner}/{name}`: the default branch (the repository port has no call for it).
    async fn default_branch(&self, repository: &str) -> Result<String, PlanError> {
        check_repository(repository)
            .map_err(|e| PlanError::InvalidInput(format!("the repository {e}")))?;
        let mut req = self
            .http
            .get(format!("{}/repos/{repository}", self.api_url))
            .header("accept", "application/vnd.github+json")
            .header("user-agent", "slipway");
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose_secret());
        }
        let resp = req.send().await.map_err(|e| {
            PlanError::Source(SourceError::Unavailable(format!(
                "GitHub did not answer: {}",
                e.without_url()
            )))
        })?;
        let status = resp.status();
        if status.as_u16() == 404 {
            return Err(PlanError::Source(SourceError::NotFound(format!(
                "the repository {repository}"
            ))));
        }
        if status.as_u16() == 401 {
            return Err(PlanError::Source(SourceError::Denied(format!(
                "GitHub refused the token for {repository}"
            ))));
        }
        if status.as_u16() == 403 || status.as_u16() == 429 {
            return Err(PlanError::Source(SourceError::RateLimited {
                message: format!("GitHub answered {status}"),
                retry_after_secs: None,
            }));
        }
        if !status.is_success() {
            return Err(PlanError::Source(SourceError::Unavailable(format!(
                "GitHub answered {status}"
            ))));
        }
        let v: serde_json::Value = resp.json().await.map_err(|e| {
            PlanError::Source(SourceError::Unavailable(format!(
                "unexpected answer: {}",
                e.without_url()
            )))
        })?;
        v.get("default_branch")
            .and_then(|b| b.as_str())
            .map(str::to_string)
            .ok_or_else(|| {
                PlanError::Source(SourceError::Unavailable(
                    "the repository has no default_branch".into(),
                ))
            })
    }
}

impl Planner for GitHubPlanner {
    async fn plan(&self, job: &Job) -> Result<Plan, PlanError> {
        let repo = self.repo(&job.repository)?;
        plan_job(&repo, job, &self.settings).await
    }

    async fn branch_head(
        &self,
        repository: &str,
        _clone_url: &str,
        branch: Option<&str>,
    ) -> Result<(String, String), PlanError> {
        let default_branch = self.default_branch(repository).await?;
        let branch = branch.unwrap_or(&default_branch);
        let head = self
            .repo(repository)?
            .resolve(&format!("refs/heads/{branch}"))
            .await?;
        Ok((default_branch, head))
    }
}
