//! The Lambda zips `make build` writes: one per function, under 5 MB, each holding an executable
//! `bootstrap` that is an ELF binary for aarch64 (what `provided.al2023` on arm64 runs).
//! CI runs `make build` before `make test`; run it yourself before this test.

use slipway_stack::{FUNCTIONS, workspace_root};
use std::io::Read;

const MAX_ZIP_BYTES: u64 = 5 * 1024 * 1024;
const EM_AARCH64: u16 = 183;

#[test]
fn each_function_has_an_arm64_zip_under_5_mb_with_an_elf_bootstrap() {
    let root = workspace_root();
    for f in FUNCTIONS {
        let path = root.join(format!("target/lambda/{}/bootstrap.zip", f.binary()));
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `make build` first (CI runs it before make test)",
                path.display()
            )
        });
        assert!(
            meta.len() < MAX_ZIP_BYTES,
            "{} is {} bytes, over 5 MB",
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
