//! A running `slipway serve` for the tests: its configuration, start-up (until `/healthz`
//! answers), requests, pushes through `slipway replay`, and the wait for builds to settle.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::registry::Registry;

/// The webhook secret the tests' servers use (`SLIPWAY_TEST_SERVE_SECRET`).
pub const SECRET: &str = "serve-test-secret-0123456789abcdef";

/// A running `slipway serve`; killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    /// The `slipway` binary (`env!("CARGO_BIN_EXE_slipway")` in the test).
    pub bin: PathBuf,
    pub base: String,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

pub struct ServeSetup {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub port: u16,
}

/// A configuration for `slipway serve` (the binary `bin`) in `dir`: a free port, a data directory,
/// images under `namespace` with the registry credentials in `secrets`, and `extra` lines.
pub fn setup(
    bin: impl AsRef<Path>,
    dir: &Path,
    namespace: &str,
    secrets: &Path,
    extra: &str,
) -> ServeSetup {
    let port = crate::free_port();
    let data_dir = dir.join("data");
    let config = dir.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nnamespace = \"{namespace}\"\nregistry_secrets_file = \"{}\"\nsecret_env = \"SLIPWAY_TEST_SERVE_SECRET\"\n{extra}\n",
            data_dir.display(),
            secrets.display()
        ),
    )
    .unwrap();
    ServeSetup {
        bin: bin.as_ref().to_path_buf(),
        dir: dir.to_path_buf(),
        config,
        data_dir,
        port,
    }
}

/// [`setup`] for images under `ns_path` in the test registry `r`, whose credentials it writes to
/// a secrets file in `dir`.
pub fn setup_in_registry(
    bin: impl AsRef<Path>,
    r: &Registry,
    dir: &Path,
    ns_path: &str,
    extra: &str,
) -> ServeSetup {
    let secrets = r.secrets_file(ns_path, dir);
    setup(bin, dir, &format!("{}/{ns_path}", r.host), &secrets, extra)
}

/// [`setup_in_registry`] for the `slipway` binary of the calling test crate (`crates/cli`):
/// `serve_setup!(&r, tmp.path(), &ns_path, "concurrency = 2")`.
#[macro_export]
macro_rules! serve_setup {
    ($registry:expr, $dir:expr, $ns_path:expr, $extra:expr) => {
        $crate::serve::setup_in_registry(
            env!("CARGO_BIN_EXE_slipway"),
            $registry,
            $dir,
            $ns_path,
            $extra,
        )
    };
}

impl ServeSetup {
    /// Starts `slipway serve` and waits until `/healthz` answers. `run` numbers the output files.
    pub fn start(&self, run: u32) -> Server {
        let stdout = self.dir.join(format!("serve-{run}.out"));
        let stderr = self.dir.join(format!("serve-{run}.err"));
        let child = Command::new(&self.bin)
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env("SLIPWAY_TEST_SERVE_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .env_remove("SLIPWAY_CONFIG")
            .env_remove("SLIPWAY_DATA_DIR")
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut s = Server {
            child,
            bin: self.bin.clone(),
            base: format!("http://127.0.0.1:{}", self.port),
            stdout,
            stderr,
        };
        let t = Instant::now();
        loop {
            if let Some((200, _)) = s.try_get("/healthz") {
                return s;
            }
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("slipway serve exited with {st}:\n{}", s.log());
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "slipway serve did not answer:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Server {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The notifications printed so far (one JSON object per line).
    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn try_get(&self, path: &str) -> Option<(u16, String)> {
        let out = Command::new("curl")
            .args(["-sS", "-m", "30", "-w", "\n%{http_code}"])
            .arg(format!("{}{path}", self.base))
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n')?;
        Some((code.trim().parse().ok()?, body.to_string()))
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        self.try_get(path)
            .unwrap_or_else(|| panic!("GET {path} failed:\n{}", self.log()))
    }

    pub fn get_json(&self, path: &str) -> Value {
        let (code, body) = self.get(path);
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn builds(&self) -> Vec<Value> {
        self.get_json("/builds?limit=1000")["builds"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Sends a push of `repo` from `before` to `after` with `slipway replay`; returns its answer.
    pub fn push(&self, repo: &Path, before: Option<&str>, after: &str, delivery: &str) -> Value {
        let mut c = Command::new(&self.bin);
        c.arg("replay")
            .arg("--url")
            .arg(format!("{}/hooks/github", self.base))
            .arg("--secret-env")
            .arg("SLIPWAY_TEST_SERVE_SECRET")
            .arg("--repo")
            .arg(repo)
            .arg("--ref")
            .arg("refs/heads/main")
            .arg("--after")
            .arg(after)
            .arg("--repository")
            .arg("acme/site")
            .arg("--delivery")
            .arg(delivery)
            .env("SLIPWAY_TEST_SERVE_SECRET", SECRET);
        if let Some(b) = before {
            c.arg("--before").arg(b);
        }
        let out: Output = c.output().unwrap();
        assert!(
            out.status.success(),
            "slipway replay failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits until `n` builds exist and none is queued or running.
    pub fn wait_settled(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let t = Instant::now();
        loop {
            let b = self.builds();
            let busy = b
                .iter()
                .any(|x| x["state"] == "queued" || x["state"] == "running");
            let jobs = self.get_json("/healthz");
            let jobs_busy = jobs["counts"]["jobs"]["queued"].as_i64().unwrap_or(0)
                + jobs["counts"]["jobs"]["planned"].as_i64().unwrap_or(0);
            if b.len() >= n && !busy && jobs_busy == 0 {
                return b;
            }
            assert!(
                t.elapsed() < timeout,
                "builds did not settle: {b:#?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
