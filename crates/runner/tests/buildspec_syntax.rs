//! Every command of the shipped `buildspec.yml` is valid bash (`bash -n`), including the branches
//! no local engine runs (CodeBuild's engine switch, QEMU registration, the merge's CodeBuild
//! lookups): a quoting slip there would otherwise surface only on AWS.

use std::process::Command;

use slipway_runner::{Buildspec, SHIPPED_BUILDSPEC};

#[test]
fn every_command_of_the_shipped_buildspec_parses_as_bash() {
    let spec = Buildspec::parse(SHIPPED_BUILDSPEC).unwrap();
    let mut n = 0;
    for phase in &spec.phases {
        for cmd in phase.commands.iter().chain(&phase.finally) {
            let out = Command::new("bash")
                .args(["-n", "-c", cmd])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}\n{cmd}",
                phase.name,
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 10, "only {n} commands found");
}
