//! What follows a parent's success: the job that rebuilds each child. Decided here once; the
//! notifier Lambda queues it on SQS, `slipway serve` in the transaction that records the success.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::BuildOutcome;
use crate::job::{Job, Trigger};

/// The job id of `child` queued after parent build `build_id`: the same pair always gives the
/// same id, so a twice-delivered event queues each child once (the FIFO deduplication id is
/// the job id).
pub fn child_job_id(build_id: &str, child: &str) -> String {
    let mut h = Sha256::new();
    h.update(build_id.as_bytes());
    h.update([0]);
    h.update(child.as_bytes());
    format!("parent-{}", &hex::encode(h.finalize())[..40])
}

/// The job that rebuilds `child` after its parent's build: same repository, ref and commit;
/// its own delivery id; nothing of the parent's push (no `before`, no changed paths: the child
/// is named, not planned from a diff). The notifier Lambda and `slipway serve` both queue this.
pub fn child_job(o: &BuildOutcome, child: &str) -> Job {
    let delivery = hex::encode(Sha256::digest(o.build_id.as_bytes()));
    let default_branch = if o.info.default_branch.is_empty() {
        // Builds that predate the variable: the ref's branch is the best guess.
        o.info
            .git_ref
            .strip_prefix("refs/heads/")
            .unwrap_or("main")
            .to_string()
    } else {
        o.info.default_branch.clone()
    };
    Job {
        id: child_job_id(&o.build_id, child),
        trigger: Trigger::Parent {
            image: o.info.image.clone(),
            build_id: o.build_id.clone(),
        },
        delivery_id: delivery[..36].to_string(),
        repository: o.info.repository.clone(),
        clone_url: o
            .clone_url
            .clone()
            .unwrap_or_else(|| format!("https://github.com/{}.git", o.info.repository)),
        private: false,
        default_branch,
        git_ref: o.info.git_ref.clone(),
        before: o.info.commit.clone(),
        after: o.info.commit.clone(),
        commit: o.info.commit.clone(),
        created: false,
        forced: false,
        changed_paths: Vec::new(),
        changes_incomplete: None,
        images: vec![child.to_string()],
    }
}

/// What became of the children.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChildrenReport {
    /// Queued (or recognised as queued before), with their job ids.
    pub queued: Vec<(String, String)>,
    /// Could not be queued, with the reason.
    pub failed: Vec<(String, String)>,
    /// Not queued because the parent did not succeed.
    pub skipped: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::BuildStatus;
    use crate::notify::test_support::outcome;

    #[test]
    fn child_ids_are_stable_and_valid() {
        let a = child_job_id("arn:aws:codebuild:x:1:build/p:u", "acme/web-debug");
        assert_eq!(
            a,
            child_job_id("arn:aws:codebuild:x:1:build/p:u", "acme/web-debug")
        );
        assert_ne!(
            a,
            child_job_id("arn:aws:codebuild:x:1:build/p:v", "acme/web-debug")
        );
        crate::names::check_job_id(&a).unwrap();
        let o = outcome("acme/web", "main", BuildStatus::Succeeded);
        let j = child_job(&o, "acme/web-debug");
        crate::names::check_delivery_id(&j.delivery_id).unwrap();
        assert_eq!(j.images, vec!["acme/web-debug"]);
    }
}
