//! The htpasswd registry and the Docker engine of `tests/services.sh`, and the image contexts the
//! tests build. [`registry`] fails loudly when a variable is missing or a service does not answer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// What a client accepts when it asks for a manifest: lists and single manifests, Docker and OCI.
const ACCEPT: &[&str] = &[
    "Accept: application/vnd.docker.distribution.manifest.list.v2+json",
    "Accept: application/vnd.oci.image.index.v1+json",
    "Accept: application/vnd.docker.distribution.manifest.v2+json",
    "Accept: application/vnd.oci.image.manifest.v1+json",
];

/// One entry of a manifest list, read through to its config.
#[derive(Debug)]
pub struct Entry {
    /// `os/arch` from the list.
    pub platform: String,
    pub digest: String,
    /// The config's own `os/architecture`.
    pub config_platform: String,
    /// Layer digests, base first.
    pub layers: Vec<String>,
}

/// The test registry, from `source tests/services.sh start`'s variables.
#[derive(Debug, Clone)]
pub struct Registry {
    /// `127.0.0.1:5056`.
    pub host: String,
    pub user: String,
    pub password: String,
    /// A static busybox for `FROM scratch` images (no image can be pulled here).
    pub busybox: PathBuf,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `source tests/services.sh start` before these tests")
    })
}

/// The registry of `tests/services.sh`, checked: it answers with these credentials, and the
/// Docker engine runs.
pub fn registry() -> Registry {
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
    let code = r.curl(&["-o", "/dev/null", "-w", "%{http_code}"], "/v2/");
    assert_eq!(
        code.trim(),
        "200",
        "the test registry at {} does not answer with these credentials",
        r.host
    );
    let docker = Command::new("docker")
        .arg("info")
        .output()
        .expect("docker runs");
    assert!(docker.status.success(), "the Docker engine is not running");
    r
}

impl Registry {
    /// A request to the registry API (`path` from `/v2/`); the credentials go through curl's
    /// configuration on standard input, never argv. Standard output.
    pub fn curl(&self, args: &[&str], path: &str) -> String {
        let mut child = Command::new("curl")
            .args(["-sS", "-K", "-"])
            .args(args)
            .arg(format!("http://{}{path}", self.host))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("curl runs");
        writeln!(
            child.stdin.take().expect("curl's standard input"),
            "user = \"{}:{}\"",
            self.user,
            self.password
        )
        .expect("curl reads its configuration");
        let out = child.wait_with_output().expect("curl ends");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// The digest the registry holds for `path:tag` (`path` without the host).
    pub fn manifest_digest(&self, path: &str, tag: &str) -> Option<String> {
        let headers = self.curl(
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
        headers
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("docker-content-digest:")
                    .map(|v| v.trim().to_string())
            })
            .filter(|d| !d.is_empty())
    }

