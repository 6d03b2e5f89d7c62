//! One Lambda function on the bench: its binary run as a long-lived process under the kit's local
//! Lambda runtime API (`slipway_testkit::lambda::RuntimeApi`, the `/2018-06-01/runtime/...`
//! endpoints a Lambda sandbox serves), handed invocations one at a time, as Lambda does for one
//! warm instance. Each invocation's answer (or error) goes back to the caller; every line the
//! process writes is kept, parsed as JSON where it is JSON, so a test can assert what was logged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use slipway_testkit::lambda::RuntimeApi;
use tokio::io::AsyncBufReadExt;

/// How long one invocation may take before the bench gives up on it.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(120);

type Answer = Result<Value, Value>;

/// One Lambda function: its binary, running under its own runtime API.
pub struct Function {
    pub name: String,
    bin: PathBuf,
    env: Vec<(String, String)>,
    api: RuntimeApi,
    child: Mutex<Option<tokio::process::Child>>,
    logs: Arc<Mutex<Vec<Value>>>,
}

impl Function {
    /// Starts `bin` with a cleared environment plus Lambda's own variables and `env`.
    pub async fn start(name: &str, bin: &Path, env: Vec<(String, String)>) -> Function {
        let f = Function {
            name: name.to_string(),
            bin: bin.to_path_buf(),
            env,
            api: RuntimeApi::start(name, INVOKE_TIMEOUT).await,
            child: Mutex::new(None),
            logs: Arc::default(),
        };
        f.spawn();
        f
    }

    fn spawn(&self) {
        let mut cmd = self.api.command(&self.bin);
        cmd.env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
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
        self.api = RuntimeApi::start(&self.name, INVOKE_TIMEOUT).await;
        for (k, v) in changes {
            self.env.retain(|(n, _)| n != k);
            self.env.push((k.to_string(), v.to_string()));
        }
        self.spawn();
    }

    /// Invokes the function with `event` and waits for its answer: `Ok(result)` or
    /// `Err(error object)` as the runtime reported it.
    pub async fn invoke(&self, event: Value) -> Answer {
        match self
            .api
            .invoke(event.to_string())
            .answer(INVOKE_TIMEOUT)
            .await
        {
            Ok(answer) => answer.result,
            Err(no) => panic!("{}: {no}; its log:\n{}", self.name, self.log_text()),
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
