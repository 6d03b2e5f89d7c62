//! The pure planner on a monorepo of 500 build contexts (50 base images, each the parent of 9
//! others): a push that changes one file, and a push at GitHub's 2048-commit cap whose diff lists
//! 4096 paths across every context. Also the parsing of a `slipway.toml`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use slipway_core::plan::{ChangeSource, Config, PlanInput, plan};

const COMMIT: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

struct Repo {
    files: Vec<String>,
    dockerfiles: BTreeMap<String, String>,
    config: Config,
}

fn repo() -> Repo {
    let mut files = Vec::new();
    let mut dockerfiles = BTreeMap::new();
    for i in 0..500 {
        let ctx = format!("services/team{}/svc{i}", i % 10);
        let from = if i % 10 == 0 {
            "FROM scratch".to_string()
        } else {
            // Each group of ten: one base, nine children built FROM it.
            format!(
                "ARG BASE=acme/services-team{}-svc{}\nFROM ${{BASE}}:latest AS run",
                (i - i % 10) % 10,
                i - i % 10
            )
        };
        dockerfiles.insert(
            format!("{ctx}/Dockerfile"),
            format!("# syntax=docker/dockerfile:1\n{from}\nCOPY . /srv\nRUN make\n"),
        );
        files.push(format!("{ctx}/Dockerfile"));
        for f in 0..20 {
            files.push(format!("{ctx}/src/file{f}.rs"));
        }
    }
    files.push("README.md".into());
    files.sort();
    let config =
        Config::parse("ignore = [\"**/*.md\", \"docs\"]\nglobal = [\"ci/shared\"]\n").unwrap();
    Repo {
        files,
        dockerfiles,
        config,
    }
}

fn input<'a>(r: &'a Repo, changed: &'a [String]) -> PlanInput<'a> {
    PlanInput {
        repository: "acme/monorepo",
        git_ref: "refs/heads/main",
        default_branch: "main",
        commit: COMMIT,
        files: &r.files,
        config: &r.config,
        dockerfiles: &r.dockerfiles,
        changes: ChangeSource::Repository {
            base: "0".repeat(40),
        },
        changed_paths: changed,
        repo_tags: &[],
        only: &[],
        namespace: "acme",
    }
}

fn bench(c: &mut Criterion) {
    let r = repo();
    let one = vec!["services/team3/svc13/src/file4.rs".to_string()];
    // 2048 commits of two paths each, spread over every context.
    let mut push: Vec<String> = (0..4096)
        .map(|i| {
            format!(
                "services/team{}/svc{}/src/file{}.rs",
                (i % 500) % 10,
                i % 500,
                i % 20
            )
        })
        .collect();
    push.sort();
    push.dedup();

    let p = plan(&input(&r, &one)).unwrap();
    assert_eq!(p.images.len(), 1);
    let p = plan(&input(&r, &push)).unwrap();
    assert_eq!(p.images.len(), 500);
    assert_eq!(p.images.iter().map(|i| i.order).max(), Some(1));

    let mut g = c.benchmark_group("planner");
    g.bench_function("500_contexts_one_change", |b| {
        b.iter(|| plan(black_box(&input(&r, &one))).unwrap())
    });
    g.bench_function("500_contexts_2048_commit_push", |b| {
        b.iter(|| plan(black_box(&input(&r, &push))).unwrap())
    });
    g.finish();

    let toml = r#"
ignore = ["docs"]
global = ["shared"]
[[rule]]
source_type = "tag"
source = '/^v([0-9.]+)$/'
tag = '{\1}'
[[image]]
context = "web"
platforms = ["linux/amd64", "linux/arm64"]
build_args = { A = "1" }
"#;
    c.bench_function("config_parse", |b| {
        b.iter(|| Config::parse(black_box(toml)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
