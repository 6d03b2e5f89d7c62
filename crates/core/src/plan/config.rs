//! `slipway.toml`: the optional repository configuration, read at the pushed commit.
//!
//! Every key is optional; an absent file is zero configuration. Unknown keys are errors (a typo
//! must not silently change what is built), and every error names the line and the key.

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;
use serde::Deserialize;

use crate::names;
use crate::readme::ReadmeSync;

/// Where the file lives, relative to the repository root.
pub const CONFIG_PATH: &str = "slipway.toml";

/// A `slipway.toml` that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("slipway.toml line {line}, key `{key}`: {message}")]
pub struct ConfigError {
    /// 1-based; 0 when the error has no position (the whole file).
    pub line: usize,
    /// Dotted path of the key, e.g. `image[1].platforms`; `.` for the whole file.
    pub key: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    discover: Option<bool>,
    #[serde(default)]
    autotest: bool,
    #[serde(default)]
    platforms: Vec<String>,
    #[serde(default)]
    emulate: bool,
    #[serde(default)]
    attestations: Vec<String>,
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    global: Vec<String>,
    #[serde(default)]
    tags: RawTags,
    #[serde(default)]
    rule: Vec<RawRule>,
    #[serde(default)]
    image: Vec<RawImage>,
    #[serde(default)]
    ecr: crate::ecr::EcrSettings,
    #[serde(default)]
    readme_sync: ReadmeSync,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTags {
    #[serde(default = "yes")]
    sha: bool,
    #[serde(default = "yes")]
    branch: bool,
    #[serde(default = "yes")]
    semver: bool,
    #[serde(default)]
    latest: Latest,
}

impl Default for RawTags {
    fn default() -> Self {
        Self {
            sha: true,
            branch: true,
            semver: true,
            latest: Latest::Auto,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    source_type: SourceType,
    source: String,
    tag: String,
    #[serde(default = "yes")]
    autobuild: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    context: String,
    #[serde(default)]
    dockerfile: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    build_args: BTreeMap<String, String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    platforms: Option<Vec<String>>,
    #[serde(default)]
    emulate: Option<bool>,
    #[serde(default)]
    attestations: Option<Vec<String>>,
    #[serde(default)]
    autotest: Option<bool>,
    #[serde(default)]
    tag_prefix: Option<String>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    deploy: Vec<String>,
    #[serde(default)]
    readme: Option<String>,
    #[serde(default)]
    readme_sync: Option<ReadmeSync>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

/// When `latest` is pushed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Latest {
    /// On the default branch and on the newest stable semver tag.
    #[default]
    Auto,
    DefaultBranch,
    Semver,
    Never,
}

/// Which kind of ref a build rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    Branch,
    Tag,
}

/// Default tag conventions (docker/metadata-action's, with Docker Hub's `latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSettings {
    pub sha: bool,
    pub branch: bool,
    pub semver: bool,
    pub latest: Latest,
}

impl Default for TagSettings {
    fn default() -> Self {
        Self {
            sha: true,
            branch: true,
            semver: true,
            latest: Latest::Auto,
        }
    }
}

/// A Docker Hub style build rule: a branch or tag, by name or `/regex/`, and a tag template.
#[derive(Debug, Clone)]
pub struct BuildRule {
    pub source_type: SourceType,
    pub source: RuleSource,
    /// Template: `{sourceref}` is the branch or tag name, `{\1}`…`{\9}` the regex's groups.
    pub tag: String,
    pub autobuild: bool,
}

#[derive(Debug, Clone)]
pub enum RuleSource {
    Name(String),
    Regex(Regex),
}

/// One image the file lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    /// Normalised, relative to the root; `.` for the root.
    pub context: String,
    /// Relative to the repository root.
    pub dockerfile: String,
    /// Repository path under the namespace (`web`, `team/web`); `None`: from the context.
    pub name: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// `None`: the file's default platforms.
    pub platforms: Option<Vec<String>>,
    /// `None`: the file's default.
    pub emulate: Option<bool>,
    /// `None`: the file's default.
    pub attestations: Option<Vec<String>>,
    pub autotest: Option<bool>,
    pub tag_prefix: Option<String>,
    pub schedule: Option<String>,
    pub deploy: Vec<String>,
    /// The README (repository-relative, resolved from the context); `None`: the context's
    /// `README.md`.
    pub readme: Option<String>,
    /// `None`: the file's default.
    pub readme_sync: Option<ReadmeSync>,
    /// Index into [`Config::image_rules`].
    pub(crate) index: usize,
}

