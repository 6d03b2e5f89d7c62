//! How CodeBuild builds one image: a single build, or a batch whose build graph builds every
//! platform natively, in parallel, and merges them into one manifest list.
//!
//! Why a batch build graph rather than separate builds coordinated by slipway: CodeBuild itself
//! then runs the merge only after every platform build succeeded (`depend-on`), stops the other
//! platform builds as soon as one fails (`fast-fail`), and one StartBuildBatch with one
//! idempotency token starts the whole image. Coordinating separate builds would need a record of
//! which platform builds of which image have finished, which no Lambda keeps.
//!
//! The graph is appended to the shipped buildspec as its `batch` section. Everything in it comes
//! from a closed set (identifiers and variable values from validated platform names, machine
//! types from [`native_machine`], images from the deployment's settings, checked here), so no
//! payload text reaches the YAML.

use crate::names::Invalid;
use crate::plan::PlannedImage;

/// A CodeBuild machine: environment type and image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// `LINUX_CONTAINER` or `ARM_CONTAINER`.
    pub environment_type: &'static str,
    pub image: String,
}

/// The CodeBuild images of the deployment, one per native architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildMachines {
    /// e.g. `aws/codebuild/amazonlinux-x86_64-standard:5.0`.
    pub amd64_image: String,
    /// e.g. `aws/codebuild/amazonlinux-aarch64-standard:3.0`.
    pub arm64_image: String,
}

impl BuildMachines {
    /// Checks the images: registry references in a narrow alphabet (they are written into YAML).
    pub fn check(&self) -> Result<(), Invalid> {
        for image in [&self.amd64_image, &self.arm64_image] {
            let ok = !image.is_empty()
                && image.len() <= 255
                && image.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'.' | b'_' | b'-' | b'/' | b':' | b'@')
                });
            if !ok {
                return Err(Invalid(
                    "a CodeBuild image is a registry reference of letters, digits and `._-/:@`",
                ));
            }
        }
        Ok(())
    }
}

/// The machine that builds `platform` natively on CodeBuild, if there is one.
pub fn native_machine(platform: &str, machines: &BuildMachines) -> Option<Machine> {
    match platform {
        "linux/amd64" => Some(Machine {
            environment_type: "LINUX_CONTAINER",
            image: machines.amd64_image.clone(),
        }),
        "linux/arm64" | "linux/arm64/v8" => Some(Machine {
            environment_type: "ARM_CONTAINER",
            image: machines.arm64_image.clone(),
        }),
        _ => None,
    }
}

/// How an image is built on CodeBuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One build. `machine`: the native machine of a single-platform image; `None`: the
    /// project's own (no platform, or `emulate = true`).
    Single { machine: Option<Machine> },
    /// One native build per platform, then the merge (a batch).
    Batch { platforms: Vec<(String, Machine)> },
}

/// Why an image cannot be built on CodeBuild as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "the platform {0} has no native CodeBuild machine (only linux/amd64 and linux/arm64 have one): set `emulate = true` for this image to build it under QEMU"
    )]
    NotNative(String),
}

impl LayoutError {
    pub fn code(&self) -> &'static str {
        match self {
            LayoutError::NotNative(_) => "platform_not_native",
        }
    }
}

/// Decides how `image` is built.
pub fn layout(image: &PlannedImage, machines: &BuildMachines) -> Result<Layout, LayoutError> {
    if image.emulate || image.platforms.is_empty() {
        return Ok(Layout::Single { machine: None });
    }
    let mut native = Vec::new();
    for p in &image.platforms {
        let m = native_machine(p, machines).ok_or_else(|| LayoutError::NotNative(p.clone()))?;
        native.push((p.clone(), m));
    }
    if native.len() == 1 {
        let (_, m) = native.remove(0);
        return Ok(Layout::Single { machine: Some(m) });
    }
    Ok(Layout::Batch { platforms: native })
}

