//! The pure planner: from the tree at the commit, what changed and the configuration, the images
//! to build, with their tags, reasons and order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::config::{BuildRule, Config, ImageConfig, Latest, RuleSource, SourceType};
use super::dockerfile::base_images;
use super::naming::{
    full_name, image_name, normalize_reference, parse_version, sanitize_tag, semver_tags,
};
use super::{ChangeSource, Plan, PlanError, PlanProblem, PlannedImage, SkippedImage};
use crate::refs::{RefKind, split_ref};

/// At most this many changed paths are listed as an image's reasons; the rest are counted.
pub const MAX_REASONS: usize = 10;

/// Everything the pure planner needs, gathered by [`super::plan_job`] (or a test, or a bench).
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// `owner/name`.
    pub repository: &'a str,
    /// `refs/heads/x` or `refs/tags/x`.
    pub git_ref: &'a str,
    pub default_branch: &'a str,
    /// The commit every image is built at (already peeled).
    pub commit: &'a str,
    /// Every file path of the tree at `commit`.
    pub files: &'a [String],
    pub config: &'a Config,
    /// Content of the Dockerfiles, by path (those absent are treated as having no `FROM`).
    pub dockerfiles: &'a BTreeMap<String, String>,
    /// How the changes were learned. `Repository` and `Payload` use `changed_paths`.
    pub changes: ChangeSource,
    pub changed_paths: &'a [String],
    /// The repository's tag names, to decide which version is the newest.
    pub repo_tags: &'a [String],
    /// When not empty, plan exactly these images (by name).
    pub only: &'a [String],
    /// e.g. `acme`, `ghcr.io/acme`.
    pub namespace: &'a str,
}

/// An image of the repository at the commit, planned or not.
#[derive(Debug, Clone)]
pub struct ImageSpec<'c> {
    /// `Err` says why the name cannot be made valid.
    pub name: Result<String, String>,
    pub context: String,
    pub dockerfile: String,
    pub config: Option<&'c ImageConfig>,
}

/// The images at the commit: those `slipway.toml` lists whose Dockerfile exists, then (when
/// discovery is on) every other directory holding a `Dockerfile`, outside ignored paths.
pub fn discover<'c>(
    config: &'c Config,
    files: &[String],
    namespace: &str,
    repository: &str,
) -> Vec<ImageSpec<'c>> {
    let present: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    let mut specs = Vec::new();
    let mut listed: BTreeSet<&str> = BTreeSet::new();
    for im in &config.images {
        listed.insert(im.dockerfile.as_str());
        if !present.contains(im.dockerfile.as_str()) {
            tracing::info!(context = %im.context, dockerfile = %im.dockerfile, "listed image skipped: its Dockerfile does not exist at the commit");
            continue;
        }
        let name = match &im.name {
            Some(n) => full_name(namespace, n),
            None => image_name(namespace, repository, &im.context),
        };
        specs.push(ImageSpec {
            name,
            context: im.context.clone(),
            dockerfile: im.dockerfile.clone(),
            config: Some(im),
        });
    }
    if config.discover {
        for f in files {
            let (dir, base) = match f.rsplit_once('/') {
                Some((d, b)) => (d, b),
                None => (".", f.as_str()),
            };
            if base != "Dockerfile" || listed.contains(f.as_str()) {
                continue;
            }
            if config.ignore.matching(f).is_some() {
                continue;
            }
            specs.push(ImageSpec {
                name: image_name(namespace, repository, dir),
                context: dir.to_string(),
                dockerfile: f.clone(),
                config: None,
            });
        }
    }
    specs
}

fn in_context(path: &str, spec: &ImageSpec<'_>) -> bool {
    spec.context == "."
        || path == spec.dockerfile
        || path
            .strip_prefix(spec.context.as_str())
            .is_some_and(|r| r.starts_with('/'))
}