/// A parsed `slipway.toml`.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Find every directory holding a `Dockerfile` (default: only when no image is listed).
    pub discover: bool,
    pub autotest: bool,
    /// Default platforms of every image (empty: the builder's own).
    pub platforms: Vec<String>,
    /// Default of `emulate`: build platforms that have no native builder under emulation.
    pub emulate: bool,
    /// Default attestations (only `provenance`).
    pub attestations: Vec<String>,
    pub ignore: PathSet,
    pub global: PathSet,
    pub tags: TagSettings,
    pub rules: Vec<BuildRule>,
    pub images: Vec<ImageConfig>,
    /// `[ecr]`: ECR repositories created on an image's first push.
    pub ecr: crate::ecr::EcrSettings,
    /// Default of `readme_sync` (`auto`).
    pub readme_sync: ReadmeSync,
    image_rules: Vec<Vec<BuildRule>>,
}

impl Config {
    /// Zero configuration: discover every Dockerfile, default tags.
    pub fn zero() -> Self {
        Self {
            discover: true,
            ..Self::default()
        }
    }

    /// The build rules that apply to a listed image: its own, else the file's.
    pub fn rules_for(&self, image: Option<&ImageConfig>) -> &[BuildRule] {
        match image {
            Some(i) if !self.image_rules[i.index].is_empty() => &self.image_rules[i.index],
            _ => &self.rules,
        }
    }

