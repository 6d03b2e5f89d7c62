//! Where `slipway serve` reports finished builds: the same orchestration and rendering as the
//! notifier Lambda (`slipway_core::notify::notify`), with serve's own [`Sinks`]:
//! - standard output: the rendered notification, one JSON line per build (its JSON form plus the
//!   subject and serve's build state), so a person and a machine can both read it;
//! - webhook targets (`[[webhook]]` in the configuration): the JSON form `POST`ed through
//!   `slipway-calls` (timeouts, retries with backoff, bounded concurrency, auth from files);
//! - deploy agents: signed requests through the notifier's `DeployCalls`.
//!
//! Children are queued by the store in the transaction that records the parent's success
//! (see `Store::finish_build`): the job core decides (`slipway_core::notify::child_job`), as the
//! notifier Lambda queues it; the child-queue sink only confirms that this very job is stored.

use std::sync::Arc;

use serde_json::Value;
use slipway_calls::{FileSecrets, SendOptions};
use slipway_core::Job;
use slipway_core::calls::{CallTarget, TargetError};
use slipway_core::listener::Enqueued;
use slipway_core::notify::{
    self, BuildOutcome, CommitStatus, DeployResult, Notification, NotifyConfig, Report, SinkError,
    Sinks,
};

use crate::config::{WEBHOOK_SIGNATURE_HEADER, Webhook};
use crate::outcome::outcome;
use crate::store::{BuildRecord, Store};

/// The sinks shared by every build's notification.
pub struct ServeSinks {
    pub store: Arc<Store>,
    pub client: reqwest::Client,
    /// Validated `[[webhook]]` targets; each gets the notification's JSON form as its body.
    pub webhooks: Vec<Webhook>,
    pub send: SendOptions,
    /// Deploy agents, by target name (`deploy_targets_file`).
    pub deploy: Option<slipway_calls::deploy::DeployCalls<FileSecrets>>,
}

/// The sinks for one build: the shared ones plus what only serve knows (its build state).
struct BuildSinks<'a> {
    shared: &'a ServeSinks,
    state: &'a str,
}

/// The line printed on standard output and the body sent to webhooks.
pub fn notification_line(n: &Notification, state: &str) -> Value {
    let mut v = n.json.clone();
    if let Value::Object(m) = &mut v {
        m.insert("subject".into(), n.subject.clone().into());
        // serve's own word for the result: `skipped` and `cancelled` are both STOPPED above.
        m.insert("state".into(), state.into());
    }
    v
}

impl Sinks for BuildSinks<'_> {
    async fn publish(&self, n: &Notification) -> Result<(), SinkError> {
        let line = notification_line(n, self.state);
        let text = line.to_string();
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}")
                .and_then(|_| out.flush())
                .map_err(|e| SinkError {
                    code: "stdout_failed".into(),
                    message: e.to_string(),
                })?;
        }
        if self.shared.webhooks.is_empty() {
            return Ok(());
        }
        let mut targets = Vec::new();
        for w in &self.shared.webhooks {
            targets.push(signed(w, &text).await);
        }
        let report = slipway_calls::send_all(
            &self.shared.client,
            targets,
            &FileSecrets,
            &self.shared.send,
        )
        .await;
        for r in &report.results {
            tracing::info!(webhook = %r.name, outcome = ?r.outcome, attempts = r.attempts, status = ?r.status, error_code = ?r.error_code, error = ?r.error, "webhook target");
        }
        if report.all_delivered() {
            Ok(())
        } else {
            let failed: Vec<&str> = report
                .results
                .iter()
                .filter(|r| r.outcome != slipway_calls::Outcome::Delivered)
                .map(|r| r.name.as_str())
                .collect();
            Err(SinkError {
                code: "webhook_failed".into(),
                message: format!("not delivered to {}", failed.join(", ")),
            })
        }
    }

    async fn commit_status(&self, _s: &CommitStatus) -> Result<(), SinkError> {
        // Not called: serve runs with `commit_status: false` (it holds no GitHub token).
        Ok(())
    }

    async fn deploy(&self, targets: &[String], _o: &BuildOutcome) -> Vec<DeployResult> {
        match &self.shared.deploy {
            Some(hooks) => hooks.call_all(targets).await,
            None => {
                tracing::warn!(targets = ?targets, "the image names deploy targets but no deploy_targets_file is configured");
                targets
                    .iter()
                    .map(|t| DeployResult {
                        target: t.clone(),
                        outcome: "not_configured".into(),
                        attempts: 0,
                        status: None,
                        error_code: Some("not_configured".into()),
                    })
                    .collect()
            }
        }
    }

    async fn enqueue(&self, job: &Job) -> Result<Enqueued, SinkError> {
        // The store queued this child when it committed the parent's success, from the same
        // decision: queuing again here could only double it. Confirm it is there instead.
        match self.shared.store.job(&job.id) {
            Ok(Some(stored)) if stored == *job => Ok(Enqueued::Duplicate),
            Ok(Some(_)) => Err(SinkError {
                code: "child_job_differs".into(),
                message: format!("job {} is stored with other contents", job.id),
            }),
            Ok(None) => Err(SinkError {
                code: "child_not_queued".into(),
                message: format!("job {} is not in the store", job.id),
            }),
            Err(e) => Err(SinkError {
                code: "store_unavailable".into(),
                message: e.to_string(),
            }),
        }
    }
}

