//! README sync (issue 18) with the shipped buildspec on the real engine and the htpasswd registry
//! of `tests/services.sh`: after a real build and push, a Docker Hub image's README becomes its
//! repository's description through Docker Hub's API (here a stand-in on 127.0.0.1 that
//! implements `POST /v2/users/login` and `PATCH /v2/repositories/{namespace}/{repository}/`,
//! reached through `SLIPWAY_DOCKERHUB_API`; the image is pushed to the test registry and made a
//! Docker Hub image for the sync by `readme_sync = "dockerhub"`); a refused login is one log line
//! and fails no build; no credential reaches the log; on any other registry the README's first
//! line is the image's `org.opencontainers.image.description` label and annotation.
//!
//! Needs `source tests/services.sh start`; fails loudly without it.

mod buildkit_support;

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{patch, post};
use buildkit_support::*;
use serde_json::{Value, json};
use slipway_core::readme::short_description;
use slipway_testkit::git::write;
use slipway_testkit::registry::{Registry, registry, remove_images};

const DOCKERFILE: &str = "FROM scratch\nCOPY unique.txt /unique.txt\n";
const DESCRIPTION_KEY: &str = "org.opencontainers.image.description";
/// The token the stand-in hands out: a JWT's shape, and a string the log must never hold.
const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzbGlwd2F5LXRlc3QifQ.c2VjcmV0LXRva2VuLXNpZw";

/// What the stand-in for Docker Hub's API saw.
#[derive(Default)]
struct Hub {
    /// Refuse every login (HTTP 401).
    refuse: bool,
    user: String,
    password: String,
    logins: usize,
    /// `(namespace/repository, body)` of every accepted PATCH.
    updates: Vec<(String, Value)>,
    /// PATCHes refused for their `Authorization` header.
    unauthorized: usize,
}

/// Docker Hub's API on 127.0.0.1: its base URL and what it saw.
fn hub(r: &Registry, refuse: bool) -> (String, Arc<Mutex<Hub>>) {
    let state = Arc::new(Mutex::new(Hub {
        refuse,
        user: r.user.clone(),
        password: r.password.clone(),
        ..Hub::default()
    }));
    let app = axum::Router::new()
        .route("/v2/users/login", post(login))
        .route("/v2/repositories/{namespace}/{repository}/", patch(update))
        .with_state(state.clone());
    let port = slipway_testkit::stand_in::serve(app);
    (format!("http://127.0.0.1:{port}"), state)
}

/// `POST /v2/users/login`: `{"username", "password"}` → `{"token"}`.
async fn login(
    State(s): State<Arc<Mutex<Hub>>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut h = s.lock().unwrap();
    h.logins += 1;
    let ok =
        !h.refuse && body["username"] == h.user.as_str() && body["password"] == h.password.as_str();
    if ok {
        (StatusCode::OK, Json(json!({"token": TOKEN})))
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Incorrect authentication credentials"})),
        )
    }
}

/// `PATCH /v2/repositories/{namespace}/{repository}/` with `Authorization: Bearer <token>` (or
/// the older `JWT <token>`).
async fn update(
    State(s): State<Arc<Mutex<Hub>>>,
    UrlPath((namespace, repository)): UrlPath<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut h = s.lock().unwrap();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {TOKEN}") && auth != format!("JWT {TOKEN}") {
        h.unauthorized += 1;
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Authentication credentials were not provided."})),
        );
    }
    let answer = json!({
        "namespace": namespace,
        "name": repository,
        "description": body["description"],
        "full_description": body["full_description"],
    });
    h.updates.push((format!("{namespace}/{repository}"), body));
    (StatusCode::OK, Json(answer))
}

/// A repository with the context `app` (Dockerfile, a unique file, `README.md` when given).
fn app(r: &Registry, dir: &Path, label: &str, readme: Option<&str>) -> App {
    buildkit_support::app(r, dir, label, label, |repo| {
        write(repo, "app/Dockerfile", DOCKERFILE);
        if let Some(text) = readme {
            write(repo, "app/README.md", text);
        }
    })
}

fn image_json(a: &App, platforms: &[&str], readme_sync: Option<&str>) -> Value {
    let mut v = json!({
        "name": a.name,
        "context": "app",
        "dockerfile": "app/Dockerfile",
        "commit": a.commit,
        "tags": ["main"],
        "platforms": platforms,
        "reasons": ["test"],
        "order": 0,
    });
    if let Some(s) = readme_sync {
        v["readme_sync"] = json!(s);
    }
    v
}

