//! One deploy: pull (or build) first, recreate only if the image changed, wait for health, roll
//! back to the previous image on failure. Deploys of one service never overlap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use slipway_core::deploy::{Action, DeployState};

use super::engine::{Container, Engine, Service};

/// How many finished deploys `GET /deploys/{id}` remembers.
const KEEP_DEPLOYS: usize = 1000;
/// How long a health URL has to answer one probe.
const HEALTH_URL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize)]
pub struct DeployRecord {
    pub deploy_id: String,
    /// The service as the request named it (what secrets' allow-lists hold).
    pub service: String,
    /// `project/service` as resolved from the containers' labels.
    pub resolved: String,
    pub action: Action,
    pub state: DeployState,
    pub created_at: u64,
    pub finished_at: Option<u64>,
    pub previous_image: Option<String>,
    pub new_image: Option<String>,
    pub message: Option<String>,
    pub log: Vec<String>,
}

#[derive(Default)]
struct Slot {
    running: Option<String>,
    queued: Option<String>,
}

/// Every deploy the agent knows, and which one runs or waits per service; shared by the routes
/// and the running deploys.
#[derive(Default)]
pub struct Deploys {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    records: HashMap<String, DeployRecord>,
    order: Vec<String>,
    slots: HashMap<String, Slot>,
    locks: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
}

pub type SharedDeploys = Arc<Deploys>;

/// What `submit` did with a request.
pub enum Submitted {
    New(String),
    /// Joined a deploy of the same service and action that has not started yet.
    Coalesced(String),
    /// A deploy is running and coalescing is off.
    Busy,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Deploys {
    /// The state, whoever panicked while holding it before: each update is a few field writes
    /// that leave a record readable, so one bug must not fail every later deploy (a poisoned
    /// `std` mutex would).
    fn state(&self) -> MutexGuard<'_, State> {
        crate::lock(&self.state)
    }

    pub fn get(&self, id: &str) -> Option<DeployRecord> {
        self.state().records.get(id).cloned()
    }

    /// The states of these deploys (those still remembered), in order.
    pub fn states(&self, ids: &[String]) -> Vec<DeployState> {
        let state = self.state();
        ids.iter()
            .filter_map(|id| state.records.get(id).map(|r| r.state))
            .collect()
    }
}

impl State {
    fn log(&mut self, id: &str, started: Instant, line: String) {
        tracing::info!(deploy_id = %id, "{line}");
        if let Some(r) = self.records.get_mut(id) {
            r.log
                .push(format!("[+{:.1}s] {line}", started.elapsed().as_secs_f64()));
        }
    }

    fn forget_old(&mut self) {
        while self.order.len() > KEEP_DEPLOYS {
            let Some(pos) = self
                .order
                .iter()
                .position(|id| self.records.get(id).is_some_and(|r| r.state.is_terminal()))
            else {
                break;
            };
            let id = self.order.remove(pos);
            self.records.remove(&id);
        }
    }
}

pub struct Settings {
    pub coalesce: bool,
    pub health_timeout: Duration,
    pub min_running: Duration,
    pub health_url: Option<String>,
    pub remove_old_images: bool,
}

