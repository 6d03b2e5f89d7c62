//! A local Lambda runtime API (the `/2018-06-01/runtime/...` endpoints a Lambda sandbox serves)
//! that runs one Lambda binary as a long-lived process and hands it invocations one at a time,
//! as Lambda does for one warm instance. Each invocation's answer (or error) goes back to the
//! caller; every line the process writes is kept, parsed as JSON where it is JSON, so a test can
//! assert what was logged.
//!
//! The listener's cold-start bench (issue 22) has its own one-event runtime API that measures a
//! start; this one serves many events to one start. Both belong in `crates/testkit` once it lands.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{Notify, oneshot};

/// How long one invocation may take before the bench gives up on it.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(120);

type Answer = Result<Value, Value>;

#[derive(Default)]
struct Runtime {
    pending: Mutex<VecDeque<(String, Value, oneshot::Sender<Answer>)>>,
    ready: Notify,
    inflight: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    init_error: Mutex<Option<String>>,
    function_arn: String,
}

async fn next(State(rt): State<Arc<Runtime>>) -> (HeaderMap, String) {
    loop {
        let item = rt.pending.lock().unwrap().pop_front();
        if let Some((id, event, answer)) = item {
            rt.inflight.lock().unwrap().insert(id.clone(), answer);
            let mut h = HeaderMap::new();
            h.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
            let deadline = time::OffsetDateTime::now_utc().unix_timestamp() as u128 * 1000
                + INVOKE_TIMEOUT.as_millis();
            h.insert(
                "lambda-runtime-deadline-ms",
                deadline.to_string().parse().unwrap(),
            );
            h.insert(
                "lambda-runtime-invoked-function-arn",
                rt.function_arn.parse().unwrap(),
            );
            h.insert(
                "lambda-runtime-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
                    .parse()
                    .unwrap(),
            );
            return (h, event.to_string());
        }
        rt.ready.notified().await;
    }
}

async fn response(
    State(rt): State<Arc<Runtime>>,
    UrlPath(id): UrlPath<String>,
    body: String,
) -> StatusCode {
    if let Some(tx) = rt.inflight.lock().unwrap().remove(&id) {
        let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
        let _ = tx.send(Ok(v));
    }
    StatusCode::ACCEPTED
}

async fn error(
    State(rt): State<Arc<Runtime>>,
    UrlPath(id): UrlPath<String>,
    body: String,
) -> StatusCode {
    if let Some(tx) = rt.inflight.lock().unwrap().remove(&id) {
        let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
        let _ = tx.send(Err(v));
    }
    StatusCode::ACCEPTED
}

async fn init_error(State(rt): State<Arc<Runtime>>, body: String) -> StatusCode {
    *rt.init_error.lock().unwrap() = Some(body);
    StatusCode::ACCEPTED
}

