//! The production planner: `slipway_core::plan::plan_job` over the GitHub client.

use secrecy::SecretString;
use slipway_core::Job;
use slipway_core::plan::{Plan, PlanError, PlanSettings, RepoSource, plan_job};
use slipway_github::{GitHub, GitHubRepo, SetupError};

use crate::Planner;

/// Plans with the repository read through the GitHub API.
pub struct GitHubPlanner {
    github: GitHub,
    settings: PlanSettings,
}

impl GitHubPlanner {
    pub fn new(
        api_url: &str,
        namespace: &str,
        token: Option<SecretString>,
    ) -> Result<Self, SetupError> {
        Ok(Self {
            github: GitHub::new(api_url, token)?,
            settings: PlanSettings::new(namespace),
        })
    }

    fn repo(&self, repository: &str) -> Result<GitHubRepo, PlanError> {
        self.github
            .repo(repository)
            .map_err(|e| PlanError::InvalidInput(e.to_string()))
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
        let repo = self.repo(repository)?;
        let default_branch = repo.default_branch().await?;
        let branch = branch.unwrap_or(&default_branch);
        let head = repo.resolve(&format!("refs/heads/{branch}")).await?;
        Ok((default_branch, head))
    }
}