/// Registers a deploy of `service` and starts it in the background (after any running deploy
/// of the same service).
pub fn submit(
    deploys: &SharedDeploys,
    engine: &Arc<Engine>,
    requested: &str,
    service: Service,
    action: Action,
    settings: Settings,
    http: &reqwest::Client,
) -> Submitted {
    let key = service.qualified();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let lock = {
        let mut d = deploys.state();
        let d = &mut *d;
        let slot = d.slots.entry(key.clone()).or_default();
        if let Some(queued) = &slot.queued {
            if settings.coalesce && d.records.get(queued).is_some_and(|r| r.action == action) {
                return Submitted::Coalesced(queued.clone());
            }
            if !settings.coalesce {
                return Submitted::Busy;
            }
        }
        if slot.running.is_some() {
            if !settings.coalesce {
                return Submitted::Busy;
            }
            // A queued deploy of another action stays queued; this one runs after it.
            slot.queued = Some(id.clone());
        } else {
            slot.running = Some(id.clone());
        }
        d.records.insert(
            id.clone(),
            DeployRecord {
                deploy_id: id.clone(),
                service: requested.to_string(),
                resolved: key.clone(),
                action,
                state: DeployState::Queued,
                created_at: unix_now(),
                finished_at: None,
                previous_image: None,
                new_image: None,
                message: None,
                log: Vec::new(),
            },
        );
        d.order.push(id.clone());
        d.forget_old();
        d.locks.entry(key.clone()).or_default().clone()
    };
    tracing::info!(deploy_id = %id, service = %key, action = action.as_str(), "deploy accepted");
    let deploys = deploys.clone();
    let engine = engine.clone();
    let task_id = id.clone();
    let http = http.clone();
    tokio::spawn(async move {
        let _one_at_a_time = lock.lock().await;
        {
            let mut d = deploys.state();
            let slot = d.slots.entry(key.clone()).or_default();
            if slot.queued.as_deref() == Some(task_id.as_str()) {
                slot.queued = None;
            }
            slot.running = Some(task_id.clone());
            if let Some(r) = d.records.get_mut(&task_id) {
                r.state = DeployState::Running;
            }
        }
        let mut job = Job {
            id: task_id.clone(),
            deploys: deploys.clone(),
            engine,
            started: Instant::now(),
            settings,
            http,
        };
        let (state, message) = job
            .run(service.name.clone(), action, &service.project)
            .await;
        let mut d = deploys.state();
        if let Some(r) = d.records.get_mut(&task_id) {
            r.state = state;
            r.message = Some(message.clone());
            r.finished_at = Some(unix_now());
        }
        tracing::info!(deploy_id = %task_id, service = %key, state = ?state, "deploy finished: {message}");
        let slot = d.slots.entry(key).or_default();
        if slot.running.as_deref() == Some(task_id.as_str()) {
            slot.running = None;
        }
    });
    Submitted::New(id)
}

struct Job {
    id: String,
    deploys: SharedDeploys,
    engine: Arc<Engine>,
    started: Instant,
    settings: Settings,
    /// The agent's one HTTP client (health URLs), built at start-up.
    http: reqwest::Client,
}

enum Health {
    Healthy,
    Failed(String),
}

impl Job {
    fn log(&self, line: impl Into<String>) {
        self.deploys
            .state()
            .log(&self.id, self.started, line.into());
    }

    fn set_images(&self, previous: Option<&str>, new: Option<&str>) {
        let mut d = self.deploys.state();
        if let Some(r) = d.records.get_mut(&self.id) {
            if let Some(p) = previous {
                r.previous_image = Some(p.to_string());
            }
            if let Some(n) = new {
                r.new_image = Some(n.to_string());
            }
        }
    }

    async fn run(&mut self, name: String, action: Action, project: &str) -> (DeployState, String) {
        // Resolve again now: an earlier deploy of this service may have changed its containers.
        let service = match self.engine.resolve(&format!("{project}/{name}")).await {
            Ok(s) => s,
            Err(e) => return (DeployState::Failed, e.to_string()),
        };
        self.log(format!(
            "service {} ({} container(s)) runs {} = {}",
            service.qualified(),
            service.containers.len(),
            service.image_ref,
            short(&service.image_id)
        ));
        self.set_images(Some(&service.image_id), None);

        // 0. Keep the running image tagged before anything moves its name: with the containerd
        // image store, an image whose last tag a pull or build moves away is gone at once, and
        // a rollback needs it.
        let keep = rollback_tag(&service);
        if let Err(e) = self.ok(
            self.engine.docker(&["tag", &service.image_id, &keep]).await,
            "tag previous image",
        ) {
            return (DeployState::Failed, format!("{e}; service left untouched"));
        }

        // 1. Pull or build. The running containers are not touched until this succeeded.
        let step = match action {
            Action::Pull => {
                self.engine
                    .compose(&service, &["pull", "--", &service.name])
                    .await
            }
            Action::Build => {
                self.engine
                    .compose(&service, &["build", "--", &service.name])
                    .await
            }
        };
        match step {
            Ok(run) if run.ok => self.log(format!("{} done", action.as_str())),
            Ok(run) => {
                let msg = format!(
                    "{} failed, service left untouched: {}",
                    action.as_str(),
                    run.tail()
                );
                self.log(&msg);
                self.untag(&keep).await;
                return (DeployState::Failed, msg);
            }
            Err(e) => {
                self.log(&e);
                self.untag(&keep).await;
                return (DeployState::Failed, e);
            }
        }

        // 2. Recreate only if the image changed.
        let new_id = match self.engine.image_id(&service.image_ref).await {
            Ok(id) => id,
            Err(e) => {
                self.untag(&keep).await;
                return (DeployState::Failed, e);
            }
        };
        self.set_images(None, Some(&new_id));
        if new_id == service.image_id {
            let msg = format!("image unchanged ({}); nothing recreated", short(&new_id));
            self.log(&msg);
            self.untag(&keep).await;
            return (DeployState::Unchanged, msg);
        }
        self.log(format!("new image {}", short(&new_id)));

        if let Err(e) = self.recreate(&service).await {
            return self.roll_back(&service, &keep, e).await;
        }
        match self.wait_healthy(&service, &new_id).await {
            Health::Healthy => {}
            Health::Failed(why) => return self.roll_back(&service, &keep, why).await,
        }
        if self.settings.remove_old_images {
            let _ = self.engine.docker(&["rmi", &keep]).await;
            // By id as well: a pulled image keeps its `repo@digest` reference after its last
            // tag is gone. This fails (and keeps the image) when another tag still names it.
            let _ = self.engine.docker(&["rmi", &service.image_id]).await;
            match self.engine.image_id(&service.image_id).await {
                Err(_) => self.log(format!(
                    "removed previous image {}",
                    short(&service.image_id)
                )),
                Ok(_) => self.log(format!(
                    "previous image {} kept: still tagged or in use",
                    short(&service.image_id)
                )),
            }
        } else {
            self.log(format!("previous image kept as {keep}"));
        }
        let msg = format!(
            "{} recreated with {} and healthy",
            service.qualified(),
            short(&new_id)
        );
        self.log(&msg);
        (DeployState::Succeeded, msg)
    }

