//! A CodeBuild endpoint speaking CodeBuild's JSON protocol (`X-Amz-Target:
//! CodeBuild_20161006.<Operation>`, `application/x-amz-json-1.1`) for the operations slipway
//! calls: `StartBuild` (spawner), `ListBuildsForProject`, `BatchGetBuilds` and
//! `BatchDeleteBuilds` (the tasks Lambda's cleanup). Each StartBuild is executed for real: the
//! source location maps to a local git repository, `PARAMETER_STORE` variables are resolved from
//! moto's SSM (as CodeBuild resolves them with the build role), and the buildspec override runs
//! with `slipway_runner::run_vars_build` on the real engine and registry. The build's state
//! changes go to EventBridge (moto) as CodeBuild's documented "CodeBuild Build State Change"
//! events, and, when the request asks for it (`reportBuildStatusOverride`), commit statuses go
//! to the local GitHub as CodeBuild's own status reporting sets them.
//!
//! Idempotency tokens behave as CodeBuild documents them: the same token within five minutes
//! answers the build already started. Faults: [`CodeBuild::throttle_next`] answers the next
//! StartBuild calls with `ThrottlingException`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use slipway_core::build_env::{BuildVar, VarKind};
use slipway_git::Source;
use slipway_runner::{Buildspec, CancellationToken, SecretSource, VarsBuild, run_vars_build};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
/// How long CodeBuild honours an idempotency token.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(300);

/// One build as the endpoint knows it.
#[derive(Debug, Clone)]
pub struct BuildRecord {
    pub id: String,
    pub arn: String,
    pub number: u64,
    /// The StartBuild request as received (its JSON).
    pub request: Value,
    /// `IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `STOPPED`.
    pub status: String,
    pub start: time::OffsetDateTime,
    pub end: Option<time::OffsetDateTime>,
    /// Phases as CodeBuild's API names them (`phaseType`, `phaseStatus`, ...).
    pub phases: Vec<Value>,
    pub exported: BTreeMap<String, String>,
    /// The build log (secrets masked by the runner).
    pub log: Vec<String>,
}