/// No credential in the log: not the registry password, not the API's token.
fn assert_no_secret(log: &str, r: &Registry) {
    assert!(!log.contains(&r.password), "the password is in the log");
    assert!(!log.contains(TOKEN), "the token is in the log");
    assert!(
        !log.contains(&TOKEN[..20]),
        "part of the token is in the log"
    );
}

#[test]
fn a_docker_hub_images_readme_becomes_its_description_after_the_push() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let (api, seen) = hub(&r, false);
    // Longer than Docker Hub keeps: cut at 25,000 bytes, and the log says so.
    let mut readme =
        String::from("\n## Web app: it's \"quoted\" $(touch /tmp/slipway-readme-pwned) ##\n\n");
    while readme.len() < 30_000 {
        readme
            .push_str("Some text with é and ü, a `code` span and [a link](https://example.com).\n");
    }
    let a = app(&r, tmp.path(), "readme-hub", Some(&readme));
    let b = slipway_build_with(
        tmp.path(),
        &r,
        "slipway-test",
        &a.repo,
        &plan(&a.commit, vec![image_json(&a, &[], Some("dockerhub"))]),
        None,
        &[("SLIPWAY_DOCKERHUB_API", &api)],
    );
    assert!(b.ok(), "{}", b.log);
    assert!(r.manifest(&a.path, "main").is_some(), "not pushed");
    let h = seen.lock().unwrap();
    assert_eq!(h.logins, 1, "{}", b.log);
    assert_eq!(h.unauthorized, 0, "{}", b.log);
    assert_eq!(h.updates.len(), 1, "{}", b.log);
    let (repo, body) = &h.updates[0];
    assert_eq!(repo, &a.path);
    let short = "Web app: it's \"quoted\" $(touch /tmp/slipway-readme-pwned)";
    assert_eq!(short_description(&readme), short);
    assert_eq!(body["description"], short, "{}", b.log);
    let full = body["full_description"].as_str().unwrap();
    assert!(
        full.len() <= 25_000 && full.len() > 24_990,
        "{}",
        full.len()
    );
    assert!(readme.starts_with(full));
    assert!(
        b.log.contains(&format!(
            "slipway: README sync: app/README.md is {} bytes; Docker Hub keeps 25000: the description is truncated",
            readme.len()
        )),
        "{}",
        b.log
    );
    assert!(
        b.log.contains(&format!(
            "slipway: README synced: app/README.md is the description of {} on Docker Hub",
            a.path
        )),
        "{}",
        b.log
    );
    // The Hub API's description, not the annotation.
    let (_, manifest) = r.manifest(&a.path, "main").unwrap();
    assert!(
        !manifest.to_string().contains(DESCRIPTION_KEY),
        "{manifest}"
    );
    assert!(!Path::new("/tmp/slipway-readme-pwned").exists());
    assert_no_secret(&b.log, &r);
    remove_images(&[format!("{}:main", a.name)]);
}

#[test]
fn a_refused_login_is_logged_and_fails_no_build() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let (api, seen) = hub(&r, true);
    let a = app(&r, tmp.path(), "readme-401", Some("# Refused\n"));
    let b = slipway_build_with(
        tmp.path(),
        &r,
        "slipway-test",
        &a.repo,
        &plan(&a.commit, vec![image_json(&a, &[], Some("dockerhub"))]),
        None,
        &[("SLIPWAY_DOCKERHUB_API", &api)],
    );
    assert!(b.ok(), "{}", b.log);
    assert_eq!(b.result["builds"][0]["status"], "SUCCEEDED", "{}", b.result);
    assert!(r.manifest(&a.path, "main").is_some(), "not pushed");
    let h = seen.lock().unwrap();
    assert_eq!(h.logins, 1, "{}", b.log);
    assert!(h.updates.is_empty());
    assert!(
        b.log.contains(&format!(
            "slipway: README sync failed: Docker Hub's API at {api} refused the login of {} (HTTP 401): check the registry credential parameters",
            r.user
        )),
        "{}",
        b.log
    );
    assert!(!b.log.contains("slipway: README synced"), "{}", b.log);
    assert!(
        b.log.contains(&format!(
            "slipway: {} built and pushed at {}",
            a.name, a.commit
        )),
        "{}",
        b.log
    );
    assert_no_secret(&b.log, &r);
    remove_images(&[format!("{}:main", a.name)]);
}