    /// Drops the rollback tag when nothing was recreated: only the tag goes, the image keeps
    /// its other names.
    async fn untag(&self, keep: &str) {
        let _ = self.engine.docker(&["rmi", keep]).await;
    }

    fn ok(&self, run: Result<super::engine::Run, String>, what: &str) -> Result<(), String> {
        match run {
            Ok(r) if r.ok => Ok(()),
            Ok(r) => {
                let msg = format!("{what} failed: {}", r.tail());
                self.log(&msg);
                Err(msg)
            }
            Err(e) => {
                self.log(&e);
                Err(e)
            }
        }
    }

    async fn recreate(&self, service: &Service) -> Result<(), String> {
        self.log("recreating");
        // Remove, then create: `up --force-recreate` makes docker-compose 1.x read the old
        // container's image config for its volumes, and an image of the containerd image store
        // (or built by BuildKit) has no `ContainerConfig`, so 1.x fails with a KeyError. Named
        // volumes and bind mounts carry over; anonymous volumes start empty (docs/agent.md).
        let removed = self
            .engine
            .compose(service, &["rm", "--stop", "--force", "--", &service.name])
            .await;
        self.ok(removed, "remove old containers")?;
        let run = self
            .engine
            .compose(
                service,
                &["up", "-d", "--no-deps", "--no-build", "--", &service.name],
            )
            .await;
        self.ok(run, "recreate")
    }

    async fn roll_back(&self, service: &Service, keep: &str, why: String) -> (DeployState, String) {
        self.log(format!(
            "new image failed ({why}); rolling back to {}",
            short(&service.image_id)
        ));
        let restored = async {
            self.ok(
                self.engine.docker(&["tag", keep, &service.image_ref]).await,
                "restore previous tag",
            )?;
            self.recreate(service).await?;
            match self.wait_healthy(service, &service.image_id).await {
                Health::Healthy => Ok(()),
                Health::Failed(e) => Err(e),
            }
        }
        .await;
        match restored {
            Ok(()) => {
                // The reference points at the previous image again: this only drops the extra tag.
                let _ = self.engine.docker(&["rmi", keep]).await;
                let msg = format!("rolled back to {}: {why}", short(&service.image_id));
                self.log(&msg);
                (DeployState::RolledBack, msg)
            }
            Err(e) => {
                let msg = format!("rollback failed ({e}) after: {why}");
                self.log(&msg);
                (DeployState::RollbackFailed, msg)
            }
        }
    }