/// Plans the push. Pure: everything comes from `input`.
pub fn plan(input: &PlanInput<'_>) -> Result<Plan, PlanError> {
    let cfg = input.config;
    let specs = discover(cfg, input.files, input.namespace, input.repository);
    let mut problems = Vec::new();

    // Two contexts that map to one name (`a-b` and `a/b`) would overwrite each other's images.
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    let mut valid = vec![true; specs.len()];
    for (i, s) in specs.iter().enumerate() {
        if let Ok(n) = &s.name
            && let Some(&first) = by_name.get(n.as_str())
        {
            valid[i] = false;
            problems.push(PlanProblem {
                context: s.context.clone(),
                code: "duplicate_name".into(),
                message: format!(
                    "`{}` and `{}` both make the image name `{n}`; give one a `name` in slipway.toml",
                    specs[first].context, s.context
                ),
            });
        } else if let Ok(n) = &s.name {
            by_name.insert(n.as_str(), i);
        }
    }

    // Parents: the images of this repository a Dockerfile is built FROM.
    let normalized: Vec<Option<String>> = specs
        .iter()
        .map(|s| s.name.as_ref().ok().and_then(|n| normalize_reference(n)))
        .collect();
    let index_of: HashMap<&str, usize> = normalized
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.as_deref().map(|n| (n, i)))
        .collect();
    let empty = BTreeMap::new();
    let parents: Vec<Vec<usize>> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let args = s.config.map(|c| &c.build_args).unwrap_or(&empty);
            let mut ps: Vec<usize> = input
                .dockerfiles
                .get(&s.dockerfile)
                .map(|text| base_images(text, args))
                .unwrap_or_default()
                .iter()
                .filter_map(|b| normalize_reference(b))
                .filter_map(|b| index_of.get(b.as_str()).copied())
                .filter(|&p| p != i)
                .collect();
            ps.sort_unstable();
            ps.dedup();
            ps
        })
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); specs.len()];
    for (i, ps) in parents.iter().enumerate() {
        for &p in ps {
            children[p].push(i);
        }
    }

    let (kind, ref_name) = split_ref(input.git_ref).ok_or_else(|| {
        PlanError::InvalidInput(format!(
            "`{}` is neither a branch (refs/heads/...) nor a tag (refs/tags/...)",
            input.git_ref
        ))
    })?;

    // Which images, and why.
    let mut selected: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut changes = input.changes.clone();
    if !input.only.is_empty() {
        changes = ChangeSource::Named;
        for want in input.only {
            let i = specs
                .iter()
                .position(|s| s.name.as_deref() == Ok(want.as_str()))
                .ok_or_else(|| PlanError::UnknownImage(want.clone()))?;
            selected.insert(i, vec![format!("the job names `{want}`")]);
        }
    } else if kind == RefKind::Tag {
        let prefixed: Vec<usize> = (0..specs.len())
            .filter(|&i| tag_prefix_match(&specs[i], input.namespace, ref_name).is_some())
            .collect();
        if prefixed.is_empty() {
            changes = ChangeSource::All {
                reason: format!("a tag push (`{ref_name}`) builds every image"),
            };
            for i in 0..specs.len() {
                selected.insert(i, vec![format!("tag `{ref_name}`")]);
            }
        } else {
            changes = ChangeSource::All {
                reason: format!("the tag `{ref_name}` names its images by prefix"),
            };
            for i in prefixed {
                selected.insert(i, vec![format!("tag `{ref_name}` names this image")]);
            }
        }
    } else {
        match &changes {
            ChangeSource::All { reason } => {
                for i in 0..specs.len() {
                    selected.insert(i, vec![reason.clone()]);
                }
            }
            ChangeSource::Named => {}
            ChangeSource::Repository { .. } | ChangeSource::Payload { .. } => {
                let paths: Vec<&String> = input
                    .changed_paths
                    .iter()
                    .filter(|p| cfg.ignore.matching(p).is_none())
                    .collect();
                let global = paths
                    .iter()
                    .find_map(|p| cfg.global.matching(p).map(|g| (p.as_str(), g)));
                if let Some((path, pattern)) = global {
                    let reason = format!("global path `{path}` changed (`{pattern}`)");
                    changes = ChangeSource::All {
                        reason: reason.clone(),
                    };
                    for i in 0..specs.len() {
                        selected.insert(i, vec![reason.clone()]);
                    }
                } else {
                    for (i, s) in specs.iter().enumerate() {
                        let mut hit = paths.iter().filter(|p| in_context(p, s));
                        let mut reasons: Vec<String> = hit
                            .by_ref()
                            .take(MAX_REASONS)
                            .map(|p| p.to_string())
                            .collect();
                        let more = hit.count();
                        if more > 0 {
                            reasons.push(format!("and {more} more changed paths"));
                        }
                        if !reasons.is_empty() {
                            selected.insert(i, reasons);
                        }
                    }
                }
            }
        }
    }

    // The images left out, and why.
    let mut skipped: Vec<SkippedImage> = Vec::new();
    let skip = |i: usize, reason: String, skipped: &mut Vec<SkippedImage>| {
        let s = &specs[i];
        skipped.push(SkippedImage {
            name: s.name.clone().unwrap_or_else(|_| s.context.clone()),
            context: s.context.clone(),
            reason,
        });
    };
    for i in (0..specs.len()).filter(|i| !selected.contains_key(i)) {
        let reason = if !input.only.is_empty() {
            "the job names other images".to_string()
        } else if kind == RefKind::Tag {
            format!("the tag `{ref_name}` names other images")
        } else {
            format!("nothing under its context `{}` changed", specs[i].context)
        };
        skip(i, reason, &mut skipped);
    }

    // Tags, and the images that cannot be built.
    let sha7 = &input.commit[..input.commit.len().min(7)];
    let mut planned: BTreeMap<usize, PlannedImage> = BTreeMap::new();
    for (i, reasons) in selected {
        let s = &specs[i];
        let name = match &s.name {
            Ok(n) if valid[i] => n.clone(),
            Ok(_) => continue,
            Err(why) => {
                problems.push(PlanProblem {
                    context: s.context.clone(),
                    code: "invalid_name".into(),
                    message: why.clone(),
                });
                continue;
            }
        };
        let Some(tags) = tags_for(input, s, kind, ref_name, sha7) else {
            tracing::info!(image = %name, git_ref = %input.git_ref, "not built: no build rule with autobuild matches the ref");
            skip(
                i,
                format!("no build rule with autobuild matches `{}`", input.git_ref),
                &mut skipped,
            );
            continue;
        };
        if tags.is_empty() {
            problems.push(PlanProblem {
                context: s.context.clone(),
                code: "no_tags".into(),
                message: format!(
                    "`{name}` would be pushed with no tag; enable a tag in [tags] or add a rule"
                ),
            });
            continue;
        }
        let c = s.config;
        planned.insert(
            i,
            PlannedImage {
                name,
                context: s.context.clone(),
                dockerfile: s.dockerfile.clone(),
                commit: input.commit.to_string(),
                tags,
                build_args: c.map(|c| c.build_args.clone()).unwrap_or_default(),
                target: c.and_then(|c| c.target.clone()),
                platforms: c
                    .and_then(|c| c.platforms.clone())
                    .unwrap_or_else(|| cfg.platforms.clone()),
                emulate: c.and_then(|c| c.emulate).unwrap_or(cfg.emulate),
                attestations: c
                    .and_then(|c| c.attestations.clone())
                    .unwrap_or_else(|| cfg.attestations.clone()),
                autotest: c.and_then(|c| c.autotest).unwrap_or(cfg.autotest),
                reasons,
                order: 0,
                parents: names_of(&specs, &parents[i]),
                children: names_of(&specs, &children[i]),
                schedule: c.and_then(|c| c.schedule.clone()),
                deploy: c.map(|c| c.deploy.clone()).unwrap_or_default(),
                readme: c.and_then(|c| c.readme.clone()),
                readme_sync: c.and_then(|c| c.readme_sync).unwrap_or(cfg.readme_sync),
                ecr: cfg.ecr,
            },
        );
    }

    // Waves: an image comes after every parent that is built in the same plan.
    let keys: Vec<usize> = planned.keys().copied().collect();
    let mut order: HashMap<usize, u32> = HashMap::new();
    for &i in &keys {
        wave(i, &parents, &planned, &mut order, &mut Vec::new(), &specs)?;
    }
    let mut images: Vec<PlannedImage> = planned
        .into_iter()
        .map(|(i, mut p)| {
            p.order = order[&i];
            p
        })
        .collect();
    images.sort_by(|a, b| (a.order, &a.name).cmp(&(b.order, &b.name)));
    problems.sort_by(|a, b| a.context.cmp(&b.context));
    for im in &images {
        tracing::info!(image = %im.name, commit = %im.commit, tags = ?im.tags, order = im.order, reasons = ?im.reasons, "planned");
    }
    Ok(Plan {
        repository: input.repository.to_string(),
        git_ref: input.git_ref.to_string(),
        commit: input.commit.to_string(),
        changes,
        images,
        errors: problems,
        skipped: {
            skipped.sort_by(|a, b| a.name.cmp(&b.name));
            skipped
        },
    })
}

