//! What the BuildKit tests of the `slipway` binary share on top of `slipway_testkit`: `slipway
//! build` runs of a plan, the repositories and images the plans name, the shipped buildspec with
//! extra variables, images run per platform, and the steps BuildKit reported. (The registry's manifest and blob API is
//! `slipway_testkit::registry::Registry`'s.)

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use slipway_testkit::git::{commit_all, init, write};
use slipway_testkit::registry::Registry;
use slipway_testkit::unique;

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
    slipway_build_secrets(work, &r.secrets(namespace), repo, plan, buildspec, env)
}

/// Runs `slipway build` for `plan` from `repo` with the secrets file's text `secrets` (the
/// registry's credentials, or wrong ones).
pub fn slipway_build_secrets(
    work: &Path,
    secrets: &str,
    repo: &Path,
    plan: &Value,
    buildspec: Option<&Path>,
    env: &[(&str, &str)],
) -> Build {
    let plan_path = work.join(unique("plan"));
    std::fs::write(&plan_path, plan.to_string()).unwrap();
    let secrets_path = work.join(unique("secrets"));
    std::fs::write(&secrets_path, secrets).unwrap();
    let result_path = work.join(unique("result"));
    let mut c = Command::new(env!("CARGO_BIN_EXE_slipway"));
    c.arg("build")
        .arg("--plan")
        .arg(&plan_path)
        .arg("--source")
        .arg(repo)
        .arg("--secrets-file")
        .arg(&secrets_path)
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

/// An image of a plan as the planner writes it: `name` built from `context`'s Dockerfile at
/// `commit`, tagged `tags`, with the fields `more` (`platforms`, `autotest`, ...) added.
pub fn image_json(
    name: &str,
    context: &str,
    commit: &str,
    tags: &[&str],
    more: &[(&str, Value)],
) -> Value {
    let mut image = json!({
        "name": name,
        "context": context,
        "dockerfile": format!("{context}/Dockerfile"),
        "commit": commit,
        "tags": tags,
        "reasons": ["test"],
        "order": 0,
    });
    for (k, v) in more {
        image[*k] = v.clone();
    }
    image
}

/// A repository made by the test and committed, and a unique image name for it in the test
/// registry.
pub struct App {
    pub repo: PathBuf,
    pub commit: String,
    /// The image's path under the registry's host.
    pub path: String,
    /// `host/path`.
    pub name: String,
}

/// The repository `dir/repo` with what `fill` writes into it and a unique file `app/unique.txt`
/// (no other test's image has its layers), committed with `message`; its image named after
/// `label`.
pub fn app(r: &Registry, dir: &Path, label: &str, message: &str, fill: impl FnOnce(&Path)) -> App {
    let repo = dir.join("repo");
    init(&repo);
    fill(&repo);
    write(&repo, "app/unique.txt", &unique(label));
    let commit = commit_all(&repo, message);
    let path = unique(&format!("slipway-test/{label}"));
    let name = format!("{}/{path}", r.host);
    App {
        repo,
        commit,
        path,
        name,
    }
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
