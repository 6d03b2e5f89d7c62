//! What the notifier's event tests share: the CodeBuild event fixtures and in-memory sinks.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::Value;
use slipway_core::Job;
use slipway_core::listener::Enqueued;
use slipway_core::notify::{
    BuildOutcome, CommitStatus, DeployResult, Notification, NotifyConfig, SinkError, Sinks,
};

pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/codebuild")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[derive(Default)]
pub struct Recorder {
    pub published: Mutex<Vec<Notification>>,
    pub statuses: Mutex<Vec<CommitStatus>>,
    pub deploys: Mutex<Vec<String>>,
    pub jobs: Mutex<Vec<Job>>,
}

impl Sinks for Recorder {
    async fn publish(&self, n: &Notification) -> Result<(), SinkError> {
        self.published.lock().unwrap().push(n.clone());
        Ok(())
    }
    async fn commit_status(&self, s: &CommitStatus) -> Result<(), SinkError> {
        self.statuses.lock().unwrap().push(s.clone());
        Ok(())
    }
    async fn deploy(&self, targets: &[String], _o: &BuildOutcome) -> Vec<DeployResult> {
        targets
            .iter()
            .map(|t| {
                self.deploys.lock().unwrap().push(t.clone());
                DeployResult {
                    target: t.clone(),
                    outcome: "delivered".into(),
                    attempts: 1,
                    status: Some(202),
                    error_code: None,
                }
            })
            .collect()
    }
    async fn enqueue(&self, job: &Job) -> Result<Enqueued, SinkError> {
        self.jobs.lock().unwrap().push(job.clone());
        Ok(Enqueued::Queued)
    }
}

pub fn cfg() -> NotifyConfig {
    NotifyConfig {
        in_progress: false,
        commit_status: true,
    }
}