fn names_of(specs: &[ImageSpec<'_>], idx: &[usize]) -> Vec<String> {
    let mut v: Vec<String> = idx
        .iter()
        .filter_map(|&i| specs[i].name.as_ref().ok().cloned())
        .collect();
    v.sort();
    v
}

fn wave(
    i: usize,
    parents: &[Vec<usize>],
    planned: &BTreeMap<usize, PlannedImage>,
    memo: &mut HashMap<usize, u32>,
    stack: &mut Vec<usize>,
    specs: &[ImageSpec<'_>],
) -> Result<u32, PlanError> {
    if let Some(&o) = memo.get(&i) {
        return Ok(o);
    }
    if let Some(pos) = stack.iter().position(|&s| s == i) {
        let cycle: Vec<String> = stack[pos..]
            .iter()
            .chain(std::iter::once(&i))
            .map(|&s| {
                specs[s]
                    .name
                    .clone()
                    .unwrap_or_else(|_| specs[s].context.clone())
            })
            .collect();
        return Err(PlanError::Cycle(cycle.join(" → ")));
    }
    stack.push(i);
    let mut o = 0;
    for &p in &parents[i] {
        if planned.contains_key(&p) {
            o = o.max(wave(p, parents, planned, memo, stack, specs)? + 1);
        }
    }
    stack.pop();
    memo.insert(i, o);
    Ok(o)
}

/// The prefixes a monorepo tag may use for an image: its `tag_prefix`, else the context's last
/// directory, the context with `/` as `-`, and the name under the namespace.
fn prefixes(spec: &ImageSpec<'_>, namespace: &str) -> Vec<String> {
    if let Some(p) = spec.config.and_then(|c| c.tag_prefix.clone()) {
        return vec![p];
    }
    let mut v = Vec::new();
    if spec.context != "." {
        v.push(spec.context.clone());
        v.push(spec.context.replace('/', "-"));
        if let Some(last) = spec.context.rsplit('/').next() {
            v.push(last.to_string());
        }
    }
    if let Ok(n) = &spec.name
        && let Some(short) = n.strip_prefix(namespace).and_then(|r| r.strip_prefix('/'))
    {
        v.push(short.to_string());
    }
    v.sort();
    v.dedup();
    v
}

/// When `tag` is `<prefix>-<version>` or `<prefix>/<version>` for this image: (prefix, version).
fn tag_prefix_match<'t>(
    spec: &ImageSpec<'_>,
    namespace: &str,
    tag: &'t str,
) -> Option<(String, &'t str)> {
    prefixes(spec, namespace).into_iter().find_map(|p| {
        let rest = tag.strip_prefix(p.as_str())?;
        let version = rest.strip_prefix('-').or_else(|| rest.strip_prefix('/'))?;
        parse_version(version).map(|_| (p, version))
    })
}

/// The tags of one image; `None` when build rules apply and none builds this ref.
fn tags_for(
    input: &PlanInput<'_>,
    spec: &ImageSpec<'_>,
    kind: RefKind,
    ref_name: &str,
    sha7: &str,
) -> Option<Vec<String>> {
    let settings = &input.config.tags;
    let rules = input.config.rules_for(spec.config);
    let mut tags: Vec<String> = Vec::new();
    if !rules.is_empty() {
        let from_rules = rule_tags(rules, kind, ref_name, sha7);
        if from_rules.is_empty() && input.only.is_empty() {
            return None;
        }
        tags.extend(from_rules);
    } else {
        match kind {
            RefKind::Branch => {
                if settings.branch
                    && let Some(t) = sanitize_tag(ref_name)
                {
                    tags.push(t);
                }
                if ref_name == input.default_branch
                    && matches!(settings.latest, Latest::Auto | Latest::DefaultBranch)
                {
                    tags.push("latest".into());
                }
            }
            RefKind::Tag => {
                let prefixed = tag_prefix_match(spec, input.namespace, ref_name);
                let version_text = prefixed.as_ref().map(|(_, v)| *v).unwrap_or(ref_name);
                match parse_version(version_text).filter(|_| settings.semver) {
                    Some(v) => {
                        tags.extend(semver_tags(&v));
                        if v.pre.is_empty()
                            && matches!(settings.latest, Latest::Auto | Latest::Semver)
                            && is_newest(
                                &v,
                                prefixed.as_ref().map(|(p, _)| p.as_str()),
                                input.repo_tags,
                            )
                        {
                            tags.push("latest".into());
                        }
                    }
                    None => tags.extend(sanitize_tag(version_text)),
                }
            }
        }
    }
    if settings.sha {
        tags.push(format!("sha-{sha7}"));
    }
    let mut seen = BTreeSet::new();
    tags.retain(|t| seen.insert(t.clone()));
    Some(tags)
}

/// Whether `v` is at least every stable version among the repository's tags (with the same
/// monorepo prefix, or unprefixed).
fn is_newest(v: &semver::Version, prefix: Option<&str>, repo_tags: &[String]) -> bool {
    repo_tags
        .iter()
        .filter_map(|t| match prefix {
            Some(p) => {
                let rest = t.strip_prefix(p)?;
                parse_version(rest.strip_prefix('-').or_else(|| rest.strip_prefix('/'))?)
            }
            None => parse_version(t),
        })
        .filter(|o| o.pre.is_empty())
        .all(|o| o.cmp_precedence(v) != std::cmp::Ordering::Greater)
}

fn rule_tags(rules: &[BuildRule], kind: RefKind, ref_name: &str, sha7: &str) -> Vec<String> {
    let mut out = Vec::new();
    for r in rules {
        let kind_ok = matches!(
            (r.source_type, kind),
            (SourceType::Branch, RefKind::Branch) | (SourceType::Tag, RefKind::Tag)
        );
        if !kind_ok || !r.autobuild {
            continue;
        }
        let groups: Vec<String> = match &r.source {
            RuleSource::Name(n) if n == ref_name => Vec::new(),
            RuleSource::Name(_) => continue,
            RuleSource::Regex(re) => match re.captures(ref_name) {
                Some(c) => (1..=9)
                    .map(|g| c.get(g).map(|m| m.as_str().to_string()).unwrap_or_default())
                    .collect(),
                None => continue,
            },
        };
        let mut t = r
            .tag
            .replace("{sourceref}", ref_name)
            .replace("{sha}", sha7);
        for (g, value) in groups.iter().enumerate() {
            t = t.replace(&format!("{{\\{}}}", g + 1), value);
        }
        if let Some(t) = sanitize_tag(&t) {
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

    fn run(
        files: &[&str],
        dockerfiles: &[(&str, &str)],
        config: &str,
        git_ref: &str,
        changed: &[&str],
        tags: &[&str],
    ) -> Result<Plan, PlanError> {
        let files: Vec<String> = files.iter().map(|s| s.to_string()).collect();
        let dockerfiles: BTreeMap<String, String> = dockerfiles
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let changed: Vec<String> = changed.iter().map(|s| s.to_string()).collect();
        let tags: Vec<String> = tags.iter().map(|s| s.to_string()).collect();
        let config = Config::parse(config).unwrap();
        plan(&PlanInput {
            repository: "acme/shop",
            git_ref,
            default_branch: "main",
            commit: SHA,
            files: &files,
            config: &config,
            dockerfiles: &dockerfiles,
            changes: ChangeSource::Payload {
                note: "test".into(),
            },
            changed_paths: &changed,
            repo_tags: &tags,
            only: &[],
            namespace: "acme",
        })
    }

    #[test]
    fn two_contexts_with_one_name_are_a_problem_not_a_build() {
        let p = run(
            &["a-b/Dockerfile", "a/b/Dockerfile"],
            &[],
            "",
            "refs/heads/main",
            &["a-b/x", "a/b/x"],
            &[],
        )
        .unwrap();
        assert_eq!(p.images.len(), 1);
        assert_eq!(p.errors[0].code, "duplicate_name");
        assert_eq!(p.errors[0].context, "a/b");
    }

    #[test]
    fn a_from_cycle_is_an_error() {
        let e = run(
            &["a/Dockerfile", "b/Dockerfile"],
            &[
                ("a/Dockerfile", "FROM acme/b\n"),
                ("b/Dockerfile", "FROM acme/a\n"),
            ],
            "",
            "refs/heads/main",
            &["a/x", "b/x"],
            &[],
        )
        .unwrap_err();
        assert_eq!(e.code(), "dependency_cycle");
    }

    #[test]
    fn latest_follows_the_setting() {
        let files = ["Dockerfile"];
        let tags_of = |cfg: &str, r: &str, repo_tags: &[&str]| {
            run(&files, &[], cfg, r, &["x"], repo_tags).unwrap().images[0]
                .tags
                .clone()
        };
        assert_eq!(
            tags_of("", "refs/heads/main", &[]),
            ["main", "latest", "sha-6113728"]
        );
        assert_eq!(
            tags_of("[tags]\nlatest = \"semver\"\n", "refs/heads/main", &[]),
            ["main", "sha-6113728"]
        );
        assert_eq!(
            tags_of(
                "[tags]\nlatest = \"never\"\nsha = false\n",
                "refs/tags/v1.0.0",
                &["v1.0.0"]
            ),
            ["1.0.0", "1.0", "1"]
        );
        // A higher stable version exists: no `latest`; a higher pre-release does not count.
        assert_eq!(
            tags_of("", "refs/tags/v1.0.0", &["v1.0.0", "v1.1.0"]),
            ["1.0.0", "1.0", "1", "sha-6113728"]
        );
        assert_eq!(
            tags_of("", "refs/tags/v1.0.0", &["v1.0.0", "v2.0.0-rc.1"]),
            ["1.0.0", "1.0", "1", "latest", "sha-6113728"]
        );
        assert_eq!(
            tags_of("[tags]\nsemver = false\n", "refs/tags/v1.0.0", &[]),
            ["v1.0.0", "sha-6113728"]
        );
    }

    #[test]
    fn a_dockerfile_outside_its_context_still_rebuilds_it() {
        let p = run(
            &["docker/web.Dockerfile", "web/index.html"],
            &[],
            "[[image]]\ncontext = \"web\"\ndockerfile = \"../docker/web.Dockerfile\"\n",
            "refs/heads/dev",
            &["docker/web.Dockerfile"],
            &[],
        )
        .unwrap();
        assert_eq!(p.images[0].name, "acme/web");
        assert_eq!(p.images[0].tags, ["dev", "sha-6113728"]);
        assert_eq!(p.images[0].reasons, ["docker/web.Dockerfile"]);
    }
}
