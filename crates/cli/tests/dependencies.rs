//! The `slipway` binary (serve, build, plan, replay, agent, deliver) runs on one machine: it must not
//! link the AWS SDK or a Lambda runtime, which would triple its cold build for nothing. Read from
//! `cargo tree`, the resolved graph cargo itself builds.

use std::process::Command;

#[test]
fn slipway_links_no_aws_sdk_and_no_lambda_runtime() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--package",
            "slipway",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).expect("cargo tree prints UTF-8");
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    // The graph was read: the binary's own direct dependencies are in it.
    for expected in ["slipway-core", "tokio", "reqwest", "rusqlite"] {
        assert!(
            crates.contains(&expected),
            "{expected} missing from:\n{tree}"
        );
    }
    let forbidden: Vec<&&str> = crates
        .iter()
        .filter(|c| {
            c.starts_with("aws-sdk-")
                || c.starts_with("aws-config")
                || c.starts_with("lambda_")
                || c.starts_with("aws_lambda_events")
        })
        .collect();
    assert!(
        forbidden.is_empty(),
        "the slipway binary links {forbidden:?}; the AWS SDK and the Lambda runtime belong to the Lambda crates only"
    );
}

/// The test kit (`slipway-testkit`) is for tests only: no crate of the workspace may depend on it
/// except as a dev-dependency, so no product links a test helper.
#[test]
fn no_crate_depends_on_the_test_kit_outside_its_tests() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let tree = |edges: &str| {
        let out = Command::new(&cargo)
            .args(["tree", "--workspace", "--edges", edges])
            .args([
                "--invert",
                "slipway-testkit",
                "--prefix",
                "none",
                "--offline",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo tree runs");
        assert!(
            out.status.success(),
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("cargo tree prints UTF-8");
        let mut dependents: Vec<String> = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            // The AWS bench is test equipment itself (publish = false), never a product.
            .filter(|c| *c != "slipway-testkit" && *c != "slipway-aws-bench")
            .map(str::to_string)
            .collect();
        dependents.sort();
        dependents.dedup();
        dependents
    };
    // The graph was read: the suites use the kit through their dev-dependencies.
    let dev = tree("normal,build,dev");
    assert!(dev.iter().any(|c| c == "slipway"), "{dev:?}");
    let product = tree("normal,build");
    assert!(
        product.is_empty(),
        "{product:?} depend on slipway-testkit outside their tests; make it a dev-dependency"
    );
}
