//! `slipway init`'s decision, pure: from the images zero configuration finds in a repository, the
//! Docker Hub hooks and autotests beside them, a commented `slipway.toml` that plans the same
//! images and says what Docker Hub kept where no repository can see it (its web UI).

use std::collections::BTreeSet;

use super::planner::ImageSpec;

/// Docker Hub's hook phases, in the order a build runs them (`hooks/<name>` beside the Dockerfile).
pub const HOOK_NAMES: [&str; 10] = [
    "post_checkout",
    "pre_build",
    "build",
    "post_build",
    "pre_test",
    "test",
    "post_test",
    "pre_push",
    "push",
    "post_push",
];

/// The file Docker Hub's autotest runs, in the build context.
pub const AUTOTEST_FILE: &str = "docker-compose.test.yml";

/// What the context's `docker-compose.test.yml` is, for autotest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Autotest {
    /// No such file.
    None,
    /// The file has a `sut` service: Docker Hub's autotest.
    Sut,
    /// The file exists but has no `sut` service (or is not a compose file).
    NoSut,
}

/// One image found, with what sits beside it.
#[derive(Debug, Clone)]
pub struct InitImage {
    /// The full image name zero configuration gives it, or why it has none.
    pub name: Result<String, String>,
    pub context: String,
    /// Relative to the repository root.
    pub dockerfile: String,
    /// The hook files present, in [`HOOK_NAMES`] order.
    pub hooks: Vec<String>,
    pub autotest: Autotest,
}

/// The hooks present beside `dockerfile` in the tree `files`, in phase order.
pub fn hooks_beside(files: &[String], dockerfile: &str) -> Vec<String> {
    let dir = dockerfile.rsplit_once('/').map(|(d, _)| d);
    let present: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    HOOK_NAMES
        .iter()
        .filter(|h| {
            let path = match dir {
                Some(d) => format!("{d}/hooks/{h}"),
                None => format!("hooks/{h}"),
            };
            present.contains(path.as_str())
        })
        .map(|h| h.to_string())
        .collect()
}

/// The path of the autotest file of a context.
pub fn autotest_path(context: &str) -> String {
    if context == "." {
        AUTOTEST_FILE.to_string()
    } else {
        format!("{context}/{AUTOTEST_FILE}")
    }
}

/// What `slipway init` read.
#[derive(Debug, Clone)]
pub struct InitInput<'a> {
    /// `owner/name`.
    pub repository: &'a str,
    pub default_branch: &'a str,
    /// The commit read (for the header).
    pub commit: &'a str,
    pub images: &'a [InitImage],
}

