//! What the `slipway serve` tests share: the real registry of `tests/services.sh`, git
//! repositories, a `slipway serve` process, and requests to it.
//!
//! Needs `source tests/services.sh start` (SLIPWAY_TEST_REGISTRY, SLIPWAY_TEST_REGISTRY_USER,
//! SLIPWAY_TEST_REGISTRY_PASSWORD_FILE, SLIPWAY_TEST_BUSYBOX); fails loudly without them.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const SECRET: &str = "serve-test-secret-0123456789abcdef";

pub struct Registry {
    pub host: String,
    pub user: String,
    pub password: String,
    pub busybox: PathBuf,
}

pub fn registry() -> Registry {
    let var = |n: &str| {
        std::env::var(n).unwrap_or_else(|_| {
            panic!("{n} is not set: run `source tests/services.sh start` before these tests")
        })
    };
    let password_file = var("SLIPWAY_TEST_REGISTRY_PASSWORD_FILE");
    let password = std::fs::read_to_string(&password_file)
        .unwrap_or_else(|e| panic!("cannot read {password_file}: {e}"))
        .trim()
        .to_string();
    let r = Registry {
        host: var("SLIPWAY_TEST_REGISTRY"),
        user: var("SLIPWAY_TEST_REGISTRY_USER"),
        password,
        busybox: PathBuf::from(var("SLIPWAY_TEST_BUSYBOX")),
    };
    let code = registry_curl(&r, &["-o", "/dev/null", "-w", "%{http_code}"], "/v2/");
    assert_eq!(
        code.trim(),
        "200",
        "the test registry at {} does not answer with these credentials",
        r.host
    );
    let docker = Command::new("docker").arg("info").output().unwrap();
    assert!(docker.status.success(), "the Docker engine is not running");
    r
}

/// A request to the registry API; credentials go through curl's config on standard input.
pub fn registry_curl(r: &Registry, args: &[&str], path: &str) -> String {
    let mut child = Command::new("curl")
        .args(["-sS", "-K", "-"])
        .args(args)
        .arg(format!("http://{}{path}", r.host))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    writeln!(
        child.stdin.take().unwrap(),
        "user = \"{}:{}\"",
        r.user,
        r.password
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The digest the registry holds for `name:tag` (`name` without the host).
pub fn manifest_digest(r: &Registry, path: &str, tag: &str) -> Option<String> {
    let headers = registry_curl(
        r,
        &[
            "-I",
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ],
        &format!("/v2/{path}/manifests/{tag}"),
    );
    if !headers.starts_with("HTTP/1.1 200") {
        return None;
    }
    headers.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("docker-content-digest:")
            .map(|v| v.trim().to_string())
    })
}

pub fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}x{n}", std::process::id())
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=slipway test",
            "-c",
            "user.email=test@slipway.invalid",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "--quiet", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

pub fn init_repo(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
}

pub fn write(dir: &Path, path: &str, text: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// The registry credentials file `slipway serve` hands to its builds.
pub fn registry_secrets(r: &Registry, namespace_path: &str, dir: &Path) -> PathBuf {
    let host = r.host.replace(':', "_");
    let p = dir.join("registry-secrets");
    std::fs::write(
        &p,
        format!(
            "/slipway/registry/{host}/{namespace_path}/username={}\n/slipway/registry/{host}/{namespace_path}/password={}\n",
            r.user, r.password
        ),
    )
    .unwrap();
    p
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `slipway serve`; killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

pub struct ServeSetup {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub port: u16,
}

pub fn setup(dir: &Path, namespace: &str, secrets: &Path, extra: &str) -> ServeSetup {
    let port = free_port();
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
        dir: dir.to_path_buf(),
        config,
        data_dir,
        port,
    }
}

impl ServeSetup {
    /// Starts `slipway serve` and waits until `/healthz` answers. `run` numbers the output files.
    pub fn start(&self, run: u32) -> Server {
        let stdout = self.dir.join(format!("serve-{run}.out"));
        let stderr = self.dir.join(format!("serve-{run}.err"));
        let child = Command::new(env!("CARGO_BIN_EXE_slipway"))
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
        let mut c = Command::new(env!("CARGO_BIN_EXE_slipway"));
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

/// A `FROM scratch` Dockerfile with busybox, and a step that takes `sleep` seconds.
pub fn busybox_dockerfile(sleep: u32, extra: &str) -> String {
    format!(
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY stamp.txt /stamp.txt\nRUN [\"/bin/busybox\", \"sleep\", \"{sleep}\"]\n{extra}CMD [\"/bin/busybox\", \"cat\", \"/stamp.txt\"]\n"
    )
}

pub fn docker(args: &[&str], config: Option<&Path>) -> Output {
    let mut c = Command::new("docker");
    if let Some(cfg) = config {
        c.env("DOCKER_CONFIG", cfg);
    }
    c.args(args).output().unwrap()
}

/// A docker client configuration logged in to the test registry.
pub fn docker_login(r: &Registry, dir: &Path) -> PathBuf {
    let cfg = dir.join("docker-config");
    std::fs::create_dir_all(&cfg).unwrap();
    let mut login = Command::new("docker")
        .env("DOCKER_CONFIG", &cfg)
        .args(["login", "--username", &r.user, "--password-stdin", &r.host])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    login
        .stdin
        .take()
        .unwrap()
        .write_all(r.password.as_bytes())
        .unwrap();
    assert!(login.wait().unwrap().success(), "docker login");
    cfg
}