/// `readme_sync = "dockerhub"` on another registry, with no Hub API set on the builder: that
/// registry's credentials are not sent to hub.docker.com; the build still pushes.
#[test]
fn another_registrys_credentials_never_go_to_docker_hub_unless_the_builder_says_where() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let a = app(&r, tmp.path(), "readme-nohub", Some("# Kept\n"));
    let b = slipway_build_with(
        tmp.path(),
        &r,
        "slipway-test",
        &a.repo,
        &plan(&a.commit, vec![image_json(&a, &[], Some("dockerhub"))]),
        None,
        &[("SLIPWAY_DOCKERHUB_API", "")],
    );
    assert!(b.ok(), "{}", b.log);
    assert!(r.manifest(&a.path, "main").is_some(), "not pushed");
    assert!(
        b.log.contains(&format!(
            "slipway: README sync failed: {} is not Docker Hub and SLIPWAY_DOCKERHUB_API is not set",
            r.host
        )),
        "{}",
        b.log
    );
    assert!(
        !b.log.contains("hub.docker.com did not answer"),
        "{}",
        b.log
    );
    assert_no_secret(&b.log, &r);
    remove_images(&[format!("{}:main", a.name)]);
}

/// The description in a manifest's annotations and its config's labels.
fn description_of(r: &Registry, path: &str, manifest: &Value) -> (Option<String>, Option<String>) {
    let annotation = manifest["annotations"][DESCRIPTION_KEY]
        .as_str()
        .map(str::to_string);
    let config = r.blob(path, manifest["config"]["digest"].as_str().unwrap());
    let label = config["config"]["Labels"][DESCRIPTION_KEY]
        .as_str()
        .map(str::to_string);
    (annotation, label)
}

#[test]
fn another_registrys_image_carries_the_readmes_first_line_as_its_description() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    // Never called: the image is not a Docker Hub image.
    let (api, seen) = hub(&r, false);
    let readme = "\n\n# Annotated *image* #\n\nThe rest of the README.\n";
    let short = short_description(readme);
    assert_eq!(short, "Annotated *image*");
    let a = app(&r, tmp.path(), "readme-annotation", Some(readme));
    let b = slipway_build_with(
        tmp.path(),
        &r,
        "slipway-test",
        &a.repo,
        &plan(
            &a.commit,
            vec![image_json(&a, &["linux/amd64", "linux/arm64"], None)],
        ),
        None,
        &[("SLIPWAY_DOCKERHUB_API", &api)],
    );
    assert!(b.ok(), "{}", b.log);
    assert!(
        b.log.contains(
            "slipway: README sync: the first line of app/README.md is the image's org.opencontainers.image.description"
        ),
        "{}",
        b.log
    );
    let (_, index, entries) = r.list_entries(&a.path, "main");
    assert_eq!(
        index["annotations"][DESCRIPTION_KEY].as_str(),
        Some(short.as_str()),
        "{index}"
    );
    assert_eq!(entries.len(), 2);
    for e in &entries {
        let (_, m) = r.manifest(&a.path, &e.digest).unwrap();
        let (annotation, label) = description_of(&r, &a.path, &m);
        assert_eq!(annotation.as_deref(), Some(short.as_str()), "{m}");
        assert_eq!(label.as_deref(), Some(short.as_str()), "{}", e.platform);
    }
    let h = seen.lock().unwrap();
    assert_eq!((h.logins, h.updates.len()), (0, 0));
    assert_no_secret(&b.log, &r);
    remove_images(&[format!("{}:main", a.name)]);
}

#[test]
fn an_image_without_a_readme_is_built_and_says_so() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let a = app(&r, tmp.path(), "readme-none", None);
    let b = slipway_build(
        tmp.path(),
        &r,
        "slipway-test",
        &a.repo,
        &plan(&a.commit, vec![image_json(&a, &[], None)]),
        None,
    );
    assert!(b.ok(), "{}", b.log);
    assert!(
        b.log
            .contains("slipway: README sync skipped: no README at app/README.md"),
        "{}",
        b.log
    );
    let (_, m) = r.manifest(&a.path, "main").unwrap();
    if m["config"].is_object() {
        let (annotation, label) = description_of(&r, &a.path, &m);
        assert_eq!((annotation, label), (None, None));
    }
    remove_images(&[format!("{}:main", a.name)]);
}