/// Identifiers of the platform builds start with this (the buildspec's merge finds them by it).
pub const PLATFORM_BUILD_PREFIX: &str = "platform_";
/// The identifier of the merge build.
pub const MERGE_BUILD: &str = "merge";

/// The identifier of a platform's build: `platform_linux_arm64`.
pub fn platform_build_id(platform: &str) -> String {
    format!("{PLATFORM_BUILD_PREFIX}{}", platform.replace('/', "_"))
}

/// The shipped buildspec with the batch section of a [`Layout::Batch`]: one privileged native
/// build per platform (`SLIPWAY_BUILD_PART=platform`, `SLIPWAY_PART_PLATFORM`), and the merge
/// (`SLIPWAY_BUILD_PART=merge`) depending on all of them, on the project's own machine.
pub fn batch_buildspec(buildspec: &str, platforms: &[(String, Machine)]) -> String {
    let mut y = String::from(buildspec);
    if !y.ends_with('\n') {
        y.push('\n');
    }
    y.push_str("\nbatch:\n  fast-fail: true\n  build-graph:\n");
    for (p, m) in platforms {
        y.push_str(&format!(
            "    - identifier: {id}\n      env:\n        type: {t}\n        image: \"{image}\"\n        privileged-mode: true\n        variables:\n          SLIPWAY_BUILD_PART: \"platform\"\n          SLIPWAY_PART_PLATFORM: \"{p}\"\n",
            id = platform_build_id(p),
            t = m.environment_type,
            image = m.image,
        ));
    }
    y.push_str(&format!(
        "    - identifier: {MERGE_BUILD}\n      env:\n        variables:\n          SLIPWAY_BUILD_PART: \"merge\"\n      depend-on:\n"
    ));
    for (p, _) in platforms {
        y.push_str(&format!("        - {}\n", platform_build_id(p)));
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machines() -> BuildMachines {
        BuildMachines {
            amd64_image: "aws/codebuild/amazonlinux-x86_64-standard:5.0".into(),
            arm64_image: "aws/codebuild/amazonlinux-aarch64-standard:3.0".into(),
        }
    }

    fn image(platforms: &[&str], emulate: bool) -> PlannedImage {
        PlannedImage {
            name: "acme/web".into(),
            platforms: platforms.iter().map(|p| p.to_string()).collect(),
            emulate,
            ..PlannedImage::default()
        }
    }

    #[test]
    fn native_platforms_make_a_batch_and_others_need_emulation() {
        let m = machines();
        assert_eq!(
            layout(&image(&[], false), &m).unwrap(),
            Layout::Single { machine: None }
        );
        assert_eq!(
            layout(&image(&["linux/arm64"], false), &m).unwrap(),
            Layout::Single {
                machine: Some(Machine {
                    environment_type: "ARM_CONTAINER",
                    image: m.arm64_image.clone()
                })
            }
        );
        let Layout::Batch { platforms } =
            layout(&image(&["linux/amd64", "linux/arm64/v8"], false), &m).unwrap()
        else {
            panic!("not a batch")
        };
        assert_eq!(platforms[0].1.environment_type, "LINUX_CONTAINER");
        assert_eq!(platforms[1].1.environment_type, "ARM_CONTAINER");
        let e = layout(&image(&["linux/amd64", "linux/arm/v7"], false), &m).unwrap_err();
        assert_eq!(e.code(), "platform_not_native");
        assert!(e.to_string().contains("linux/arm/v7"));
        assert_eq!(
            layout(&image(&["linux/amd64", "linux/arm/v7"], true), &m).unwrap(),
            Layout::Single { machine: None }
        );
    }

    #[test]
    fn machines_are_checked_before_they_reach_yaml() {
        let mut m = machines();
        assert!(m.check().is_ok());
        m.arm64_image = "x\"\n  evil: 1".into();
        assert!(m.check().is_err());
    }
}
