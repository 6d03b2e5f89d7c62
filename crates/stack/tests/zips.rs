//! The Lambda zips `make build` writes: one per function, each holding an executable `bootstrap`
//! that is an ELF binary for aarch64 (what `provided.al2023` on arm64 runs), and small enough that
//! the release zip stays under 5 MB.
//!
//! CI builds the zips in the `lambda-ci` profile (no fat LTO: minutes shorter), whose zips are
//! larger than the release profile's by a ratio measured once (docs/performance.md, "Lambda zips"):
//! the release size is estimated from it, with a margin. `make build` records the profile in
//! `target/lambda/profile`. CI runs `make build` before `make test`; run it yourself before this test.

use slipway_stack::{FUNCTIONS, workspace_root};
use std::io::Read;

const MAX_ZIP_BYTES: u64 = 5 * 1024 * 1024;
const EM_AARCH64: u16 = 183;
/// lambda-ci zip size / release zip size, the smallest of the four functions' ratios measured on
/// 2026-12-03 (listener 1.515, spawner 1.544, cleanup 1.568, notifier 1.577): the smallest ratio
/// gives the largest estimate of the release size.
const LAMBDA_CI_TO_RELEASE: f64 = 1.515;
/// The estimate must stay this far under the limit, for drift of the ratio as the code changes.
const MARGIN: f64 = 0.05;

/// The release zip's size, measured or estimated from the profile the zips were built in.
fn release_bytes(profile: &str, zip_bytes: u64) -> f64 {
    match profile {
        "release" => zip_bytes as f64,
        "lambda-ci" => zip_bytes as f64 / LAMBDA_CI_TO_RELEASE * (1.0 + MARGIN),
        other => panic!(
            "target/lambda/profile says {other}: build the zips with `make build` (release) or `make build PROFILE=lambda-ci`"
        ),
    }
}

#[test]
fn each_function_has_an_arm64_zip_under_5_mb_with_an_elf_bootstrap() {
    let root = workspace_root();
    let profile = std::fs::read_to_string(root.join("target/lambda/profile"))
        .map(|p| p.trim().to_string())
        .unwrap_or_else(|_| "release".into());
    for f in FUNCTIONS {
        let path = root.join(format!("target/lambda/{}/bootstrap.zip", f.binary()));
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `make build` first (CI runs it before make test)",
                path.display()
            )
        });
        let release = release_bytes(&profile, meta.len());
        assert!(
            release < MAX_ZIP_BYTES as f64,
            "{} is {} bytes ({profile} profile): as a release zip about {release:.0} bytes, over 5 MB",
            path.display(),
            meta.len()
        );
        let file = std::fs::File::open(&path).unwrap();
        let mut zip =
            zip::ZipArchive::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let names: Vec<String> = zip.file_names().map(str::to_string).collect();
        assert_eq!(names, ["bootstrap"], "{}", path.display());
        let mut entry = zip.by_name("bootstrap").unwrap();
        let mode = entry.unix_mode().unwrap_or(0);
        assert!(
            mode & 0o111 != 0,
            "{}: bootstrap is not executable ({mode:o})",
            path.display()
        );
        let mut header = [0u8; 20];
        entry.read_exact(&mut header).unwrap();
        assert_eq!(
            &header[..4],
            b"\x7fELF",
            "{}: bootstrap is not ELF",
            path.display()
        );
        assert_eq!(header[4], 2, "{}: not a 64-bit ELF", path.display());
        assert_eq!(header[5], 1, "{}: not little-endian", path.display());
        let machine = u16::from_le_bytes([header[18], header[19]]);
        assert_eq!(
            machine,
            EM_AARCH64,
            "{}: bootstrap is for machine {machine}, not aarch64",
            path.display()
        );
    }
}
