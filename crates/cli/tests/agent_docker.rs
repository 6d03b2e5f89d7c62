//! `slipway agent` + `slipway deliver` with the real Docker engine, docker-compose and the test
//! registry (`source tests/services.sh start`): a compose project runs a `FROM scratch` busybox
//! image from the registry; a new image is deployed, a broken one is rolled back, a failed pull
//! changes nothing.

mod agent_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use agent_support::*;
use serde_json::Value;
use slipway_testkit::{free_port, unique};

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("DOCKER_BUILDKIT", "0")
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args, None);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The registry address, logged in once per test binary (the user's client configuration:
/// docker-compose pulls with it).
fn registry() -> String {
    static LOGIN: Once = Once::new();
    let r = slipway_testkit::registry::registry();
    LOGIN.call_once(|| r.login(None));
    r.host
}

enum Variant<'a> {
    /// Serves `text` at / and is healthy.
    Serving(&'a str),
    /// Serves nothing: its health check fails.
    Broken,
}

/// Builds a `FROM scratch` busybox image tagged `tag`; returns its id.
fn build(dir: &Path, tag: &str, port: u16, variant: Variant<'_>) -> String {
    let ctx = tempfile::tempdir_in(dir).unwrap();
    let busybox =
        std::env::var("SLIPWAY_TEST_BUSYBOX").unwrap_or_else(|_| "/usr/bin/busybox".into());
    std::fs::copy(&busybox, ctx.path().join("busybox"))
        .unwrap_or_else(|e| panic!("copy {busybox}: {e} (apt-get install busybox-static)"));
    std::fs::create_dir(ctx.path().join("www")).unwrap();
    let cmd = match variant {
        Variant::Serving(text) => {
            std::fs::write(ctx.path().join("www/index.html"), text).unwrap();
            format!(r#"["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:{port}", "-h", "/www"]"#)
        }
        Variant::Broken => {
            std::fs::write(ctx.path().join("www/index.html"), "broken").unwrap();
            r#"["/bin/busybox", "sleep", "3600"]"#.to_string()
        }
    };
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n\
             HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD [\"/bin/busybox\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:{port}/index.html\"]\n\
             CMD {cmd}\n"
        ),
    )
    .unwrap();
    // No cache: another suite may remove, at the same moment, the image that holds a cached
    // layer's parent snapshot (the engine then fails the step with "parent snapshot ... not found").
    ok(
        "docker",
        &[
            "build",
            "-q",
            "--no-cache",
            "-t",
            tag,
            &ctx.path().to_string_lossy(),
        ],
    );
    ok("docker", &["image", "inspect", "--format", "{{.Id}}", tag])
}

/// Pushes a new image as `tag` to the registry while the local `tag` keeps pointing at
/// `local_id`, so that only a real pull can bring the new image.
fn push_as(dir: &Path, tag: &str, port: u16, variant: Variant<'_>, local_id: &str) -> String {
    let id = build(dir, tag, port, variant);
    ok("docker", &["push", tag]);
    ok("docker", &["tag", local_id, tag]);
    id
}

/// A compose project on the host network; `down` and image removal on drop.
struct Project {
    name: String,
    file: PathBuf,
    image: String,
}

impl Project {
    fn up(dir: &Path, name: &str, image: &str) -> Self {
        let file = dir.join("docker-compose.yml");
        std::fs::write(
            &file,
            format!(
                "version: \"2.4\"\nservices:\n  web:\n    image: {image}\n    network_mode: host\n"
            ),
        )
        .unwrap();
        let project = Project {
            name: name.to_string(),
            file,
            image: image.to_string(),
        };
        ok(
            "docker-compose",
            &[
                "-p",
                name,
                "-f",
                &project.file.to_string_lossy(),
                "up",
                "-d",
            ],
        );
        project
    }

    /// The web container: (id, image id, running, health).
    fn container(&self) -> (String, String, bool, String) {
        let ids = ok(
            "docker",
            &[
                "ps",
                "-a",
                "-q",
                "--no-trunc",
                "--filter",
                &format!("label=com.docker.compose.project={}", self.name),
                "--filter",
                "label=com.docker.compose.service=web",
            ],
        );
        let ids: Vec<&str> = ids.lines().collect();
        assert_eq!(ids.len(), 1, "one web container: {ids:?}");
        let info: Value = serde_json::from_str(&ok("docker", &["inspect", ids[0]])).unwrap();
        let c = &info[0];
        (
            c["Id"].as_str().unwrap().to_string(),
            c["Image"].as_str().unwrap().to_string(),
            c["State"]["Running"].as_bool().unwrap(),
            c["State"]["Health"]["Status"]
                .as_str()
                .unwrap_or("none")
                .to_string(),
        )
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = run(
            "docker-compose",
            &[
                "-p",
                &self.name,
                "-f",
                &self.file.to_string_lossy(),
                "down",
                "-t",
                "1",
            ],
            None,
        );
        // Every image of the test's repository, including pulled ones known only by digest.
        let repository = self
            .image
            .rsplit_once(':')
            .map_or(self.image.as_str(), |(r, _)| r);
        let ids = run("docker", &["images", "-q", repository], None);
        let mut ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let _ = run("docker", &["rmi", "-f", &id], None);
        }
    }
}

