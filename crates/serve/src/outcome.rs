//! A build of `slipway serve` as core's notification sees it: a [`BuildRecord`] and its job
//! turned into `slipway_core::notify::BuildOutcome` — what the notification reports, and what the
//! child jobs of a successful parent are decided from (`slipway_core::notify::child_job`).

use std::time::Duration;

use serde_json::Value;
use slipway_core::Job;
use slipway_core::build_env::BuildInfo;
use slipway_core::notify::{BuildOutcome, BuildStatus, FailedPhase};

use crate::store::{self, BuildRecord};

/// What the notification says about a finished build of serve.
pub fn outcome(b: &BuildRecord, job: Option<&Job>, children: Vec<String>) -> BuildOutcome {
    let status = match b.state.as_str() {
        store::SUCCEEDED => BuildStatus::Succeeded,
        store::FAILED => BuildStatus::Failed,
        _ => BuildStatus::Stopped,
    };
    let failed_phase = match b.state.as_str() {
        store::SUCCEEDED => None,
        state => Some(FailedPhase {
            phase: failed_phase_name(b),
            status: state.to_ascii_uppercase(),
            reason: b.error.clone().unwrap_or_default(),
        }),
    };
    let trigger = job
        .map(|j| match &j.trigger {
            slipway_core::Trigger::Push => "push".to_string(),
            slipway_core::Trigger::Schedule { name } => format!("schedule:{name}"),
            slipway_core::Trigger::Parent { image, .. } => format!("parent:{image}"),
        })
        .unwrap_or_default();
    BuildOutcome {
        status,
        build_id: b.id.to_string(),
        info: BuildInfo {
            job_id: b.job_id.clone(),
            delivery_id: job.map(|j| j.delivery_id.clone()).unwrap_or_default(),
            trigger,
            repository: b.repository.clone(),
            git_ref: b.git_ref.clone(),
            default_branch: job.map(|j| j.default_branch.clone()).unwrap_or_default(),
            commit: b.commit.clone(),
            image: b.image.clone(),
            tags: b.tags.clone(),
            children,
            deploy: b.planned.deploy.clone(),
            autotest: b.planned.autotest,
            digest: b.digest.clone(),
            part: Default::default(),
        },
        log_url: Some(format!("/builds/{}/log", b.id)),
        duration: b
            .duration_ms
            .map(|ms| Duration::from_millis(ms.max(0) as u64)),
        failed_phase,
        clone_url: job.map(|j| j.clone_url.clone()),
    }
}

/// The runner's failed phase, when the outcome names one; else where the build stopped.
fn failed_phase_name(b: &BuildRecord) -> String {
    let from_outcome = b.outcome.as_ref().and_then(|o| {
        o.get("phases")?
            .as_array()?
            .iter()
            .find(|p| {
                p.get("status")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.eq_ignore_ascii_case("succeeded"))
            })?
            .get("phase")?
            .as_str()
            .map(str::to_string)
    });
    from_outcome.unwrap_or_else(|| match b.state.as_str() {
        store::FAILED => "BUILD".into(),
        _ => "QUEUED".into(),
    })
}