    /// Parses the file; every error names its line and key.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = deserialize(text)?;
        let err = |key: String, message: String| ConfigError {
            line: line_of_key(text, &key),
            key,
            message,
        };
        check_platforms(&raw.platforms).map_err(|(j, m)| err(format!("platforms[{j}]"), m))?;
        check_attestations(&raw.attestations)
            .map_err(|(j, m)| err(format!("attestations[{j}]"), m))?;
        let ignore = PathSet::new(&raw.ignore).map_err(|(i, m)| err(format!("ignore[{i}]"), m))?;
        let global = PathSet::new(&raw.global).map_err(|(i, m)| err(format!("global[{i}]"), m))?;
        let rules = raw
            .rule
            .iter()
            .enumerate()
            .map(|(i, r)| build_rule(r).map_err(|(k, m)| err(format!("rule[{i}].{k}"), m)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut images = Vec::new();
        let mut image_rules = Vec::new();
        for (i, im) in raw.image.iter().enumerate() {
            let key = |k: &str| format!("image[{i}].{k}");
            let context =
                normalize_path(&im.context).map_err(|m| err(key("context"), m.to_string()))?;
            let dockerfile = join(&context, im.dockerfile.as_deref().unwrap_or("Dockerfile"))
                .map_err(|m| err(key("dockerfile"), m.to_string()))?;
            if let Some(n) = &im.name {
                names::check_image_path(n).map_err(|m| err(key("name"), m.to_string()))?;
            }
            if let Some(t) = &im.target {
                names::check_name(t)
                    .map_err(|e| err(key("target"), format!("a build stage name {e}")))?;
            }
            for a in im.build_args.keys() {
                names::check_build_arg_name(a).map_err(|e| {
                    err(
                        format!("image[{i}].build_args.{a}"),
                        format!("a build argument name {e}"),
                    )
                })?;
            }
            if let Some(platforms) = &im.platforms {
                check_platforms(platforms)
                    .map_err(|(j, m)| err(format!("image[{i}].platforms[{j}]"), m))?;
            }
            if let Some(attestations) = &im.attestations {
                check_attestations(attestations)
                    .map_err(|(j, m)| err(format!("image[{i}].attestations[{j}]"), m))?;
            }
            if let Some(p) = &im.tag_prefix {
                names::check_name(p)
                    .map_err(|e| err(key("tag_prefix"), format!("a tag prefix {e}")))?;
            }
            if let Some(s) = &im.schedule
                && !is_schedule(s)
            {
                return Err(err(
                    key("schedule"),
                    "must be `rate(N unit)` or `cron(six fields)`, as EventBridge writes them"
                        .into(),
                ));
            }
            for (j, d) in im.deploy.iter().enumerate() {
                names::check_name(d).map_err(|e| {
                    err(
                        format!("image[{i}].deploy[{j}]"),
                        format!("a deploy target name {e}"),
                    )
                })?;
            }
            let readme = match &im.readme {
                Some(r) => {
                    let p = join(&context, r).map_err(|m| err(key("readme"), m.to_string()))?;
                    // A file of the repository, never its root nor a path through `..`.
                    let names_a_file = r.split('/').any(|c| !c.is_empty() && c != ".");
                    if p == "." || !names_a_file || r.split('/').any(|c| c == "..") {
                        return Err(err(
                            key("readme"),
                            "must name a file inside the build context or below it, without `..`"
                                .into(),
                        ));
                    }
                    names::check_repo_path(&p).map_err(|e| err(key("readme"), e.to_string()))?;
                    Some(p)
                }
                None => None,
            };
            let own = im
                .rule
                .iter()
                .enumerate()
                .map(|(j, r)| {
                    build_rule(r).map_err(|(k, m)| err(format!("image[{i}].rule[{j}].{k}"), m))
                })
                .collect::<Result<Vec<_>, _>>()?;
            image_rules.push(own);
            images.push(ImageConfig {
                context,
                dockerfile,
                name: im.name.clone(),
                build_args: im.build_args.clone(),
                target: im.target.clone(),
                platforms: im.platforms.clone(),
                emulate: im.emulate,
                attestations: im.attestations.clone(),
                autotest: im.autotest,
                tag_prefix: im.tag_prefix.clone(),
                schedule: im.schedule.clone(),
                deploy: im.deploy.clone(),
                readme,
                readme_sync: im.readme_sync,
                index: i,
            });
        }
        raw.ecr
            .check()
            .map_err(|(k, m)| err(format!("ecr.{k}"), m))?;
        let raw_tags = raw.tags;
        Ok(Config {
            discover: raw.discover.unwrap_or(raw.image.is_empty()),
            autotest: raw.autotest,
            platforms: raw.platforms,
            emulate: raw.emulate,
            attestations: raw.attestations,
            ignore,
            global,
            tags: TagSettings {
                sha: raw_tags.sha,
                branch: raw_tags.branch,
                semver: raw_tags.semver,
                latest: raw_tags.latest,
            },
            rules,
            images,
            ecr: raw.ecr,
            readme_sync: raw.readme_sync,
            image_rules,
        })
    }
}

fn deserialize(text: &str) -> Result<RawConfig, ConfigError> {
    let de = toml::Deserializer::parse(text).map_err(|e| syntax_error(text, &e, "."))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let mut key = path;
        // serde names unknown and missing keys only in its message; put them in the key.
        let msg = inner.message().to_string();
        for prefix in ["unknown field `", "missing field `"] {
            if let Some(rest) = msg.strip_prefix(prefix) {
                let name = rest.split('`').next().unwrap_or_default();
                if key == name || key.ends_with(&format!(".{name}")) {
                    continue;
                }
                key = if key == "." {
                    name.to_string()
                } else {
                    format!("{key}.{name}")
                };
            }
        }
        let key = key.replace(".[", "[");
        syntax_error(text, &inner, &key)
    })
}

