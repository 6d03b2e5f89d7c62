//! Every command of the shipped `buildspec.yml` is valid bash (`bash -n`), including the branches
//! no local engine runs (CodeBuild's engine switch, QEMU registration, the merge's CodeBuild
//! lookups): a quoting slip there would otherwise surface only on AWS.

use std::process::Command;

#[test]
fn every_command_of_the_shipped_buildspec_parses_as_bash() {
    let text = include_str!("../../../buildspec.yml");
    let spec: serde_norway::Value = serde_norway::from_str(text).unwrap();
    let mut n = 0;
    for (phase, body) in spec["phases"].as_mapping().unwrap() {
        for key in ["commands", "finally"] {
            for cmd in body[key].as_sequence().into_iter().flatten() {
                let cmd = cmd.as_str().unwrap();
                let out = Command::new("bash")
                    .args(["-n", "-c", cmd])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{phase:?} {key}: {}\n{cmd}",
                    String::from_utf8_lossy(&out.stderr)
                );
                n += 1;
            }
        }
    }
    assert!(n >= 10, "only {n} commands found");
}
