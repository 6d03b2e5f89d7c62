//! Where `slipway serve` reports finished builds. The sink seam: every sink gets the same event;
//! a sink's failure is logged and never fails a build.
//!
//! Today: standard output (one JSON line per event). Deploy agents are called by the worker
//! through the notifier's signed deploy hooks and their results reported here; webhook targets
//! as a sink are not wired yet.

use serde::Serialize;

/// A build that reached a final state.
#[derive(Debug, Clone, Serialize)]
pub struct BuildEvent {
    pub event: &'static str,
    pub build_id: i64,
    pub job_id: String,
    pub repository: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub commit: String,
    pub image: String,
    /// `succeeded`, `failed`, `skipped`, `cancelled`.
    pub status: String,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

pub trait Sink: Send + Sync {
    fn name(&self) -> &'static str;
    fn send(&self, event: &BuildEvent) -> Result<(), String>;
}

/// One JSON line per event on standard output (logs go to standard error).
pub struct Stdout;

impl Sink for Stdout {
    fn name(&self) -> &'static str {
        "stdout"
    }
    fn send(&self, event: &BuildEvent) -> Result<(), String> {
        use std::io::Write;
        let line = serde_json::to_string(event).map_err(|e| e.to_string())?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|_| out.flush())
            .map_err(|e| e.to_string())
    }
}

pub struct Notifier {
    pub sinks: Vec<Box<dyn Sink>>,
}

/// Deploy hooks called for a build.
#[derive(Debug, Clone, Serialize)]
pub struct DeployEvent<'a> {
    pub event: &'static str,
    pub build_id: i64,
    pub image: &'a str,
    pub commit: &'a str,
    pub deploys: &'a [slipway_core::notify::DeployResult],
}

impl Notifier {
    pub fn deployed(
        &self,
        b: &super::store::BuildRecord,
        results: &[slipway_core::notify::DeployResult],
    ) {
        let e = DeployEvent {
            event: "deployed",
            build_id: b.id,
            image: &b.image,
            commit: &b.commit,
            deploys: results,
        };
        // Standard output only: the stdout sink is the one that carries deploy results today.
        if let Ok(line) = serde_json::to_string(&e) {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}").and_then(|_| out.flush());
        }
    }

    pub fn notify(&self, event: &BuildEvent) {
        for s in &self.sinks {
            if let Err(e) = s.send(event) {
                tracing::warn!(sink = s.name(), build_id = event.build_id, error = %e, "notification not delivered");
            }
        }
    }
}