    /// A manifest (list) as the registry serves it, read as a client reads it: its digest
    /// (`Docker-Content-Digest`) and body. `None` when the registry does not have it.
    pub fn manifest(&self, path: &str, reference: &str) -> Option<(String, Value)> {
        let mut args: Vec<&str> = vec!["-D", "-"];
        for a in ACCEPT {
            args.push("-H");
            args.push(a);
        }
        let text = self.curl(&args, &format!("/v2/{path}/manifests/{reference}"));
        let (head, body) = text.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.1 200") {
            return None;
        }
        let digest = head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("docker-content-digest:")
                .map(|v| v.trim().to_string())
        })?;
        Some((digest, serde_json::from_str(body).ok()?))
    }

    /// A JSON blob (an image config).
    pub fn blob(&self, path: &str, digest: &str) -> Value {
        let text = self.curl(&["-L"], &format!("/v2/{path}/blobs/{digest}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("blob {digest}: {e}: {text}"))
    }

    /// The list `path:reference`: its digest, its body and its entries; panics when it is not a
    /// list.
    pub fn list_entries(&self, path: &str, reference: &str) -> (String, Value, Vec<Entry>) {
        let (digest, list) = self
            .manifest(path, reference)
            .unwrap_or_else(|| panic!("{path}:{reference} is missing"));
        let media = list["mediaType"].as_str().unwrap_or_default();
        assert!(
            media.ends_with("manifest.list.v2+json") || media.ends_with("image.index.v1+json"),
            "{path}:{reference} is not a manifest list: {list}"
        );
        let mut entries = Vec::new();
        for m in list["manifests"].as_array().expect("a list's manifests") {
            let d = m["digest"].as_str().expect("an entry's digest").to_string();
            let platform = format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap_or_default(),
                m["platform"]["architecture"].as_str().unwrap_or_default()
            );
            let (_, image) = self
                .manifest(path, &d)
                .unwrap_or_else(|| panic!("{path}@{d} is missing"));
            let config = self.blob(
                path,
                image["config"]["digest"].as_str().expect("a config digest"),
            );
            entries.push(Entry {
                platform,
                digest: d,
                config_platform: format!(
                    "{}/{}",
                    config["os"].as_str().unwrap_or_default(),
                    config["architecture"].as_str().unwrap_or_default()
                ),
                layers: image["layers"]
                    .as_array()
                    .map(|ls| {
                        ls.iter()
                            .filter_map(|l| l["digest"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        (digest, list, entries)
    }

    /// `docker login` to the registry, password on standard input, into the client
    /// configuration `config` (a fresh directory), or the user's when `None`.
    pub fn login(&self, config: Option<&Path>) {
        let mut c = Command::new("docker");
        if let Some(dir) = config {
            std::fs::create_dir_all(dir).expect("create the docker client configuration");
            c.env("DOCKER_CONFIG", dir);
        }
        let mut login = c
            .args([
                "login",
                "--username",
                &self.user,
                "--password-stdin",
                &self.host,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker runs");
        login
            .stdin
            .take()
            .expect("docker's standard input")
            .write_all(self.password.as_bytes())
            .expect("docker reads the password");
        let out = login.wait_with_output().expect("docker login ends");
        assert!(
            out.status.success(),
            "docker login {} failed (is the registry of tests/services.sh running?): {}",
            self.host,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A docker client configuration in `dir/docker-config`, logged in to the registry.
    pub fn docker_config(&self, dir: &Path) -> PathBuf {
        let cfg = dir.join("docker-config");
        self.login(Some(&cfg));
        cfg
    }

    /// The credentials file `slipway build --secrets-file` and serve's `registry_secrets_file`
    /// read, for images under `namespace_path` (the namespace without the host), written in
    /// `dir`.
    pub fn secrets_file(&self, namespace_path: &str, dir: &Path) -> PathBuf {
        let p = dir.join("registry-secrets");
        std::fs::write(&p, self.secrets(namespace_path)).expect("write the secrets file");
        p
    }

    /// The secrets file's text: `/slipway/registry/<host, : as _>/<namespace>/{username,password}`.
    pub fn secrets(&self, namespace_path: &str) -> String {
        let host = self.host.replace(':', "_");
        format!(
            "/slipway/registry/{host}/{namespace_path}/username={}\n/slipway/registry/{host}/{namespace_path}/password={}\n",
            self.user, self.password
        )
    }

    /// An image context at `dir/context`: busybox, a `stamp.txt` unique to this test (its
    /// layers are its own), and `dockerfile`.
    pub fn busybox_context(&self, dir: &Path, context: &str, dockerfile: &str) {
        let ctx = dir.join(context);
        std::fs::create_dir_all(&ctx).expect("create the image context");
        std::fs::copy(&self.busybox, ctx.join("busybox"))
            .unwrap_or_else(|e| panic!("copy {}: {e}", self.busybox.display()));
        std::fs::write(ctx.join("stamp.txt"), crate::unique(context)).expect("write the stamp");
        std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("write the Dockerfile");
    }
}

/// A `FROM scratch` Dockerfile with busybox and the stamp, and a step that takes `sleep` seconds.
pub fn busybox_dockerfile(sleep: u32, extra: &str) -> String {
    format!(
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY stamp.txt /stamp.txt\nRUN [\"/bin/busybox\", \"sleep\", \"{sleep}\"]\n{extra}CMD [\"/bin/busybox\", \"cat\", \"/stamp.txt\"]\n"
    )
}

/// Runs the docker client with `args`, with the client configuration `config` when given.
pub fn docker(args: &[&str], config: Option<&Path>) -> Output {
    let mut c = Command::new("docker");
    if let Some(cfg) = config {
        c.env("DOCKER_CONFIG", cfg);
    }
    c.args(args).output().expect("docker runs")
}

/// Removes local images (by reference) this test made; other engineers' images stay.
pub fn remove_images(refs: &[String]) {
    for r in refs {
        let _ = Command::new("docker")
            .args(["image", "rm", "--force", r])
            .output();
    }
}