    /// Waits until every container of the service runs `image_id` and is healthy: its health
    /// check says so, or (without one) it kept running for `min_running`; and the configured
    /// health URL answers 2xx.
    async fn wait_healthy(&self, service: &Service, image_id: &str) -> Health {
        let deadline = Instant::now() + self.settings.health_timeout;
        let mut last = String::from("no container yet");
        loop {
            match self
                .engine
                .containers(Some(&service.project), &service.name)
                .await
            {
                Ok(containers) => match self.judge(&containers, image_id) {
                    Verdict::Healthy => {
                        let url_ok = match &self.settings.health_url {
                            None => true,
                            Some(url) => {
                                match self.http.get(url).timeout(HEALTH_URL_TIMEOUT).send().await {
                                    Ok(r) if r.status().is_success() => true,
                                    Ok(r) => {
                                        last = format!("{url} answered {}", r.status());
                                        false
                                    }
                                    Err(e) => {
                                        last = format!("{url}: {e}");
                                        false
                                    }
                                }
                            }
                        };
                        if url_ok {
                            self.log("healthy");
                            return Health::Healthy;
                        }
                    }
                    Verdict::Unhealthy(why) => return Health::Failed(why),
                    Verdict::Waiting(why) => last = why,
                },
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                return Health::Failed(format!(
                    "not healthy after {}s: {last}",
                    self.settings.health_timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn judge(&self, containers: &[Container], image_id: &str) -> Verdict {
        let current: Vec<&Container> = containers.iter().filter(|c| c.image == image_id).collect();
        if current.is_empty() {
            return Verdict::Waiting("no container runs the image yet".into());
        }
        for c in &current {
            if matches!(c.state.status.as_str(), "exited" | "dead") {
                return Verdict::Unhealthy(format!(
                    "container {} {}",
                    short(&c.id),
                    c.state.status
                ));
            }
            match c.state.health.as_ref().map(|h| h.status.as_str()) {
                Some("unhealthy") => {
                    return Verdict::Unhealthy(format!("container {} is unhealthy", short(&c.id)));
                }
                Some("healthy") => {}
                Some(other) => return Verdict::Waiting(format!("health {other}")),
                None => {
                    if !c.state.running {
                        return Verdict::Waiting(format!(
                            "container {} {}",
                            short(&c.id),
                            c.state.status
                        ));
                    }
                    let up_for = started_secs_ago(&c.state.started_at);
                    if up_for < self.settings.min_running.as_secs_f64() {
                        return Verdict::Waiting(
                            "running, no health check: waiting a moment".into(),
                        );
                    }
                }
            }
        }
        Verdict::Healthy
    }
}

enum Verdict {
    Healthy,
    Unhealthy(String),
    Waiting(String),
}

/// Seconds since an RFC 3339 `StartedAt`; 0 when it cannot be read (so the caller waits).
fn started_secs_ago(started_at: &str) -> f64 {
    let Ok(t) =
        time::OffsetDateTime::parse(started_at, &time::format_description::well_known::Rfc3339)
    else {
        return 0.0;
    };
    (time::OffsetDateTime::now_utc() - t).as_seconds_f64()
}

fn short(image_id: &str) -> &str {
    let id = image_id.strip_prefix("sha256:").unwrap_or(image_id);
    &id[..id.len().min(12)]
}

/// A local tag that pins the previous image of a service during a deploy.
fn rollback_tag(service: &Service) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect::<String>()
            .trim_matches('-')
            .to_string()
    };
    format!(
        "slipway-rollback/{}-{}:previous",
        clean(&service.project),
        clean(&service.name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_the_deploys_are_held_fails_no_later_request() {
        let deploys: SharedDeploys = Arc::default();
        deploys.state().records.insert(
            "d1".into(),
            DeployRecord {
                deploy_id: "d1".into(),
                service: "web".into(),
                resolved: "site/web".into(),
                action: Action::Pull,
                state: DeployState::Running,
                created_at: 1,
                finished_at: None,
                previous_image: None,
                new_image: None,
                message: None,
                log: Vec::new(),
            },
        );
        let held = deploys.clone();
        let panicked = std::thread::spawn(move || {
            let _state = held.state();
            panic!("a bug while the deploys are held");
        })
        .join();
        assert!(panicked.is_err());
        assert!(deploys.state.is_poisoned());
        // Reads and updates go on.
        assert_eq!(
            deploys.get("d1").map(|r| r.state),
            Some(DeployState::Running)
        );
        deploys
            .state()
            .log("d1", Instant::now(), "still logged".into());
        assert_eq!(deploys.states(&["d1".into()]), [DeployState::Running]);
        assert_eq!(deploys.get("d1").unwrap().log.len(), 1);
    }
}