/// A webhook's request for `body`, signed when it names a secret file (read at each send, so a
/// rotated secret is picked up; never logged). An unreadable secret reports the target invalid.
async fn signed(w: &Webhook, body: &str) -> Result<CallTarget, TargetError> {
    let mut t = w.target.clone();
    t.body = Some(body.to_string());
    if let Some(path) = &w.secret_file {
        let secret = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| e.kind().to_string())
            .and_then(|s| {
                let s = s.trim_end_matches(['\r', '\n']).to_string();
                if s.is_empty() {
                    Err("empty".into())
                } else {
                    Ok(s)
                }
            });
        let secret = secret.map_err(|reason| TargetError {
            target: t.name.clone(),
            field: "secret_file",
            reason: format!("{} cannot be read: {reason}", path.display()),
        })?;
        let sig = slipway_core::webhook::sign(secret.as_bytes(), body.as_bytes());
        let mut value = http::HeaderValue::from_str(&sig).map_err(|_| TargetError {
            target: t.name.clone(),
            field: "secret_file",
            reason: "the signature is not a header value".into(),
        })?;
        value.set_sensitive(true);
        t.headers.insert(
            http::HeaderName::from_static(WEBHOOK_SIGNATURE_HEADER),
            value,
        );
    }
    Ok(t)
}

impl ServeSinks {
    /// Notifies one finished build: children, deploy agents, stdout and webhooks. Never fails
    /// the build; every outcome is logged.
    pub async fn notify(&self, b: &BuildRecord, job: Option<&Job>) -> Report {
        // Children this build's own job builds are not queued separately; the others were
        // queued (success) or recorded as skipped (failure) by the store.
        let children = match self.store.children_outside_job(b) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(build_id = b.id, error = %e, "children not read from the store");
                Vec::new()
            }
        };
        let o = outcome(b, job, children);
        let cfg = NotifyConfig {
            in_progress: false,
            commit_status: false,
        };
        let sinks = BuildSinks {
            shared: self,
            state: &b.state,
        };
        notify::notify(&o, &cfg, &sinks).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Finished;
    use slipway_core::plan::{ChangeSource, Plan, PlannedImage};
    use slipway_core::schedule::{ScheduledRebuild, rebuild_job};

    #[tokio::test]
    async fn a_parent_success_queues_each_outside_child_once_and_reports_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&tmp.path().join("slipway.db")).unwrap());
        let msg = ScheduledRebuild::new("nightly", "acme/site", "file:///srv/site");
        let job = rebuild_job(&msg, "main", &"b".repeat(40)).unwrap();
        store.insert_job(&job).unwrap();
        let plan = Plan {
            repository: job.repository.clone(),
            git_ref: job.git_ref.clone(),
            commit: job.commit.clone(),
            changes: ChangeSource::Named,
            images: vec![PlannedImage {
                name: "acme/base".into(),
                commit: job.commit.clone(),
                tags: vec!["main".into()],
                children: vec!["acme/app".into(), "acme/api".into()],
                ..PlannedImage::default()
            }],
            errors: Vec::new(),
            skipped: Vec::new(),
        };
        store.record_plan(&job, &plan, false).unwrap();
        let (claimed, _) = store.claim_runnable(1).unwrap();
        let outcome = Value::Null;
        let done = Finished {
            succeeded: true,
            cancelled: false,
            digest: Some("sha256:0123"),
            error: None,
            outcome: &outcome,
        };
        store.finish_build(&claimed[0], &job, &done).unwrap();
        // Finishing again (a retried write) queues nothing more.
        store.finish_build(&claimed[0], &job, &done).unwrap();
        let b = store.build(claimed[0].id).unwrap().unwrap();

        let sinks = ServeSinks {
            store: store.clone(),
            client: slipway_calls::client().unwrap(),
            webhooks: Vec::new(),
            send: SendOptions::default(),
            deploy: None,
        };
        let report = sinks.notify(&b, Some(&job)).await;
        assert_eq!(report.status, "SUCCEEDED");
        assert_eq!(report.publish, "published");
        let id = b.id.to_string();
        assert_eq!(
            report.children.queued,
            [
                (
                    "acme/api".to_string(),
                    notify::child_job_id(&id, "acme/api")
                ),
                (
                    "acme/app".to_string(),
                    notify::child_job_id(&id, "acme/app")
                ),
            ]
        );
        assert!(report.children.failed.is_empty(), "{report:?}");
        // One job per child, each naming only its image, built at the parent's commit.
        let mut queued = Vec::new();
        while let Some(q) = store.next_job().unwrap() {
            if q.job.id == job.id {
                break;
            }
            queued.push(q.job.clone());
            store.fail_job(&q.job.id, "test: taken").unwrap();
        }
        let mut images: Vec<Vec<String>> = queued.iter().map(|j| j.images.clone()).collect();
        images.sort();
        assert_eq!(
            images,
            [vec!["acme/api".to_string()], vec!["acme/app".to_string()]]
        );
        assert!(queued.iter().all(|j| j.commit == job.commit
            && j.trigger
                == slipway_core::Trigger::Parent {
                    image: "acme/base".into(),
                    build_id: id.clone()
                }));

        // The notification's form: exact subject, status, image and tags.
        let n = notify::render(&outcome_of(&b, &job), &report);
        assert_eq!(n.subject, "✔ acme/base:main built");
        assert_eq!(n.json["digest"], "sha256:0123");
    }

    fn outcome_of(b: &BuildRecord, job: &Job) -> BuildOutcome {
        outcome(b, Some(job), b.planned.children.clone())
    }
}