impl BuildRecord {
    /// The plain environment variables the build ran with (the overrides as executed).
    pub fn env(&self) -> BTreeMap<String, String> {
        self.request["environmentVariablesOverride"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["type"] != "PARAMETER_STORE")
            .map(|v| {
                (
                    v["name"].as_str().unwrap_or_default().to_string(),
                    v["value"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    fn log_stream(&self) -> &str {
        self.id.split_once(':').map(|(_, u)| u).unwrap_or(&self.id)
    }

    fn deep_link(&self, project: &str) -> String {
        format!(
            "https://console.aws.amazon.com/cloudwatch/home?region={REGION}#logEvent:group=/aws/codebuild/{project};stream={}",
            self.log_stream()
        )
    }
}

/// What the endpoint needs to run builds.
pub struct Settings {
    pub project: String,
    /// `https://github.com/owner/name.git` → the local repository CodeBuild "clones".
    pub sources: HashMap<String, PathBuf>,
    pub ssm: aws_sdk_ssm::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub bus: String,
    /// The local GitHub and the source credential CodeBuild reports statuses with.
    pub github: Option<(String, String)>,
    pub work_root: PathBuf,
}

struct Cb {
    settings: Settings,
    builds: Mutex<Vec<BuildRecord>>,
    tokens: Mutex<HashMap<String, (String, Instant, Value)>>,
    throttle: AtomicU32,
    start_calls: AtomicU32,
    numbers: AtomicU64,
    http: reqwest::Client,
}

/// The running endpoint.
#[derive(Clone)]
pub struct CodeBuild {
    pub url: String,
    cb: Arc<Cb>,
}

impl CodeBuild {
    pub async fn start(settings: Settings) -> CodeBuild {
        let cb = Arc::new(Cb {
            settings,
            builds: Mutex::default(),
            tokens: Mutex::default(),
            throttle: AtomicU32::new(0),
            start_calls: AtomicU32::new(0),
            numbers: AtomicU64::new(0),
            http: reqwest::Client::new(),
        });
        let app = Router::new().fallback(serve).with_state(cb.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CodeBuild { url, cb }
    }

    /// Answers the next `n` StartBuild calls with `ThrottlingException`.
    pub fn throttle_next(&self, n: u32) {
        self.cb.throttle.store(n, Ordering::SeqCst);
    }

    /// StartBuild calls received (throttled ones included).
    pub fn start_calls(&self) -> u32 {
        self.cb.start_calls.load(Ordering::SeqCst)
    }

    pub fn builds(&self) -> Vec<BuildRecord> {
        self.cb.builds.lock().unwrap().clone()
    }

    /// Waits until `n` builds exist and every build has finished.
    pub async fn wait_finished(&self, n: usize, timeout: Duration) -> Vec<BuildRecord> {
        let until = Instant::now() + timeout;
        loop {
            let b = self.builds();
            if b.len() >= n && b.iter().all(|b| b.end.is_some()) {
                return b;
            }
            assert!(
                Instant::now() < until,
                "CodeBuild: {} of {n} builds, not all finished after {timeout:?}: {:#?}",
                b.len(),
                b.iter()
                    .map(|b| (&b.id, &b.status, b.log.join("\n")))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn error(code: &str, message: &str) -> (u16, Value) {
    (400, json!({"__type": code, "message": message}))
}

async fn serve(State(cb): State<Arc<Cb>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (status, value) = match serde_json::from_slice::<Value>(&body) {
        Err(_) => error("SerializationException", "the body is not JSON"),
        Ok(req) => match target.strip_prefix("CodeBuild_20161006.") {
            Some("StartBuild") => start_build(&cb, req).await,
            Some("BatchGetBuilds") => batch_get(&cb, &req),
            Some("ListBuildsForProject") => list_for_project(&cb, &req),
            Some("BatchDeleteBuilds") => batch_delete(&cb, &req),
            _ => error(
                "UnknownOperationException",
                &format!("the bench's CodeBuild does not serve `{target}`"),
            ),
        },
    };
    let mut resp = (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/x-amz-json-1.1")],
        value.to_string(),
    )
        .into_response();
    if let Some(t) = value["__type"].as_str() {
        resp.headers_mut()
            .insert("x-amzn-errortype", t.parse().unwrap());
    }
    resp
}

fn epoch(t: time::OffsetDateTime) -> f64 {
    t.unix_timestamp_nanos() as f64 / 1e9
}

/// `Sep 1, 2017 4:12:29 PM`, as CodeBuild writes times in its events.
fn event_time(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[month repr:short] [day padding:none], [year] [hour repr:12 padding:none]:[minute]:[second] [period]"
    );
    t.format(fmt).unwrap()
}

fn api_build(r: &BuildRecord, project: &str) -> Value {
    json!({
        "id": r.id, "arn": r.arn, "buildNumber": r.number,
        "startTime": epoch(r.start), "endTime": r.end.map(epoch),
        "currentPhase": if r.end.is_some() { "COMPLETED" } else { "BUILD" },
        "buildStatus": r.status, "buildComplete": r.end.is_some(),
        "projectName": project, "initiator": "slipway-spawner",
        "sourceVersion": r.request["sourceVersion"],
        "resolvedSourceVersion": r.request["sourceVersion"],
        "source": {"type": r.request["sourceTypeOverride"], "location": r.request["sourceLocationOverride"],
                   "buildspec": r.request["buildspecOverride"]},
        "environment": {"type": "LINUX_CONTAINER", "image": "aws/codebuild/amazonlinux-x86_64-standard:5.0",
                        "computeType": "BUILD_GENERAL1_SMALL", "privilegedMode": true,
                        "environmentVariables": r.request["environmentVariablesOverride"]},
        "phases": r.phases,
        "exportedEnvironmentVariables": r.exported.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "logs": {"groupName": format!("/aws/codebuild/{project}"), "streamName": r.log_stream(), "deepLink": r.deep_link(project)},
    })
}

async fn start_build(cb: &Arc<Cb>, req: Value) -> (u16, Value) {
    cb.start_calls.fetch_add(1, Ordering::SeqCst);
    let project = &cb.settings.project;
    if req["projectName"] != project.as_str() {
        return error(
            "ResourceNotFoundException",
            &format!("Project cannot be found: {}", req["projectName"]),
        );
    }
    if cb
        .throttle
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return error("ThrottlingException", "Rate exceeded");
    }
    let location = req["sourceLocationOverride"].as_str().unwrap_or_default();
    if !cb.settings.sources.contains_key(location) {
        return error(
            "InvalidInputException",
            &format!("the bench has no repository for source location {location}"),
        );
    }
    if let Some(token) = req["idempotencyToken"].as_str() {
        let mut tokens = cb.tokens.lock().unwrap();
        if let Some((id, at, earlier)) = tokens.get(token)
            && at.elapsed() < IDEMPOTENCY_WINDOW
        {
            if *earlier != req {
                return error(
                    "InvalidInputException",
                    "the idempotency token was used with different parameters",
                );
            }
            let builds = cb.builds.lock().unwrap();
            let b = builds.iter().find(|b| &b.id == id).expect("recorded");
            return (200, json!({"build": api_build(b, project)}));
        }
        tokens.insert(
            token.to_string(),
            (String::new(), Instant::now(), req.clone()),
        );
    }
    let uuid = uuid::Uuid::new_v4();
    let id = format!("{project}:{uuid}");
    let record = BuildRecord {
        arn: format!("arn:aws:codebuild:{REGION}:{ACCOUNT}:build/{id}"),
        id: id.clone(),
        number: cb.numbers.fetch_add(1, Ordering::SeqCst) + 1,
        request: req.clone(),
        status: "IN_PROGRESS".into(),
        start: time::OffsetDateTime::now_utc(),
        end: None,
        phases: Vec::new(),
        exported: BTreeMap::new(),
        log: Vec::new(),
    };
    if let Some(token) = req["idempotencyToken"].as_str() {
        cb.tokens.lock().unwrap().get_mut(token).unwrap().0 = id.clone();
    }
    let answer = json!({"build": api_build(&record, project)});
    cb.builds.lock().unwrap().push(record);
    let cb = cb.clone();
    tokio::spawn(async move { run(cb, id).await });
    (200, answer)
}

fn update(cb: &Cb, id: &str, f: impl FnOnce(&mut BuildRecord)) -> BuildRecord {
    let mut builds = cb.builds.lock().unwrap();
    let b = builds.iter_mut().find(|b| b.id == id).expect("recorded");
    f(b);
    b.clone()
}

/// Runs one build: parameters, the runner, events and statuses.
async fn run(cb: Arc<Cb>, id: String) {
    let record = update(&cb, &id, |_| {});
    let req = record.request.clone();
    report(&cb, &record).await;

    let mut vars = Vec::new();
    let mut parameters = Vec::new();
    for v in req["environmentVariablesOverride"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let (name, value) = (
            v["name"].as_str().unwrap_or_default().to_string(),
            v["value"].as_str().unwrap_or_default().to_string(),
        );
        let kind = match v["type"].as_str() {
            Some("PARAMETER_STORE") => {
                parameters.push(value.clone());
                VarKind::ParameterStore
            }
            _ => VarKind::Plain,
        };
        vars.push(BuildVar { name, value, kind });
    }
    let resolved = resolve_parameters(&cb.settings.ssm, &parameters).await;
    let buildspec = Buildspec::parse(req["buildspecOverride"].as_str().unwrap_or_default())
        .map_err(|e| format!("YAML_FILE_ERROR: {e}"));
    let (phases, exported, status, log) = match (resolved, buildspec) {
        (Ok(values), Ok(buildspec)) => {
            let location = req["sourceLocationOverride"].as_str().unwrap_or_default();
            let build = VarsBuild {
                source: Source::Local(cb.settings.sources[location].clone()),
                source_version: req["sourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                source_url: location.to_string(),
                vars,
                buildspec,
                secrets: SecretSource::from_values(values),
                work_root: cb.settings.work_root.clone(),
                keep_work_dir: false,
                build_number: record.number,
                build_id: Some(id.clone()),
                // The bench's engine has no bridge network (tests/services.sh exports `host`).
                build_network: std::env::var("SLIPWAY_BUILD_NETWORK").unwrap_or_default(),
            };
            let lines = Mutex::new(Vec::new());
            let outcome = run_vars_build(
                &build,
                &|l: &str| lines.lock().unwrap().push(l.to_string()),
                &CancellationToken::new(),
            )
            .await;
            let phases: Vec<Value> = outcome
                .phases
                .iter()
                .map(|p| {
                    json!({"phaseType": p.phase, "phaseStatus": p.status.as_str(),
                           "durationInSeconds": p.duration_ms / 1000,
                           "contexts": p.message.iter().map(|m| json!({"statusCode": "COMMAND_EXECUTION_ERROR", "message": m})).collect::<Vec<_>>()})
                })
                .collect();
            (
                phases,
                outcome.exported,
                outcome.status.as_str().to_string(),
                lines.into_inner().unwrap(),
            )
        }
        (Err(e), _) | (_, Err(e)) => (
            vec![
                json!({"phaseType": "PROVISIONING", "phaseStatus": "FAILED", "durationInSeconds": 0,
                        "contexts": [{"statusCode": "CLIENT_ERROR", "message": e}]}),
            ],
            BTreeMap::new(),
            "FAILED".to_string(),
            vec![e],
        ),
    };
    let record = update(&cb, &id, |b| {
        b.phases = phases;
        b.exported = exported;
        b.status = status;
        b.log = log;
        b.end = Some(time::OffsetDateTime::now_utc());
    });
    report(&cb, &record).await;
}

/// `PARAMETER_STORE` values by parameter name, read as the build role would. A parameter that
/// does not exist fails the build before it runs, as on CodeBuild.
async fn resolve_parameters(
    ssm: &aws_sdk_ssm::Client,
    names: &[String],
) -> Result<BTreeMap<String, String>, String> {
    let mut values = BTreeMap::new();
    for chunk in names.chunks(10) {
        if chunk.is_empty() {
            continue;
        }
        let out = ssm
            .get_parameters()
            .set_names(Some(chunk.to_vec()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| format!("Parameter Store: {e:?}"))?;
        if let Some(missing) = out.invalid_parameters().first() {
            return Err(format!(
                "Decrypted Variables Error: parameter does not exist: {missing}"
            ));
        }
        for p in out.parameters() {
            values.insert(
                p.name().unwrap_or_default().to_string(),
                p.value().unwrap_or_default().to_string(),
            );
        }
    }
    Ok(values)
}

/// The build's state change: an EventBridge event, and a commit status when asked for.
async fn report(cb: &Cb, r: &BuildRecord) {
    let project = &cb.settings.project;
    let event_phases: Vec<Value> = r
        .phases
        .iter()
        .map(|p| {
            json!({"phase-type": p["phaseType"], "phase-status": p["phaseStatus"],
                   "duration-in-seconds": p["durationInSeconds"],
                   "phase-context": p["contexts"].as_array().into_iter().flatten()
                        .map(|c| format!("{}: {}", c["statusCode"].as_str().unwrap_or(""), c["message"].as_str().unwrap_or("")))
                        .collect::<Vec<_>>()})
        })
        .collect();
    let env: Vec<Value> = r.request["environmentVariablesOverride"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let detail = json!({
        "build-status": r.status,
        "project-name": project,
        "build-id": r.arn,
        "additional-information": {
            "environment": {
                "image": "aws/codebuild/amazonlinux-x86_64-standard:5.0",
                "privileged-mode": true, "compute-type": "BUILD_GENERAL1_SMALL", "type": "LINUX_CONTAINER",
                "environment-variables": env,
            },
            "timeout-in-minutes": 60,
            "build-complete": r.end.is_some(),
            "build-number": r.number.to_string(),
            "initiator": "slipway-spawner",
            "build-start-time": event_time(r.start),
            "source": {"type": "GITHUB", "location": r.request["sourceLocationOverride"], "buildspec": r.request["buildspecOverride"]},
            "source-version": r.request["sourceVersion"],
            "logs": {"group-name": format!("/aws/codebuild/{project}"), "stream-name": r.log_stream(), "deep-link": r.deep_link(project)},
            "phases": event_phases,
            "exported-environment-variables": r.exported.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        },
        "current-phase": if r.end.is_some() { "COMPLETED" } else { "SUBMITTED" },
        "current-phase-context": "[]",
        "version": "1",
    });
    let put = cb
        .settings
        .events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(&cb.settings.bus)
                .source("aws.codebuild")
                .detail_type("CodeBuild Build State Change")
                .resources(&r.arn)
                .detail(detail.to_string())
                .build(),
        )
        .send()
        .await
        .expect("moto EventBridge takes the state change");
    assert_eq!(put.failed_entry_count(), 0, "EventBridge refused an event");

    if r.request["reportBuildStatusOverride"] == true
        && let Some((api, token)) = &cb.settings.github
    {
        let location = r.request["sourceLocationOverride"]
            .as_str()
            .unwrap_or_default();
        let repository = location
            .trim_start_matches("https://github.com/")
            .trim_end_matches(".git");
        let (state, description) = match r.status.as_str() {
            "IN_PROGRESS" => ("pending", "Build started"),
            "SUCCEEDED" => ("success", "Build succeeded"),
            "FAILED" => ("failure", "Build failed"),
            _ => ("error", "Build stopped"),
        };
        let context = r.request["buildStatusConfigOverride"]["context"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("AWS CodeBuild {REGION} ({project})"));
        let sha = r.request["sourceVersion"].as_str().unwrap_or_default();
        let resp = cb
            .http
            .post(format!("{api}/repos/{repository}/statuses/{sha}"))
            .bearer_auth(token)
            .json(
                &json!({"state": state, "context": context, "description": description,
                          "target_url": r.deep_link(project)}),
            )
            .send()
            .await
            .expect("the local GitHub answers");
        assert!(
            resp.status().is_success(),
            "CodeBuild's status report was refused: {}",
            resp.status()
        );
    }
}

fn batch_get(cb: &Cb, req: &Value) -> (u16, Value) {
    let builds = cb.builds.lock().unwrap();
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for id in req["ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        match builds.iter().find(|b| b.id == id || b.arn == id) {
            Some(b) => found.push(api_build(b, &cb.settings.project)),
            None => missing.push(id.to_string()),
        }
    }
    (200, json!({"builds": found, "buildsNotFound": missing}))
}

fn list_for_project(cb: &Cb, req: &Value) -> (u16, Value) {
    if req["projectName"] != cb.settings.project.as_str() {
        return error(
            "ResourceNotFoundException",
            "The provided project does not exist",
        );
    }
    let mut builds = cb.builds.lock().unwrap().clone();
    builds.sort_by_key(|b| b.start);
    if req["sortOrder"] != "ASCENDING" {
        builds.reverse();
    }
    (
        200,
        json!({"ids": builds.iter().map(|b| &b.id).collect::<Vec<_>>()}),
    )
}

fn batch_delete(cb: &Cb, req: &Value) -> (u16, Value) {
    let mut builds = cb.builds.lock().unwrap();
    let (mut deleted, mut refused) = (Vec::new(), Vec::new());
    for id in req["ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        match builds.iter().position(|b| b.id == id || b.arn == id) {
            Some(i) if builds[i].end.is_none() => {
                refused.push(json!({"id": id, "statusCode": "BUILD_IN_PROGRESS"}))
            }
            Some(i) => {
                builds.remove(i);
                deleted.push(id.to_string());
            }
            None => refused.push(json!({"id": id, "statusCode": "BUILD_NOT_FOUND"})),
        }
    }
    (
        200,
        json!({"buildsDeleted": deleted, "buildsNotDeleted": refused}),
    )
}
