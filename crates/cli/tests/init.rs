//! `slipway init` on the three layouts Docker Hub users have (one image at the root, a directory
//! per image, nested contexts with hooks and autotests): the file it writes parses and plans the
//! same images, names and tags as zero configuration; it refuses to overwrite without --force;
//! bad input gets a message saying what to fix. Real git repositories, the real binary.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use slipway_testkit::git::{commit_all, git, init, write};

const ZERO: &str = "0000000000000000000000000000000000000000";

/// A repository with `files` committed on `main`.
fn repo(dir: &Path, files: &[(&str, &str)]) {
    init(dir);
    for (path, text) in files {
        write(dir, path, text);
    }
    commit_all(dir, "images");
}

fn slipway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
        .env_remove("SLIPWAY_IMAGE_NAMESPACE")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The images a new `main` at HEAD plans: (name, context, dockerfile, tags but `sha-…`, autotest).
fn planned(dir: &Path) -> Vec<(String, String, String, Vec<String>, bool)> {
    let d = dir.to_str().unwrap();
    let o = slipway(&[
        "plan",
        "--repo",
        d,
        "--before",
        ZERO,
        "--after",
        "refs/heads/main",
        "--ref",
        "refs/heads/main",
        "--repository",
        "acme/site",
        "--namespace",
        "acme",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let tags = i["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .filter(|t| !t.starts_with("sha-"))
                .collect();
            (
                i["name"].as_str().unwrap().to_string(),
                i["context"].as_str().unwrap().to_string(),
                i["dockerfile"].as_str().unwrap().to_string(),
                tags,
                i["autotest"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// Zero configuration's plan, then `slipway init`, then the plan with the written file
/// committed: returns (zero, with the file, the file's text).
type Planned = Vec<(String, String, String, Vec<String>, bool)>;
fn init_and_plan(dir: &Path) -> (Planned, Planned, String) {
    let zero = planned(dir);
    let o = slipway(&["init", dir.to_str().unwrap(), "--namespace", "acme"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("slipway init: wrote"), "{}", text(&o));
    let written = std::fs::read_to_string(dir.join("slipway.toml")).unwrap();
    git(dir, &["add", "slipway.toml"]);
    git(dir, &["commit", "--quiet", "-m", "slipway init"]);
    (zero, planned(dir), written)
}

/// The plans agree on every image, its name, context, Dockerfile and tags.
fn same_images(zero: &Planned, with_file: &Planned) {
    let strip = |p: &Planned| -> Vec<(String, String, String, Vec<String>)> {
        p.iter()
            .map(|(n, c, d, t, _)| (n.clone(), c.clone(), d.clone(), t.clone()))
            .collect()
    };
    assert_eq!(strip(with_file), strip(zero));
}

#[test]
fn one_image_at_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    repo(
        &dir,
        &[("Dockerfile", "FROM scratch\n"), ("README.md", "x\n")],
    );
    let (zero, with_file, written) = init_and_plan(&dir);
    assert_eq!(zero.len(), 1);
    assert_eq!(zero[0].0, "acme/site");
    same_images(&zero, &with_file);
    assert!(written.contains("context = \".\""), "{written}");
    assert!(written.contains("Docker Hub's default rule: acme/site:latest from `main`"));
    assert!(written.contains("Build rules"), "{written}");
}

#[test]
fn a_directory_per_image() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    repo(
        &dir,
        &[
            ("web/Dockerfile", "FROM acme/base\n"),
            ("api/Dockerfile", "FROM scratch\n"),
            ("base/Dockerfile", "FROM scratch\n"),
        ],
    );
    let (zero, with_file, _) = init_and_plan(&dir);
    assert_eq!(zero.len(), 3);
    same_images(&zero, &with_file);
}

#[test]
fn nested_contexts_with_hooks_and_autotests() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    repo(
        &dir,
        &[
            ("services/web/Dockerfile", "FROM scratch\n"),
            ("services/web/hooks/pre_build", "echo pre\n"),
            ("services/web/hooks/post_push", "echo post\n"),
            (
                "services/web/docker-compose.test.yml",
                "services:\n  sut:\n    build: .\n    command: ./run_tests.sh\n",
            ),
            ("tools/db/migrate/Dockerfile", "FROM scratch\n"),
            (
                "tools/db/migrate/docker-compose.test.yml",
                "services:\n  db:\n    image: postgres\n",
            ),
        ],
    );
    let (zero, with_file, written) = init_and_plan(&dir);
    assert_eq!(zero.len(), 2);
    same_images(&zero, &with_file);
    assert!(
        written.contains("# hooks/ beside the Dockerfile: pre_build, post_push."),
        "{written}"
    );
    // The sut autotest is on in the written file; the file without `sut` is only mentioned.
    let web = with_file.iter().find(|i| i.1 == "services/web").unwrap();
    assert!(web.4, "{written}");
    let migrate = with_file
        .iter()
        .find(|i| i.1 == "tools/db/migrate")
        .unwrap();
    assert!(!migrate.4);
    assert!(written.contains(
        "# tools/db/migrate/docker-compose.test.yml has no `sut` service: autotest needs one"
    ));
}

#[test]
fn an_existing_file_is_kept_without_force_and_bad_input_says_what_to_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    repo(
        &dir,
        &[
            ("Dockerfile", "FROM scratch\n"),
            ("slipway.toml", "# mine\n"),
        ],
    );
    let d = dir.to_str().unwrap();
    let o = slipway(&["init", d]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("slipway.toml already exists: pass --force to overwrite it"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("slipway.toml")).unwrap(),
        "# mine\n"
    );
    let o = slipway(&["init", d, "--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        std::fs::read_to_string(dir.join("slipway.toml"))
            .unwrap()
            .contains("[[image]]")
    );

    // Not a repository.
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let o = slipway(&["init", plain.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("is not a git repository"), "{}", text(&o));

    // A repository without any Dockerfile.
    let empty = tmp.path().join("empty");
    repo(&empty, &[("README.md", "x\n")]);
    let o = slipway(&["init", empty.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no Dockerfile at HEAD"), "{}", text(&o));
    assert!(!empty.join("slipway.toml").exists());

    // A repository without a commit.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    git(&fresh, &["init", "--quiet"]);
    let o = slipway(&["init", fresh.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("has no commit yet"), "{}", text(&o));
}