async fn get(port: u16) -> Option<String> {
    let resp = reqwest::get(format!("http://127.0.0.1:{port}/index.html"))
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.text().await.ok()
}

async fn wait_serving(port: u16, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if get(port).await.as_deref() == Some(text) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("127.0.0.1:{port} never served {text:?}");
}

fn agent_config(dir: &Path, service: &str) -> String {
    std::fs::write(dir.join("ci.secret"), SECRET).unwrap();
    format!(
        "docker = [\"docker\"]\ncompose = [\"docker-compose\"]\nhealth_timeout_secs = 60\n\
         min_running_secs = 1\nremove_old_images = true\n\n\
         [[secret]]\nname = \"ci\"\nfile = \"{}/ci.secret\"\nservices = [\"{service}\"]\n",
        dir.display()
    )
}

/// Runs `slipway deliver --wait`; returns (success, final record).
fn deliver(agent: &Agent, service: &str) -> (bool, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args([
            "deliver",
            "--url",
            &agent.url,
            "--service",
            service,
            "--action",
            "pull",
            "--wait",
            "--timeout",
            "120",
        ])
        .env("SLIPWAY_DEPLOY_SECRET", SECRET)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let record: Value = serde_json::from_str(stdout.lines().last().unwrap_or("null"))
        .unwrap_or_else(|_| {
            panic!(
                "deliver printed no record: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (out.status.success(), record)
}

#[tokio::test]
async fn deliver_recreates_with_the_new_image_and_rolls_back_a_broken_one() {
    let registry = registry();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("slipwayagentok");
    let port = free_port();
    let image = format!("{registry}/{name}/web:live");

    let v1 = build(dir.path(), &image, port, Variant::Serving("v1"));
    ok("docker", &["push", &image]);
    let project = Project::up(dir.path(), &name, &image);
    wait_serving(port, "v1").await;

    let service = format!("{name}/web");
    let agent = start_agent(dir.path(), &agent_config(dir.path(), &service), &[]);

    // A new image in the registry: pulled, recreated, healthy.
    let v2 = push_as(dir.path(), &image, port, Variant::Serving("v2"), &v1);
    let (success, record) = deliver(&agent, &service);
    assert!(success, "deliver failed: {record}");
    assert_eq!(record["state"], "succeeded", "{record}");
    assert_eq!(record["new_image"], v2.as_str());
    assert_eq!(record["previous_image"], v1.as_str());
    let (_, running_image, running, health) = project.container();
    assert_eq!(
        (running_image.as_str(), running, health.as_str()),
        (v2.as_str(), true, "healthy")
    );
    assert_eq!(get(port).await.as_deref(), Some("v2"));
    // remove_old_images: v1 is gone, and so is the tag that pinned it during the deploy.
    let pin = format!("slipway-rollback/{name}-web:previous");
    assert!(
        !run("docker", &["image", "inspect", &pin], None)
            .status
            .success(),
        "{pin} left behind"
    );
    assert!(
        !run("docker", &["image", "inspect", &v1], None)
            .status
            .success(),
        "previous image kept"
    );

    // Pulling again changes nothing.
    let (success, record) = deliver(&agent, &service);
    assert!(success, "{record}");
    assert_eq!(record["state"], "unchanged", "{record}");

    // A broken image: fails its health check, v2 comes back.
    let broken = push_as(dir.path(), &image, port, Variant::Broken, &v2);
    let (success, record) = deliver(&agent, &service);
    assert!(!success, "deliver should fail: {record}");
    assert_eq!(record["state"], "rolled_back", "{record}");
    assert_eq!(record["new_image"], broken.as_str());
    let (_, running_image, running, _) = project.container();
    assert_eq!((running_image.as_str(), running), (v2.as_str(), true));
    wait_serving(port, "v2").await;
    let _ = run("docker", &["rmi", "-f", &broken], None);
}

#[tokio::test]
async fn failed_pull_leaves_the_running_container_untouched() {
    let registry = registry();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("slipwayagentpull");
    let port = free_port();
    // Built here, never pushed: the pull must fail.
    let image = format!("{registry}/{name}/web:never-pushed");
    let v1 = build(dir.path(), &image, port, Variant::Serving("still here"));
    let project = Project::up(dir.path(), &name, &image);
    wait_serving(port, "still here").await;
    let (before_id, _, _, _) = project.container();

    let service = format!("{name}/web");
    let agent = start_agent(dir.path(), &agent_config(dir.path(), &service), &[]);
    let (success, record) = deliver(&agent, &service);
    assert!(!success, "deliver should fail: {record}");
    assert_eq!(record["state"], "failed", "{record}");
    assert!(
        record["message"].as_str().unwrap().contains("pull failed"),
        "{record}"
    );

    let (after_id, image_id, running, _) = project.container();
    assert_eq!(after_id, before_id, "the container was recreated");
    assert_eq!((image_id.as_str(), running), (v1.as_str(), true));
    assert_eq!(get(port).await.as_deref(), Some("still here"));
}

#[tokio::test]
async fn deliver_build_rebuilds_and_recreates_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("slipwayagentbuild");
    let port = free_port();
    // A build context the compose file points to; the image name is local only.
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("www")).unwrap();
    let busybox =
        std::env::var("SLIPWAY_TEST_BUSYBOX").unwrap_or_else(|_| "/usr/bin/busybox".into());
    std::fs::copy(&busybox, app.join("busybox")).unwrap();
    std::fs::write(app.join("www/index.html"), "built v1").unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n\
             HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD [\"/bin/busybox\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:{port}/index.html\"]\n\
             CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"127.0.0.1:{port}\", \"-h\", \"/www\"]\n"
        ),
    )
    .unwrap();
    let image = format!("{name}/web:local");
    let file = dir.path().join("docker-compose.yml");
    std::fs::write(
        &file,
        format!("version: \"2.4\"\nservices:\n  web:\n    build: ./app\n    image: {image}\n    network_mode: host\n"),
    )
    .unwrap();
    let project = Project {
        name: name.clone(),
        file: file.clone(),
        image: image.clone(),
    };
    ok(
        "docker-compose",
        &[
            "-p",
            &name,
            "-f",
            &file.to_string_lossy(),
            "up",
            "-d",
            "--build",
        ],
    );
    wait_serving(port, "built v1").await;
    let (_, v1, _, _) = project.container();

    let service = format!("{name}/web");
    let agent = start_agent(dir.path(), &agent_config(dir.path(), &service), &[]);
    std::fs::write(app.join("www/index.html"), "built v2").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args([
            "deliver",
            "--url",
            &agent.url,
            "--service",
            &service,
            "--action",
            "build",
            "--wait",
        ])
        .env("SLIPWAY_DEPLOY_SECRET", SECRET)
        .output()
        .unwrap();
    let record: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.success(),
        "{record} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(record["state"], "succeeded", "{record}");
    assert_eq!(record["action"], "build");
    let (_, v2, running, health) = project.container();
    assert_ne!(v2, v1);
    assert_eq!((running, health.as_str()), (true, "healthy"));
    assert_eq!(get(port).await.as_deref(), Some("built v2"));
}