fn syntax_error(text: &str, e: &toml::de::Error, key: &str) -> ConfigError {
    let line = match e.span() {
        Some(span) => line_at(text, span.start),
        None => line_of_key(text, key),
    };
    ConfigError {
        line,
        key: key.to_string(),
        message: e.message().trim().to_string(),
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Best-effort line of a dotted key such as `image[1].platforms[0]`: the n-th `[[image]]`
/// header, then the first line below it that assigns the last named key.
fn line_of_key(text: &str, key: &str) -> usize {
    let mut parts = key.split('.').map(|p| p.split('[').next().unwrap_or(p));
    let first_seg = key.split('.').next().unwrap_or("");
    let Some(first) = parts.next() else { return 0 };
    let lines: Vec<&str> = text.lines().collect();
    let mut start = 0;
    let mut last = first;
    if let Some(idx) = first_seg
        .split_once('[')
        .and_then(|(_, r)| r.trim_end_matches(']').parse::<usize>().ok())
    {
        let header = format!("[[{first}]]");
        let mut seen = 0;
        for (n, l) in lines.iter().enumerate() {
            if l.trim() == header {
                if seen == idx {
                    start = n;
                    break;
                }
                seen += 1;
            }
        }
    }
    for p in parts {
        last = p;
    }
    for (n, l) in lines.iter().enumerate().skip(start) {
        let t = l.trim_start();
        if t.starts_with(last) && t[last.len()..].trim_start().starts_with('=') {
            return n + 1;
        }
    }
    if start > 0 { start + 1 } else { 0 }
}

fn build_rule(r: &RawRule) -> Result<BuildRule, (&'static str, String)> {
    let source = match r.source.strip_prefix('/').and_then(|s| s.strip_suffix('/')) {
        Some(re) if !re.is_empty() => RuleSource::Regex(
            Regex::new(re).map_err(|e| ("source", format!("not a valid regex: {e}")))?,
        ),
        _ => {
            if r.source.is_empty() {
                return Err(("source", "may not be empty".into()));
            }
            RuleSource::Name(r.source.clone())
        }
    };
    check_template(&r.tag).map_err(|m| ("tag", m))?;
    Ok(BuildRule {
        source_type: r.source_type,
        source,
        tag: r.tag.clone(),
        autobuild: r.autobuild,
    })
}

fn check_template(t: &str) -> Result<(), String> {
    if t.is_empty() {
        return Err("may not be empty".into());
    }
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| "has a `{` without its `}`".to_string())?;
        let var = &after[..close];
        let ok = var == "sourceref"
            || var == "sha"
            || (var.len() == 2
                && var.starts_with('\\')
                && matches!(var.as_bytes()[1], b'1'..=b'9'));
        if !ok {
            return Err(format!(
                "unknown placeholder `{{{var}}}` (known: {{sourceref}}, {{sha}}, {{\\1}}…{{\\9}})"
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// A set of gitignore-like globs: `*` stays in one path segment, `**` crosses them, and a pattern
/// that names a directory covers everything below it.
#[derive(Debug, Clone, Default)]
pub struct PathSet {
    globs: Vec<(String, GlobMatcher)>,
}

impl PathSet {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, (usize, String)> {
        let mut globs = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            let p = p.as_ref().trim_start_matches("./").trim_end_matches('/');
            if p.is_empty() {
                return Err((i, "may not be empty".into()));
            }
            let g = GlobBuilder::new(p.trim_start_matches('/'))
                .literal_separator(true)
                .build()
                .map_err(|e| (i, format!("not a valid glob: {}", e.kind())))?;
            globs.push((p.to_string(), g.compile_matcher()));
        }
        Ok(Self { globs })
    }

    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    /// The first pattern that covers `path` (the path itself or one of its directories).
    pub fn matching(&self, path: &str) -> Option<&str> {
        if self.globs.is_empty() {
            return None;
        }
        let mut candidate = path;
        loop {
            if let Some((p, _)) = self.globs.iter().find(|(_, g)| g.is_match(candidate)) {
                return Some(p);
            }
            match candidate.rfind('/') {
                Some(i) => candidate = &candidate[..i],
                None => return None,
            }
        }
    }
}

/// Normalises a repository-relative path: no leading `./` or `/`, `..` resolved, never above
/// the root. The root is `.`.
pub fn normalize_path(p: &str) -> Result<String, &'static str> {
    if p.chars().any(char::is_control) {
        return Err("may not contain control characters");
    }
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop().ok_or("may not point above the repository root")?;
            }
            c => out.push(c),
        }
    }
    Ok(if out.is_empty() {
        ".".to_string()
    } else {
        out.join("/")
    })
}