/// [`InitImage`]s from what zero-configuration discovery found.
pub fn images_from_specs(
    specs: &[ImageSpec<'_>],
    files: &[String],
    autotest: impl Fn(&str) -> Autotest,
) -> Vec<InitImage> {
    specs
        .iter()
        .map(|s| InitImage {
            name: s.name.clone(),
            context: s.context.clone(),
            dockerfile: s.dockerfile.clone(),
            hooks: hooks_beside(files, &s.dockerfile),
            autotest: autotest(&s.context),
        })
        .collect()
}

/// A TOML basic string (quotes and escapes), so that any path is written as data.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The commented `slipway.toml`. Listing every image zero configuration finds, with no rule and
/// the default tags, keeps the plan identical; everything Docker Hub-specific is a comment.
pub fn render(input: &InitInput<'_>) -> String {
    let branch = input.default_branch;
    let short = &input.commit[..input.commit.len().min(7)];
    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    line(&format!(
        "# slipway.toml for {}, written by `slipway init` from commit {short}.",
        input.repository
    ));
    line(
        "# Every key: docs/configuration.md. Moving from Docker Hub: docs/migrating-from-docker-hub.md.",
    );
    line("#");
    line(&format!(
        "# It lists the {} image(s) zero configuration finds, so it builds exactly what no file would.",
        input.images.len()
    ));
    line(
        "# With images listed, discovery is off: a new Dockerfile is built once it is listed below",
    );
    line("# (or uncomment `discover = true`).");
    line("# discover = true");
    line("");
    line("# What Docker Hub kept in its web UI, where `slipway init` cannot see it. Copy it here:");
    line(
        "# - Build rules (source type, source, Docker tag, autobuild): `[[rule]]` tables below (all",
    );
    line(
        "#   images) or inside an `[[image]]` (that image only). A repository with rules builds only the",
    );
    line("#   refs a rule matches, with the rules' tags (plus `sha-<commit>`).");
    line(
        "# - Build rules' \"Dockerfile location\" and \"Build context\": `dockerfile` and `context` below.",
    );
    line("# - Build environment variables: `build_args` of each image (public: no secrets there).");
    line(
        "# - Autotest (off, internal pull requests, internal and external): `autotest` per image below;",
    );
    line("#   slipway does not build pull requests yet.");
    line("# - Repository links (rebuild when a base image updates): automatic for images of this");
    line("#   repository (`FROM`); for others, `schedule` per image (a periodic rebuild).");
    line("# - The Docker Hub namespace: the deployment's image namespace (`namespace` in serve's");
    line(
        "#   settings, the stack's `ImageNamespace`), not this file; `name` below renames one image.",
    );
    line("# - Build caching: always on in slipway (a registry cache per image and branch).");
    line("");
    line(
        "# Tags: slipway's defaults. A push to the default branch gets `<branch>`, `sha-<commit>` and",
    );
    line("# `latest`; a version tag v1.2.3 gets `1.2.3`, `1.2` and `1` (and `latest` if newest).");
    line("[tags]");
    line("sha = true");
    line("branch = true");
    line("semver = true");
    line("latest = \"auto\"");
    line("");
    line(
        "# Docker Hub's default build rule (branch `master`, or the default branch, to `latest`) alone.",
    );
    line("# Uncomment to get Docker Hub's tags exactly instead of the defaults above:");
    line("# [[rule]]");
    line("# source_type = \"branch\"");
    line(&format!("# source = {}", quoted(branch)));
    line("# tag = \"latest\"");
    for im in input.images {
        line("");
        line("[[image]]");
        match &im.name {
            Ok(name) => {
                line(&format!("# {name}, from {}.", im.dockerfile));
                line(&format!(
                    "# Docker Hub's default rule: {name}:latest from `{branch}`. slipway: {name}:latest, :{}, :sha-<commit> from `{branch}`.",
                    super::naming::sanitize_tag(branch).unwrap_or_else(|| branch.to_string())
                ));
            }
            Err(why) => {
                line(&format!(
                    "# {} has no valid image name: {why}",
                    im.dockerfile
                ));
                line("# name = \"...\"");
            }
        }
        if !im.hooks.is_empty() {
            line(&format!(
                "# hooks/ beside the Dockerfile: {}. slipway runs them as Docker Hub does (docs/configuration.md, \"Docker Hub hooks\").",
                im.hooks.join(", ")
            ));
        }
        line(&format!("context = {}", quoted(&im.context)));
        line("# dockerfile = \"Dockerfile\" (relative to the context)");
        match im.autotest {
            Autotest::Sut => {
                line(&format!(
                    "# {} with a `sut` service found: Docker Hub ran it if Autotest was on in its UI.",
                    autotest_path(&im.context)
                ));
                line("autotest = true");
            }
            Autotest::NoSut => {
                line(&format!(
                    "# {} has no `sut` service: autotest needs one (Docker Hub's convention).",
                    autotest_path(&im.context)
                ));
                line("# autotest = true");
            }
            Autotest::None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Config;
    use crate::plan::planner::discover;

    fn files(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn hooks_are_found_beside_the_dockerfile_in_phase_order() {
        let f = files(&[
            "web/Dockerfile",
            "web/hooks/post_push",
            "web/hooks/build",
            "web/hooks/README",
            "hooks/pre_build",
        ]);
        assert_eq!(hooks_beside(&f, "web/Dockerfile"), ["build", "post_push"]);
        assert_eq!(hooks_beside(&f, "Dockerfile"), ["pre_build"]);
    }

    #[test]
    fn hostile_paths_are_written_as_toml_data() {
        let images = [InitImage {
            name: Err("no name".into()),
            context: "a \"b\" $(x) = 1".into(),
            dockerfile: "a \"b\" $(x) = 1/Dockerfile".into(),
            hooks: vec![],
            autotest: Autotest::None,
        }];
        let text = render(&InitInput {
            repository: "acme/site",
            default_branch: "main",
            commit: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            images: &images,
        });
        let config = Config::parse(&text).unwrap();
        assert_eq!(config.images[0].context, "a \"b\" $(x) = 1");
    }

    #[test]
    fn the_written_file_lists_what_zero_configuration_discovers() {
        let f = files(&["Dockerfile", "api/Dockerfile", "api/hooks/pre_build"]);
        let zero = Config::zero();
        let specs = discover(&zero, &f, "acme", "acme/site");
        let images = images_from_specs(&specs, &f, |c| {
            if c == "api" {
                Autotest::Sut
            } else {
                Autotest::None
            }
        });
        let text = render(&InitInput {
            repository: "acme/site",
            default_branch: "main",
            commit: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            images: &images,
        });
        let config = Config::parse(&text).unwrap();
        let written: Vec<_> = discover(&config, &f, "acme", "acme/site")
            .into_iter()
            .map(|s| (s.name, s.context, s.dockerfile))
            .collect();
        let expected: Vec<_> = specs
            .into_iter()
            .map(|s| (s.name, s.context, s.dockerfile))
            .collect();
        assert_eq!(written, expected);
        assert!(text.contains("# hooks/ beside the Dockerfile: pre_build."));
        assert_eq!(config.images[1].autotest, Some(true));
    }
}
