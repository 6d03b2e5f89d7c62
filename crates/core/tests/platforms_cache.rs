//! `slipway.toml`'s `platforms`, `emulate` and `attestations` (defaults and per image), through
//! the planner to the build's variables, and the registry cache references a build reads and
//! writes.

use std::collections::BTreeMap;

use slipway_core::Job;
use slipway_core::build_env::{self, RegistrySettings};
use slipway_core::plan::{Config, PlanInput, PlannedImage, plan};

const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

fn planned(toml: &str, git_ref: &str) -> Vec<PlannedImage> {
    let config = Config::parse(toml).unwrap();
    let files: Vec<String> = ["web/Dockerfile", "api/Dockerfile", "tool/Dockerfile"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let dockerfiles: BTreeMap<String, String> = files
        .iter()
        .map(|f| (f.clone(), "FROM scratch\n".to_string()))
        .collect();
    let p = plan(&PlanInput {
        repository: "acme/site",
        git_ref,
        default_branch: "main",
        commit: SHA,
        files: &files,
        config: &config,
        dockerfiles: &dockerfiles,
        changes: slipway_core::plan::ChangeSource::All {
            reason: "test".into(),
        },
        changed_paths: &[],
        repo_tags: &[],
        only: &[],
        namespace: "ghcr.io/acme",
    })
    .unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    p.images
}

fn image<'a>(images: &'a [PlannedImage], name: &str) -> &'a PlannedImage {
    images.iter().find(|i| i.name == name).unwrap()
}

const FILE: &str = r#"
platforms = ["linux/amd64", "linux/arm64"]
attestations = ["provenance"]

[[image]]
context = "web"

[[image]]
context = "api"
platforms = []
attestations = []

[[image]]
context = "tool"
platforms = ["linux/amd64", "linux/arm/v7"]
emulate = true
"#;

#[test]
fn the_default_platforms_apply_unless_an_image_says_otherwise() {
    let images = planned(FILE, "refs/heads/main");
    let web = image(&images, "ghcr.io/acme/web");
    assert_eq!(web.platforms, ["linux/amd64", "linux/arm64"]);
    assert_eq!(web.attestations, ["provenance"]);
    assert!(!web.emulate);
    let api = image(&images, "ghcr.io/acme/api");
    assert!(
        api.platforms.is_empty(),
        "`platforms = []`: the builder's own"
    );
    assert!(api.attestations.is_empty());
    let tool = image(&images, "ghcr.io/acme/tool");
    assert_eq!(tool.platforms, ["linux/amd64", "linux/arm/v7"]);
    assert!(tool.emulate);

    // Without the keys: the builder's platform, no attestation, no emulation.
    let bare = planned("", "refs/heads/main");
    assert!(
        bare.iter()
            .all(|i| i.platforms.is_empty() && i.attestations.is_empty() && !i.emulate)
    );
}

#[test]
fn sboms_unknown_attestations_and_repeated_platforms_are_refused_with_the_key() {
    let e = Config::parse("attestations = [\"provenance\", \"sbom\"]\n").unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (1, "attestations[1]"), "{e}");
    assert!(e.message.contains("scanner image"), "{e}");
    let e =
        Config::parse("[[image]]\ncontext = \"a\"\nattestations = [\"signature\"]\n").unwrap_err();
    assert_eq!(e.key, "image[0].attestations[0]", "{e}");
    let e = Config::parse("platforms = [\"linux/arm64\", \"linux/arm64\"]\n").unwrap_err();
    assert_eq!(e.key, "platforms[1]", "{e}");
    assert!(e.message.contains("twice"), "{e}");
    let e = Config::parse("[[image]]\ncontext = \"a\"\nemulate = \"yes\"\n").unwrap_err();
    assert_eq!(e.key, "image[0].emulate", "{e}");
}

fn job(git_ref: &str) -> Job {
    serde_json::from_value(serde_json::json!({
        "id": "push-1",
        "trigger": {"kind": "push"},
        "delivery_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "repository": "acme/site",
        "clone_url": "https://github.com/acme/site.git",
        "private": false,
        "default_branch": "main",
        "ref": git_ref,
        "before": "0".repeat(40),
        "after": SHA,
        "commit": SHA,
    }))
    .unwrap()
}

fn var(vars: &[build_env::BuildVar], name: &str) -> String {
    vars.iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .value
        .clone()
}

#[test]
fn the_build_gets_platforms_attestations_and_its_cache_references() {
    let images = planned(FILE, "refs/heads/feature/login");
    let web = image(&images, "ghcr.io/acme/web");
    let vars = build_env::build_env(
        &job("refs/heads/feature/login"),
        web,
        &RegistrySettings::default(),
    )
    .unwrap();
    assert_eq!(
        var(&vars, build_env::SLIPWAY_PLATFORMS),
        "linux/amd64,linux/arm64"
    );
    assert_eq!(var(&vars, build_env::SLIPWAY_ATTESTATIONS), "provenance");
    assert_eq!(var(&vars, build_env::SLIPWAY_EMULATE), "false");
    assert_eq!(
        var(&vars, build_env::SLIPWAY_CACHE_TO),
        "ghcr.io/acme/web:buildcache-feature-login"
    );
    assert_eq!(
        var(&vars, build_env::SLIPWAY_CACHE_FROM),
        "ghcr.io/acme/web:buildcache-feature-login ghcr.io/acme/web:buildcache-main"
    );

    // A version tag: the first build of a tag reads the cache of the default branch.
    let images = planned(FILE, "refs/tags/v1.2.3");
    let tool = image(&images, "ghcr.io/acme/tool");
    let vars =
        build_env::build_env(&job("refs/tags/v1.2.3"), tool, &RegistrySettings::default()).unwrap();
    assert_eq!(var(&vars, build_env::SLIPWAY_CACHE_TO), "");
    assert_eq!(
        var(&vars, build_env::SLIPWAY_CACHE_FROM),
        "ghcr.io/acme/tool:buildcache-main"
    );
    assert_eq!(var(&vars, build_env::SLIPWAY_EMULATE), "true");
}

#[test]
fn an_image_tag_that_could_overwrite_a_cache_is_refused() {
    let images = planned("", "refs/heads/buildcache-main");
    let web = image(&images, "ghcr.io/acme/web");
    assert!(web.tags.iter().any(|t| t == "buildcache-main"));
    let err = build_env::build_env(
        &job("refs/heads/buildcache-main"),
        web,
        &RegistrySettings::default(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "build_env_invalid");
    assert!(
        err.to_string().contains("reserved for the registry cache"),
        "{err}"
    );

    let mut web = web.clone();
    web.attestations = vec!["sbom".into()];
    web.tags = vec!["main".into()];
    let err = build_env::build_env(&job("refs/heads/main"), &web, &RegistrySettings::default())
        .unwrap_err();
    assert!(err.to_string().contains("attestation"), "{err}");
}