/// `rel` taken from directory `dir` (both repository-relative).
pub fn join(dir: &str, rel: &str) -> Result<String, &'static str> {
    if rel.starts_with('/') {
        return normalize_path(rel);
    }
    if dir == "." {
        normalize_path(rel)
    } else {
        normalize_path(&format!("{dir}/{rel}"))
    }
}

/// The attestations BuildKit can attach that slipway supports: provenance only. SBOMs need a
/// scanner image pulled at build time (`docker/buildkit-syft-scanner`), which slipway does not
/// pull behind the user's back.
pub const ATTESTATIONS: &[&str] = &["provenance"];

fn check_platforms(platforms: &[String]) -> Result<(), (usize, String)> {
    for (j, p) in platforms.iter().enumerate() {
        names::check_platform(p).map_err(|e| (j, e.to_string()))?;
        if platforms[..j].contains(p) {
            return Err((j, format!("`{p}` is listed twice")));
        }
    }
    Ok(())
}

fn check_attestations(attestations: &[String]) -> Result<(), (usize, String)> {
    for (j, a) in attestations.iter().enumerate() {
        if a == "sbom" {
            return Err((
                j,
                "`sbom` is not supported: BuildKit's SBOM generator is a scanner image pulled at build time; only `provenance` is".into(),
            ));
        }
        if !ATTESTATIONS.contains(&a.as_str()) {
            return Err((j, "the only attestation is `provenance`".into()));
        }
    }
    Ok(())
}

