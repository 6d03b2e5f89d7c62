//! `GET /metrics`: the counters of `slipway_core::metrics` in Prometheus' text format (the
//! OpenMetrics text encoding of `prometheus-client`, which Prometheus scrapes natively).
//!
//! Counters and histograms count from the start of the process (Prometheus handles resets);
//! the gauges of jobs and builds by state are read from the store at each scrape, so they are
//! right after a restart too.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use slipway_core::Trigger;
use slipway_core::notify::BuildStatus;

use super::store;

type Labels = Vec<(String, String)>;

/// Seconds: a `FROM scratch` image takes about one, a real one minutes, a slow one an hour.
const DURATION_BUCKETS: [f64; 12] = [
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];
/// Seconds from queued to started: nothing to an hour behind a long build.
const WAIT_BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

const BUILD_STATES: [&str; 6] = [
    store::QUEUED,
    store::RUNNING,
    store::SUCCEEDED,
    store::FAILED,
    store::SKIPPED,
    store::CANCELLED,
];
const JOB_STATES: [&str; 4] = [
    store::JOB_QUEUED,
    store::JOB_PLANNED,
    store::JOB_DONE,
    store::JOB_FAILED,
];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

pub struct Metrics {
    registry: Registry,
    webhooks: Family<Labels, Counter>,
    jobs_planned: Family<Labels, Counter>,
    builds_started: Counter,
    builds_finished: Family<Labels, Counter>,
    build_duration: Family<Labels, Histogram, fn() -> Histogram>,
    queue_wait: Histogram,
    notifications: Family<Labels, Counter>,
    builds: Family<Labels, Gauge>,
    jobs: Family<Labels, Gauge>,
    /// One scrape at a time sets the gauges and encodes.
    scrape: Mutex<()>,
}

fn label(k: &str, v: &str) -> Labels {
    vec![(k.to_string(), v.to_string())]
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("slipway");
        let webhooks = Family::<Labels, Counter>::default();
        registry.register(
            "webhooks",
            "Webhooks answered on POST /hooks/github, by answer (the listener's status or error code)",
            webhooks.clone(),
        );
        let jobs_planned = Family::<Labels, Counter>::default();
        registry.register(
            "jobs_planned",
            "Jobs taken from the queue and planned, by trigger (push, schedule, parent)",
            jobs_planned.clone(),
        );
        let builds_started = Counter::default();
        registry.register(
            "builds_started",
            "Builds taken from the queue and started",
            builds_started.clone(),
        );
        let builds_finished = Family::<Labels, Counter>::default();
        registry.register(
            "builds_finished",
            "Builds that ran and finished, by result (succeeded, failed, stopped)",
            builds_finished.clone(),
        );
        let build_duration: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "build_duration_seconds",
            "How long builds ran, by result",
            build_duration.clone(),
        );
        let queue_wait = Histogram::new(WAIT_BUCKETS);
        registry.register(
            "build_queue_wait_seconds",
            "How long builds waited between queued and started",
            queue_wait.clone(),
        );
        let notifications = Family::<Labels, Counter>::default();
        registry.register(
            "notifications",
            "Notifications of finished builds (standard output and the [[webhook]] targets), by outcome (published, failed)",
            notifications.clone(),
        );
        let builds = Family::<Labels, Gauge>::default();
        registry.register("builds", "Builds in the store, by state", builds.clone());
        let jobs = Family::<Labels, Gauge>::default();
        registry.register("jobs", "Jobs in the store, by state", jobs.clone());
        Metrics {
            registry,
            webhooks,
            jobs_planned,
            builds_started,
            builds_finished,
            build_duration,
            queue_wait,
            notifications,
            builds,
            jobs,
            scrape: Mutex::new(()),
        }
    }

    pub fn webhook(&self, answer: &str) {
        self.webhooks.get_or_create(&label("answer", answer)).inc();
    }

    pub fn job_planned(&self, trigger: &Trigger) {
        self.jobs_planned
            .get_or_create(&label(
                "trigger",
                slipway_core::metrics::trigger_label(trigger),
            ))
            .inc();
    }

    /// A build that was claimed started after waiting `wait_ms` in the queue.
    pub fn build_started(&self, wait_ms: i64) {
        self.builds_started.inc();
        self.queue_wait.observe(wait_ms.max(0) as f64 / 1000.0);
    }

    /// A build that ran finished after `ran_ms`.
    pub fn build_finished(&self, status: BuildStatus, ran_ms: i64) {
        let l = label("result", slipway_core::metrics::result_label(status));
        self.builds_finished.get_or_create(&l).inc();
        self.build_duration
            .get_or_create(&l)
            .observe(ran_ms.max(0) as f64 / 1000.0);
    }

    /// A build's notification, from its report's `publish` (core's rule: nothing for a state
    /// that is not reported).
    pub fn notification(&self, publish: &str) {
        if let Some(outcome) = slipway_core::metrics::notification_outcome(publish) {
            self.notifications
                .get_or_create(&label("outcome", outcome))
                .inc();
        }
    }

    /// The text Prometheus scrapes, with the store's counts of jobs and builds by state.
    pub fn render(&self, counts: &serde_json::Value) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        let count = |kind: &str, state: &str| counts[kind][state].as_i64().unwrap_or(0);
        for s in BUILD_STATES {
            self.builds
                .get_or_create(&label("state", s))
                .set(count("builds", s));
        }
        for s in JOB_STATES {
            self.jobs
                .get_or_create(&label("state", s))
                .set(count("jobs", s));
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