/// A runtime API for one instance of `name`, on its own port.
async fn serve(name: &str) -> (Arc<Runtime>, String, tokio::task::JoinHandle<()>) {
    let rt = Arc::new(Runtime {
        function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
        ..Runtime::default()
    });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(rt.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (rt, api, server)
}

/// One Lambda function: its binary, running under its own runtime API.
pub struct Function {
    pub name: String,
    bin: PathBuf,
    env: Vec<(String, String)>,
    rt: Arc<Runtime>,
    api: String,
    child: Mutex<Option<tokio::process::Child>>,
    logs: Arc<Mutex<Vec<Value>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Function {
    /// Starts `bin` with a cleared environment plus Lambda's own variables and `env`.
    pub async fn start(name: &str, bin: &Path, env: Vec<(String, String)>) -> Function {
        let (rt, api, server) = serve(name).await;
        let f = Function {
            name: name.to_string(),
            bin: bin.to_path_buf(),
            env,
            rt,
            api,
            child: Mutex::new(None),
            logs: Arc::default(),
            server,
        };
        f.spawn();
        f
    }

    fn spawn(&self) {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", &self.api)
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", self.name),
            )
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{} cannot start: {e}", self.bin.display()));
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = self.logs.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let v = serde_json::from_str(&line).unwrap_or(Value::String(line));
                    logs.lock().unwrap().push(v);
                }
            });
        }
        *self.child.lock().unwrap() = Some(child);
    }

    /// A new instance (a cold start) with `changes` applied to the environment: what a
    /// configuration update does on AWS.
    pub async fn restart(&mut self, changes: &[(&str, &str)]) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.start_kill();
        }
        // A new runtime API too: the killed instance's `next` long-poll may still be waiting in
        // the old one (the server does not notice the closed connection), and would take the
        // next invocation to a process that no longer exists.
        let (rt, api, server) = serve(&self.name).await;
        self.server.abort();
        (self.rt, self.api, self.server) = (rt, api, server);
        for (k, v) in changes {
            self.env.retain(|(n, _)| n != k);
            self.env.push((k.to_string(), v.to_string()));
        }
        self.spawn();
    }

    /// Invokes the function with `event` and waits for its answer: `Ok(result)` or
    /// `Err(error object)` as the runtime reported it.
    pub async fn invoke(&self, event: Value) -> Answer {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.rt.pending.lock().unwrap().push_back((id, event, tx));
        self.rt.ready.notify_one();
        match tokio::time::timeout(INVOKE_TIMEOUT, rx).await {
            Ok(Ok(answer)) => answer,
            _ => panic!(
                "{} did not answer within {INVOKE_TIMEOUT:?} (init error: {:?}); its log:\n{}",
                self.name,
                self.rt.init_error.lock().unwrap(),
                self.log_text()
            ),
        }
    }

    /// Every line the process wrote, JSON lines parsed.
    pub fn logs(&self) -> Vec<Value> {
        self.logs.lock().unwrap().clone()
    }

    /// The log lines whose `message` is `message`.
    pub fn logged(&self, message: &str) -> Vec<Value> {
        self.logs()
            .into_iter()
            .filter(|l| l["message"] == message)
            .collect()
    }

    pub fn log_text(&self) -> String {
        self.logs()
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.start_kill();
        }
        self.server.abort();
    }
}

/// The crates each Lambda binary is built from (its `slipway-*` dependencies and itself).
fn lambda_crates(name: &str) -> &'static [&'static str] {
    match name {
        "slipway-listener" => &["listener", "core", "aws"],
        "slipway-spawner" => &["spawner", "core", "aws", "github"],
        "slipway-notifier" => &["notifier", "core", "aws", "github", "calls"],
        "slipway-tasks" => &["tasks", "core", "aws", "calls"],
        other => panic!("{other} is not one of the four Lambda binaries"),
    }
}

/// The newest modification time of the files below `dir`.
fn newest_below(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_below(&path)
        } else {
            entry.metadata().ok()?.modified().ok()
        };
        newest = newest.max(t);
    }
    newest
}

/// The dev-profile binary `name` next to the running test (`target/debug/<name>`), refused when
/// missing or older than a source file of a crate it is built from (a stale binary would test old
/// code). Sources, not the libraries in `target/debug/deps`, are the reference: a target directory
/// shared between checkouts or feature sets holds several builds of each library.
pub fn lambda_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/debug/deps/<test> -> target/debug
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let bin = dir.join(name);
    let build = format!(
        "bash tests/aws-bench/run, or cargo build -p {name} (`cargo test --workspace` builds every binary)"
    );
    let meta = std::fs::metadata(&bin).unwrap_or_else(|_| {
        panic!("{} is missing: run {build}", bin.display());
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let newest_source = lambda_crates(name)
        .iter()
        .filter_map(|c| {
            let krate = root.join("crates").join(c);
            newest_below(&krate.join("src")).max(
                std::fs::metadata(krate.join("Cargo.toml"))
                    .ok()?
                    .modified()
                    .ok(),
            )
        })
        .max();
    if let (Some(source), Ok(b)) = (newest_source, meta.modified()) {
        assert!(
            b >= source,
            "{} is older than its sources: run {build}",
            bin.display()
        );
    }
    bin
}