/// One grammar for schedules: EventBridge's, as `slipway serve` evaluates it.
fn is_schedule(s: &str) -> bool {
    crate::schedule::ScheduleExpr::parse(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_zero_configuration() {
        let c = Config::parse("").unwrap();
        assert!(c.discover);
        assert!(c.images.is_empty());
        assert_eq!(c.tags, TagSettings::default());
    }

    #[test]
    fn full_file() {
        let c = Config::parse(
            r#"
autotest = true
ignore = ["docs", "**/*.md"]
global = ["shared/"]

[tags]
latest = "default_branch"

[[rule]]
source_type = "tag"
source = '/^release-([0-9.]+)$/'
tag = 'rel-{\1}'

[[image]]
context = "services/web"
dockerfile = "../docker/web.Dockerfile"
name = "team/web"
build_args = { VERSION = "1" }
target = "prod"
platforms = ["linux/amd64", "linux/arm64/v8"]
schedule = "rate(7 days)"
deploy = ["prod"]
"#,
        )
        .unwrap();
        assert!(!c.discover);
        assert!(c.autotest);
        assert_eq!(c.ignore.matching("docs/a/b.txt"), Some("docs"));
        assert_eq!(c.ignore.matching("x/README.md"), Some("**/*.md"));
        assert_eq!(c.global.matching("shared/lib.sh"), Some("shared"));
        assert_eq!(c.global.matching("sharedx"), None);
        assert_eq!(c.tags.latest, Latest::DefaultBranch);
        let im = &c.images[0];
        assert_eq!(im.context, "services/web");
        assert_eq!(im.dockerfile, "services/docker/web.Dockerfile");
        assert_eq!(im.schedule.as_deref(), Some("rate(7 days)"));
        assert_eq!(im.deploy, vec!["prod"]);
        assert_eq!(c.rules_for(Some(im)).len(), 1);
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = Config::parse("autotest = true\n\n[[image]]\ncontext = \"a\"\nplatforms = [1]\n")
            .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_str()),
            (5, "image[0].platforms[0]"),
            "{e}"
        );

        let e = Config::parse("[[image]]\ncontext = \"a\"\ncontxt = \"b\"\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (3, "image[0].contxt"), "{e}");

        let e = Config::parse("[[image]]\nname = \"x\"\n").unwrap_err();
        assert_eq!(e.key, "image[0].context", "{e}");

        let e = Config::parse("a = = 1\n").unwrap_err();
        assert_eq!(e.line, 1);

        let e = Config::parse(
            "[[image]]\ncontext = \"a\"\n[[image]]\ncontext = \"b\"\nplatforms = [\"linux\"]\n",
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_str()),
            (5, "image[1].platforms[0]"),
            "{e}"
        );

        let e = Config::parse("[[rule]]\nsource_type = \"tag\"\nsource = \"/([/\"\ntag = \"x\"\n")
            .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (3, "rule[0].source"), "{e}");

        let e =
            Config::parse("[[rule]]\nsource_type = \"tag\"\nsource = \"v1\"\ntag = \"{\\\\0}\"\n")
                .unwrap_err();
        assert_eq!(e.key, "rule[0].tag", "{e}");

        let e = Config::parse("[[image]]\ncontext = \"../..\"\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (2, "image[0].context"), "{e}");
    }

    /// `slipway.toml` applies the build environment's own rules (`crate::names`): a value it
    /// accepts is never refused when the image is built.
    #[test]
    fn names_follow_the_build_environments_rules() {
        for (field, value, key) in [
            ("target", "\"-stage\"", "image[0].target"),
            ("tag_prefix", "\".web\"", "image[0].tag_prefix"),
            ("deploy", "[\"-prod\"]", "image[0].deploy[0]"),
            (
                "platforms",
                &format!("[\"linux/{}\"]", "a".repeat(33)),
                "image[0].platforms[0]",
            ),
            ("name", "\"Web\"", "image[0].name"),
        ] {
            let text = format!("[[image]]\ncontext = \"a\"\n{field} = {value}\n");
            let e = Config::parse(&text).unwrap_err();
            assert_eq!((e.line, e.key.as_str()), (3, key), "{e}");
        }
        let long = "A".repeat(129);
        let e = Config::parse(&format!(
            "[[image]]\ncontext = \"a\"\n[image.build_args]\n{long} = \"1\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, format!("image[0].build_args.{long}"), "{e}");
        Config::parse("[[image]]\ncontext = \"a\"\ntarget = \"runtime\"\ntag_prefix = \"web-\"\ndeploy = [\"prod.web\"]\n").unwrap();
    }

    #[test]
    fn readme_settings() {
        let c = Config::parse(
            "readme_sync = \"annotation\"\n[[image]]\ncontext = \"web\"\nreadme = \"docs/HUB.md\"\nreadme_sync = \"off\"\n[[image]]\ncontext = \"api\"\nreadme = \"/README.md\"\n[[image]]\ncontext = \"db\"\n",
        )
        .unwrap();
        assert_eq!(c.readme_sync, ReadmeSync::Annotation);
        assert_eq!(c.images[0].readme.as_deref(), Some("web/docs/HUB.md"));
        assert_eq!(c.images[0].readme_sync, Some(ReadmeSync::Off));
        assert_eq!(c.images[1].readme.as_deref(), Some("README.md"));
        assert_eq!(c.images[1].readme_sync, None);
        assert_eq!(c.images[2].readme, None);
        for (value, line) in [("\"../README.md\"", 3), ("\".\"", 3), ("\"a/../../x\"", 3)] {
            let e = Config::parse(&format!("[[image]]\ncontext = \"web\"\nreadme = {value}\n"))
                .unwrap_err();
            assert_eq!((e.line, e.key.as_str()), (line, "image[0].readme"), "{e}");
        }
        let e = Config::parse("[[image]]\ncontext = \"web\"\nreadme_sync = \"hub\"\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (3, "image[0].readme_sync"), "{e}");
        assert_eq!(
            Config::parse("readme_sync = \"dockerhub\"")
                .unwrap()
                .readme_sync,
            ReadmeSync::Dockerhub
        );
    }

    #[test]
    fn paths() {
        assert_eq!(normalize_path("./a//b/../c/").unwrap(), "a/c");
        assert_eq!(normalize_path("").unwrap(), ".");
        assert!(normalize_path("../x").is_err());
        assert_eq!(join(".", "Dockerfile").unwrap(), "Dockerfile");
        assert_eq!(join("a/b", "../Dockerfile").unwrap(), "a/Dockerfile");
    }

    #[test]
    fn schedules() {
        assert!(is_schedule("rate(1 day)"));
        assert!(!is_schedule("rate(1 days)"));
        assert!(is_schedule("cron(0 4 ? * MON *)"));
        assert!(!is_schedule("rate(x days)"));
        assert!(!is_schedule("cron(0 4 * *)"));
    }
}
