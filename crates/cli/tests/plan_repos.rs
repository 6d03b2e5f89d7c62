//! `slipway plan` on real git repositories made by the tests: what a push builds, exactly.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use slipway_testkit::git::Repo;

const ZERO: &str = "0000000000000000000000000000000000000000";

/// `slipway plan` over a repository of the test kit.
trait Plans {
    fn plan_raw(&self, args: &[&str]) -> (i32, Value, String);
    fn plan(&self, before: &str, after: &str, git_ref: &str) -> Value;
}

impl Plans for Repo {
    fn plan_raw(&self, args: &[&str]) -> (i32, Value, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
            .arg("plan")
            .arg("--repo")
            .arg(self.path())
            .args(["--repository", "acme/shop", "--namespace", "acme"])
            .args(args)
            .env_remove("SLIPWAY_IMAGE_NAMESPACE")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        (
            out.status.code().unwrap_or(-1),
            json,
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    fn plan(&self, before: &str, after: &str, git_ref: &str) -> Value {
        let (code, json, stderr) =
            self.plan_raw(&["--before", before, "--after", after, "--ref", git_ref]);
        assert_eq!(code, 0, "slipway plan failed: {stderr}");
        json
    }
}

fn sha7(sha: &str) -> String {
    format!("sha-{}", &sha[..7])
}

/// The plan's images as (name, tags, reasons, order).
fn summary(plan: &Value) -> Vec<(String, Vec<String>, Vec<String>, u64)> {
    plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let strs = |k: &str| -> Vec<String> {
                i[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            };
            (
                i["name"].as_str().unwrap().to_string(),
                strs("tags"),
                strs("reasons"),
                i["order"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn base_repo() -> (Repo, String) {
    let r = Repo::new();
    r.write("web/Dockerfile", "FROM scratch\n")
        .write("web/index.html", "hi\n")
        .write("web/admin/Dockerfile", "FROM scratch\n")
        .write("web/admin/app.js", "1\n")
        .write("api/Dockerfile", "FROM scratch\n")
        .write("api/main.go", "package main\n")
        .write("README.md", "shop\n");
    let a = r.commit("base");
    (r, a)
}

#[test]
fn nested_contexts_build_every_context_that_holds_the_change() {
    let (r, a) = base_repo();
    r.write("web/admin/app.js", "2\n");
    let b = r.commit("admin");
    let plan = r.plan(&a, &b, "refs/heads/main");
    assert_eq!(
        plan,
        json!({
            "repository": "acme/shop",
            "ref": "refs/heads/main",
            "commit": b,
            "changes": {"source": "repository", "base": a},
            "images": [
                {"name": "acme/web", "context": "web", "dockerfile": "web/Dockerfile", "commit": b,
                 "tags": ["main", "latest", sha7(&b)], "autotest": false,
                 "reasons": ["web/admin/app.js"], "order": 0},
                {"name": "acme/web-admin", "context": "web/admin", "dockerfile": "web/admin/Dockerfile",
                 "commit": b, "tags": ["main", "latest", sha7(&b)], "autotest": false,
                 "reasons": ["web/admin/app.js"], "order": 0},
            ],
            // What the plan leaves out, and why (the push page shows it).
            "skipped": [
                {"name": "acme/api", "context": "api", "reason": "nothing under its context `api` changed"},
            ]
        })
    );
}

#[test]
fn removed_and_renamed_files_count_on_both_sides() {
    let (r, a) = base_repo();
    r.git(&["rm", "-q", "api/main.go"]);
    r.git(&["mv", "web/index.html", "README-web.md"]);
    let b = r.commit("remove and rename");
    let plan = r.plan(&a, &b, "refs/heads/main");
    let tags = s(&["main", "latest", &sha7(&b)]);
    assert_eq!(
        summary(&plan),
        vec![
            ("acme/api".into(), tags.clone(), s(&["api/main.go"]), 0),
            ("acme/web".into(), tags, s(&["web/index.html"]), 0),
        ]
    );
}

#[test]
fn a_deleted_context_is_not_built_and_a_moved_one_is_built_where_it_is_now() {
    let (r, a) = base_repo();
    r.git(&["rm", "-q", "-r", "api"]);
    r.git(&["mv", "web/admin", "admin"]);
    let b = r.commit("delete api, move admin");
    let plan = r.plan(&a, &b, "refs/heads/feature/x");
    let tags = s(&["feature-x", &sha7(&b)]);
    assert_eq!(
        summary(&plan),
        vec![
            (
                "acme/admin".into(),
                tags.clone(),
                s(&["admin/Dockerfile", "admin/app.js"]),
                0
            ),
            (
                "acme/web".into(),
                tags,
                s(&["web/admin/Dockerfile", "web/admin/app.js"]),
                0
            ),
        ]
    );
}

#[test]
fn global_and_ignored_paths() {
    let (r, _) = base_repo();
    r.write(
        "slipway.toml",
        "ignore = [\"**/*.md\", \"docs\"]\nglobal = [\"shared/\"]\n",
    )
    .write("docs/Dockerfile", "FROM scratch\n")
    .write("shared/build.sh", "echo 1\n");
    let a = r.commit("config");

    r.write("web/NOTES.md", "ignored\n")
        .write("docs/x.txt", "y\n");
    let b = r.commit("docs only");
    let plan = r.plan(&a, &b, "refs/heads/main");
    assert_eq!(plan["images"], json!([]));
    assert_eq!(plan["changes"], json!({"source": "repository", "base": a}));

    r.write("shared/build.sh", "echo 2\n");
    let c = r.commit("shared");
    let plan = r.plan(&b, &c, "refs/heads/main");
    let reason = "global path `shared/build.sh` changed (`shared`)";
    assert_eq!(plan["changes"], json!({"source": "all", "reason": reason}));
    let names: Vec<_> = summary(&plan).into_iter().map(|i| (i.0, i.2)).collect();
    // The ignored `docs/` Dockerfile is no image.
    assert_eq!(
        names,
        vec![
            ("acme/api".to_string(), s(&[reason])),
            ("acme/web".to_string(), s(&[reason])),
            ("acme/web-admin".to_string(), s(&[reason])),
        ]
    );
}

#[test]
fn a_new_branch_with_a_merge_from_the_default_branch_builds_only_its_own_changes() {
    let (r, _a) = base_repo();
    r.git(&["checkout", "-q", "-b", "feature/login"]);
    r.write("api/login.go", "package main\n");
    r.commit("login");
    r.git(&["checkout", "-q", "main"]);
    r.write("web/index.html", "new\n");
    let m1 = r.commit("web on main");
    r.git(&["checkout", "-q", "feature/login"]);
    r.git(&["merge", "-q", "--no-edit", "main"]);
    let f2 = r.git(&["rev-parse", "HEAD"]);

    let plan = r.plan(ZERO, &f2, "refs/heads/feature/login");
    assert_eq!(plan["changes"], json!({"source": "repository", "base": m1}));
    assert_eq!(
        summary(&plan),
        vec![(
            "acme/api".into(),
            s(&["feature-login", &sha7(&f2)]),
            s(&["api/login.go"]),
            0
        )]
    );
}

#[test]
fn a_force_push_is_planned_against_the_merge_base() {
    let (r, a) = base_repo();
    r.write("web/index.html", "replaced\n");
    let b = r.commit("web, later replaced");
    r.git(&["reset", "-q", "--hard", &a]);
    r.write("api/main.go", "package main // v2\n");
    let c = r.commit("api");
    let plan = r.plan(&b, &c, "refs/heads/main");
    assert_eq!(plan["changes"], json!({"source": "repository", "base": a}));
    assert_eq!(
        summary(&plan),
        vec![(
            "acme/api".into(),
            s(&["main", "latest", &sha7(&c)]),
            s(&["api/main.go"]),
            0
        )]
    );
}

#[test]
fn annotated_tags_build_the_commit_with_semver_tags() {
    let (r, a) = base_repo();
    r.git(&["tag", "-a", "v1.1.0", "-m", "old"]);
    r.write("api/main.go", "package main // 1.2\n");
    let c = r.commit("1.2");
    r.git(&["tag", "-a", "v1.2.0", "-m", "release 1.2.0"]);
    r.git(&["tag", "-a", "v2.0.0-rc.1", "-m", "rc"]);
    r.git(&["tag", "-a", "web/v3.1.4", "-m", "web only"]);
    let tag_object = r.git(&["rev-parse", "refs/tags/v1.2.0"]);
    assert_ne!(tag_object, c, "an annotated tag is its own object");

    let plan = r.plan(ZERO, &tag_object, "refs/tags/v1.2.0");
    assert_eq!(plan["commit"], json!(c));
    let stable = s(&["1.2.0", "1.2", "1", "latest", &sha7(&c)]);
    let got = summary(&plan);
    assert_eq!(got.len(), 3);
    for (name, tags, reasons, _) in &got {
        assert_eq!(tags, &stable, "{name}");
        assert_eq!(reasons, &s(&["tag `v1.2.0`"]));
        assert_eq!(plan["images"][0]["commit"], json!(c));
    }

    // Not the newest stable version: no `latest`.
    let old = r.git(&["rev-parse", "refs/tags/v1.1.0"]);
    let plan = r.plan(ZERO, &old, "refs/tags/v1.1.0");
    assert_eq!(summary(&plan)[0].1, s(&["1.1.0", "1.1", "1", &sha7(&a)]));

    // A pre-release: only its full version.
    let rc = r.git(&["rev-parse", "refs/tags/v2.0.0-rc.1"]);
    let plan = r.plan(ZERO, &rc, "refs/tags/v2.0.0-rc.1");
    assert_eq!(summary(&plan)[0].1, s(&["2.0.0-rc.1", &sha7(&c)]));

    // A monorepo tag builds only the image it names.
    let web = r.git(&["rev-parse", "refs/tags/web/v3.1.4"]);
    let plan = r.plan(ZERO, &web, "refs/tags/web/v3.1.4");
    assert_eq!(
        summary(&plan),
        vec![(
            "acme/web".into(),
            s(&["3.1.4", "3.1", "3", "latest", &sha7(&c)]),
            s(&["tag `web/v3.1.4` names this image"]),
            0
        )]
    );
}

#[test]
fn a_payload_at_the_commit_cap_is_planned_from_the_repository() {
    let (r, a) = base_repo();
    // 2050 commits by fast-import: the first touches api/, the others web/.
    let mut stream = String::new();
    for i in 0..2050 {
        let (path, body) = if i == 0 {
            ("api/first.txt".to_string(), "first".to_string())
        } else {
            (format!("web/gen/{i}.txt"), format!("{i}"))
        };
        let from = if i == 0 {
            format!("from {a}\n")
        } else {
            String::new()
        };
        stream.push_str(&format!(
            "commit refs/heads/main\ncommitter T <t@example.com> {} +0000\ndata 1\nc\n{from}M 100644 inline {path}\ndata {}\n{body}\n\n",
            1_700_000_000 + i,
            body.len()
        ));
    }
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet", "--force"])
        .current_dir(r.path())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stream.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let after = r.git(&["rev-parse", "refs/heads/main"]);
    assert_eq!(
        r.git(&["rev-list", "--count", &format!("{a}..{after}")]),
        "2050"
    );

    // The job as the listener queues it: GitHub lists the newest 2048 commits, none of api/.
    let job = json!({
        "id": "push-1", "trigger": {"kind": "push"}, "delivery_id": "1",
        "repository": "acme/shop", "clone_url": "https://github.com/acme/shop.git",
        "private": false, "default_branch": "main", "ref": "refs/heads/main",
        "before": a, "after": after, "commit": after,
        "changed_paths": ["web/gen/2049.txt"], "changes_incomplete": "commit_cap"
    });
    let job_file = r.path().join("job.json");
    std::fs::write(&job_file, job.to_string()).unwrap();
    let (code, plan, err) = r.plan_raw(&["--job", job_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let got = summary(&plan);
    let tags = s(&["main", "latest", &sha7(&after)]);
    assert_eq!(
        got[0],
        ("acme/api".into(), tags.clone(), s(&["api/first.txt"]), 0)
    );
    assert_eq!(got[1].0, "acme/web");
    assert_eq!(got[1].2.len(), 11);
    assert_eq!(got[1].2[10], "and 2039 more changed paths");
    assert_eq!(got.len(), 2);
}

#[test]
fn a_parent_is_built_before_its_children() {
    let r = Repo::new();
    r.write("base/Dockerfile", "FROM scratch\nCOPY busybox /bin/\n")
        .write(
            "app/Dockerfile",
            "ARG BASE=acme/base\nFROM ${BASE}:latest AS run\nFROM run\n",
        )
        .write(
            "tool/Dockerfile",
            "FROM --platform=$BUILDPLATFORM docker.io/acme/base AS b\nFROM scratch\n",
        )
        .write("solo/Dockerfile", "FROM alpine:3\n");
    let a = r.commit("images");
    r.write("base/x", "1\n").write("app/y", "1\n");
    let b = r.commit("base and app");
    let plan = r.plan(&a, &b, "refs/heads/main");
    let images = plan["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0]["name"], "acme/base");
    assert_eq!(images[0]["order"], 0);
    assert_eq!(images[0]["children"], json!(["acme/app", "acme/tool"]));
    assert_eq!(images[1]["name"], "acme/app");
    assert_eq!(images[1]["order"], 1);
    assert_eq!(images[1]["parents"], json!(["acme/base"]));

    // A parent's success starts its children: a job naming them plans exactly those.
    let (code, plan, err) = r.plan_raw(&[
        "--before",
        &a,
        "--after",
        &b,
        "--ref",
        "refs/heads/main",
        "--image",
        "acme/tool",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(plan["changes"], json!({"source": "named"}));
    assert_eq!(
        summary(&plan),
        vec![(
            "acme/tool".into(),
            s(&["main", "latest", &sha7(&b)]),
            s(&["the job names `acme/tool`"]),
            0
        )]
    );
}

#[test]
fn names_that_cannot_be_made_valid_are_errors_in_the_plan() {
    let r = Repo::new();
    r.write("My App/Dockerfile", "FROM scratch\n")
        .write("_private/Dockerfile", "FROM scratch\n")
        .write("ok/Dockerfile", "FROM scratch\n");
    let a = r.commit("one");
    r.write("My App/x", "1")
        .write("_private/x", "1")
        .write("ok/x", "1");
    let b = r.commit("two");
    let (code, plan, stderr) =
        r.plan_raw(&["--before", &a, "--after", &b, "--ref", "refs/heads/main"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(summary(&plan).len(), 1);
    assert_eq!(plan["images"][0]["name"], "acme/ok");
    let errors = plan["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["context"], "My App");
    assert_eq!(errors[0]["code"], "invalid_name");
    assert_eq!(errors[1]["context"], "_private");
    assert!(stderr.contains("`My App` is not built"), "{stderr}");
}

#[test]
fn configured_images_and_build_rules() {
    let r = Repo::new();
    r.write(
        "slipway.toml",
        r#"
autotest = true

[[rule]]
source_type = "branch"
source = "main"
tag = "edge"

[[rule]]
source_type = "tag"
source = '/^release-([0-9]+)$/'
tag = 'r{\1}'

[[image]]
context = "svc"
dockerfile = "docker/Dockerfile.prod"
name = "team/service"
build_args = { MODE = "prod" }
target = "runtime"
platforms = ["linux/amd64", "linux/arm64"]
schedule = "rate(7 days)"
deploy = ["production"]
"#,
    )
    .write("svc/docker/Dockerfile.prod", "FROM scratch AS runtime\n")
    .write("svc/src.txt", "x\n");
    let a = r.commit("one");
    r.write("svc/src.txt", "y\n");
    let b = r.commit("two");
    let plan = r.plan(&a, &b, "refs/heads/main");
    assert_eq!(
        plan["images"],
        json!([{
            "name": "acme/team/service", "context": "svc", "dockerfile": "svc/docker/Dockerfile.prod",
            "commit": b, "tags": ["edge", sha7(&b)], "build_args": {"MODE": "prod"},
            "target": "runtime", "platforms": ["linux/amd64", "linux/arm64"], "autotest": true,
            "reasons": ["svc/src.txt"], "order": 0, "schedule": "rate(7 days)", "deploy": ["production"]
        }])
    );
    // No rule for other branches: nothing is built.
    let plan = r.plan(&a, &b, "refs/heads/dev");
    assert_eq!(plan["images"], json!([]));
    // A tag rule with a capture group.
    r.git(&["tag", "release-42"]);
    let plan = r.plan(ZERO, &b, "refs/tags/release-42");
    assert_eq!(plan["images"][0]["tags"], json!(["r42", sha7(&b)]));
}

#[test]
fn errors_say_what_to_fix() {
    let not_repo = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["plan", "--repo"])
        .arg(not_repo.path())
        .args([
            "--before",
            ZERO,
            "--after",
            ZERO,
            "--ref",
            "refs/heads/main",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a git repository"), "{err}");

    let (r, a) = base_repo();
    let unknown = "1234567890123456789012345678901234567890";
    let (code, _, err) = r.plan_raw(&[
        "--before",
        &a,
        "--after",
        unknown,
        "--ref",
        "refs/heads/main",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("--after `{unknown}` is not a commit")),
        "{err}"
    );

    let (code, _, err) = r.plan_raw(&["--before", &a, "--after", &a, "--ref", "main"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("write it in full, e.g. refs/heads/main"),
        "{err}"
    );

    r.write(
        "slipway.toml",
        "[[image]]\ncontext = \"web\"\ncontxt = \"api\"\n",
    );
    let b = r.commit("bad config");
    let (code, _, err) = r.plan_raw(&["--before", &a, "--after", &b, "--ref", "refs/heads/main"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("slipway.toml line 3, key `image[0].contxt`: unknown field `contxt`"),
        "{err}"
    );
    assert!(err.contains("[invalid_config]"), "{err}");
}

#[test]
fn a_scheduled_rebuild_naming_no_image_builds_the_images_with_a_schedule() {
    let (r, _) = base_repo();
    r.write(
        "slipway.toml",
        "[[image]]\ncontext = \"api\"\nschedule = \"rate(7 days)\"\n",
    );
    let head = r.commit("schedule the api image");
    let job = json!({
        "id": "schedule-weekly-1", "trigger": {"kind": "schedule", "name": "weekly"},
        "delivery_id": "weekly-1", "repository": "acme/shop",
        "clone_url": "https://github.com/acme/shop.git", "private": false,
        "default_branch": "main", "ref": "refs/heads/main",
        "before": head, "after": head, "commit": head
    });
    let job_file = r.path().join("job.json");
    std::fs::write(&job_file, job.to_string()).unwrap();
    let (code, plan, err) = r.plan_raw(&["--job", job_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(plan["changes"]["source"], "named", "{plan}");
    let got = summary(&plan);
    assert_eq!(got.len(), 1, "{plan}");
    assert_eq!(got[0].0, "acme/api");
    assert_eq!(got[0].1, s(&["main", "latest", &sha7(&head)]));
}
