//! What the BuildKit tests share on top of `serve_support`: `slipway build` runs, the registry's
//! manifest and blob API (to read manifest lists and image configs the way a client does), and
//! the engine's build cache records of one test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::serve_support::{Registry, registry_curl, unique};

/// What a client accepts when it asks for a manifest: lists and single manifests, Docker and OCI.
const ACCEPT: &[&str] = &[
    "Accept: application/vnd.docker.distribution.manifest.list.v2+json",
    "Accept: application/vnd.oci.image.index.v1+json",
    "Accept: application/vnd.docker.distribution.manifest.v2+json",
    "Accept: application/vnd.oci.image.manifest.v1+json",
];

/// A manifest (list) as the registry serves it: its digest (`Docker-Content-Digest`) and body.
pub fn manifest(r: &Registry, path: &str, reference: &str) -> Option<(String, Value)> {
    let mut args: Vec<&str> = vec!["-D", "-"];
    for a in ACCEPT {
        args.push("-H");
        args.push(a);
    }
    let text = registry_curl(r, &args, &format!("/v2/{path}/manifests/{reference}"));
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
pub fn blob(r: &Registry, path: &str, digest: &str) -> Value {
    let text = registry_curl(r, &["-L"], &format!("/v2/{path}/blobs/{digest}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("blob {digest}: {e}: {text}"))
}

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

/// The entries of the list `path:reference`; panics when it is not a list.
pub fn list_entries(r: &Registry, path: &str, reference: &str) -> (String, Value, Vec<Entry>) {
    let (digest, list) =
        manifest(r, path, reference).unwrap_or_else(|| panic!("{path}:{reference} is missing"));
    let media = list["mediaType"].as_str().unwrap_or_default();
    assert!(
        media.ends_with("manifest.list.v2+json") || media.ends_with("image.index.v1+json"),
        "{path}:{reference} is not a manifest list: {list}"
    );
    let mut entries = Vec::new();
    for m in list["manifests"].as_array().unwrap() {
        let d = m["digest"].as_str().unwrap().to_string();
        let platform = format!(
            "{}/{}",
            m["platform"]["os"].as_str().unwrap_or_default(),
            m["platform"]["architecture"].as_str().unwrap_or_default()
        );
        let (_, image) = manifest(r, path, &d).unwrap();
        let config = blob(r, path, image["config"]["digest"].as_str().unwrap());
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
                        .map(|l| l["digest"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    (digest, list, entries)
}

pub struct Build {
    pub output: Output,
    pub log: String,
    pub result: Value,
}

impl Build {
    pub fn ok(&self) -> bool {
        self.output.status.success()
    }

    pub fn digest(&self, n: usize) -> String {
        self.result["builds"][n]["exported"]["SLIPWAY_DIGEST"]
            .as_str()
            .unwrap_or_else(|| panic!("no exported digest: {}\n{}", self.result, self.log))
            .to_string()
    }
}

/// Runs `slipway build` for `plan` (JSON) from the repository `repo`, with the registry's
/// credentials for `namespace` (the path under the host) and, if given, another buildspec.
pub fn slipway_build(
    work: &Path,
    r: &Registry,
    namespace: &str,
    repo: &Path,
    plan: &Value,
    buildspec: Option<&Path>,
) -> Build {
    slipway_build_with(work, r, namespace, repo, plan, buildspec, &[])
}

/// [`slipway_build`] with extra environment variables for the `slipway build` process.
pub fn slipway_build_with(
    work: &Path,
    r: &Registry,
    namespace: &str,
    repo: &Path,
    plan: &Value,
    buildspec: Option<&Path>,
    env: &[(&str, &str)],
) -> Build {
    let plan_path = work.join(unique("plan"));
    std::fs::write(&plan_path, plan.to_string()).unwrap();
    let host = r.host.replace(':', "_");
    let secrets = work.join(unique("secrets"));
    std::fs::write(
        &secrets,
        format!(
            "/slipway/registry/{host}/{namespace}/username={}\n/slipway/registry/{host}/{namespace}/password={}\n",
            r.user, r.password
        ),
    )
    .unwrap();
    let result_path = work.join(unique("result"));
    let mut c = Command::new(env!("CARGO_BIN_EXE_slipway"));
    c.arg("build")
        .arg("--plan")
        .arg(&plan_path)
        .arg("--source")
        .arg(repo)
        .arg("--secrets-file")
        .arg(&secrets)
        .arg("--work-dir")
        .arg(work)
        .arg("--result")
        .arg(&result_path)
        .env_remove("SLIPWAY_SECRETS_FILE")
        .envs(env.iter().copied());
    if let Some(b) = buildspec {
        c.arg("--buildspec").arg(b);
    }
    let output = c.output().unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let result = std::fs::read_to_string(&result_path)
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null);
    Build {
        output,
        log,
        result,
    }
}

/// A plan of the images (JSON objects as the planner writes them) at `commit` of `main`.
pub fn plan(commit: &str, images: Vec<Value>) -> Value {
    json!({
        "repository": "acme/site",
        "ref": "refs/heads/main",
        "commit": commit,
        "changes": {"source": "all", "reason": "test"},
        "images": images,
    })
}

/// The shipped buildspec with extra `env.variables`, as a CodeBuild batch's build graph adds
/// them to one build of the batch.
pub fn buildspec_with(dir: &Path, name: &str, vars: &[(&str, &str)]) -> PathBuf {
    let shipped = include_str!("../../../../buildspec.yml");
    let marker = "  variables:\n";
    let extra: String = vars
        .iter()
        .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
        .collect();
    assert!(shipped.contains(marker));
    let text = shipped.replacen(marker, &format!("{marker}{extra}"), 1);
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `docker run --rm --network host --platform <platform> <image>`: its standard output.
pub fn run_image(platform: &str, image: &str, config: &Path) -> String {
    let out = Command::new("docker")
        .env("DOCKER_CONFIG", config)
        .args([
            "run",
            "--rm",
            "--pull",
            "always",
            "--network",
            "host",
            "--platform",
            platform,
            image,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker run --platform {platform} {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes local images (by reference) this test made; other engineers' images stay.
pub fn remove_images(refs: &[String]) {
    for r in refs {
        let _ = Command::new("docker")
            .args(["image", "rm", "--force", r])
            .output();
    }
}

/// The Dockerfile steps BuildKit reported in a log written with `BUILDKIT_PROGRESS=rawjson`
/// (its solve status as JSON documents, one per update): each step (vertex) once, in the order
/// it started, with whether BuildKit marked it `cached` (what plain progress prints as `CACHED`).
pub fn steps(log: &str) -> Vec<(String, bool)> {
    let mut order: Vec<String> = Vec::new();
    let mut vertices: std::collections::BTreeMap<String, (String, bool)> = Default::default();
    let mut doc = String::new();
    for line in log.lines() {
        if doc.is_empty() && line != "{" {
            continue;
        }
        doc.push_str(line);
        doc.push('\n');
        if line != "}" {
            continue;
        }
        let status: Value = serde_json::from_str(&doc).unwrap_or(Value::Null);
        doc.clear();
        for v in status["vertexes"].as_array().into_iter().flatten() {
            let (Some(digest), Some(name)) = (v["digest"].as_str(), v["name"].as_str()) else {
                continue;
            };
            let e = vertices.entry(digest.to_string()).or_insert_with(|| {
                order.push(digest.to_string());
                (name.to_string(), false)
            });
            e.1 |= v["cached"].as_bool().unwrap_or(false);
        }
    }
    order
        .into_iter()
        .filter_map(|d| vertices.remove(&d))
        .filter(|(name, _)| {
            name.starts_with('[') && !name.starts_with("[internal]") && !name.starts_with("[auth]")
        })
        .collect()
}
